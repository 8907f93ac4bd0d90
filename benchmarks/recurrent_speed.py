"""Speed of the kerasweights recurrent layers against Keras LSTM and GRU.

Every registered ``recurrent`` plugin and ``keras.layers.LSTM`` / ``GRU``
run in the same process at equal units (batch 64, 32 features, 128 units,
sequence lengths 100 and 512 by default). For each layer a model
``Input -> layer -> Dense(1)`` is compiled with Adam and MSE; training steps
(``train_on_batch``) and inference calls (``predict_on_batch``) are timed
round by round with the layers interleaved, so slow phases of a shared
machine hit all of them alike. The table gives medians, the ratio of each
training step to Keras LSTM's, inference throughput in sequences per
second and the fraction of the machine's matrix-product peak (measured in
the same run) reached by the layer's matrix products, counted as three
times the forward products for a training step. "CPU time" is the
process CPU time of a training step (all threads), which a shared
machine's load disturbs far less than wall-clock time.

``--adding`` also trains each layer on the adding problem (Hochreiter and
Schmidhuber, 1997) for a fixed number of steps and reports the test error
against the trivial baseline (always answer 1.0, mean squared error about
0.167).

Usage:
    python -m benchmarks.recurrent_speed [--quick] [--lengths 100 512]
        [--rounds 7] [--jit] [--no-xla-loops] [--adding] [--markdown FILE]
        [--plot FILE]
"""

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasweights  # noqa: E402

BATCH = 64
FEATURES = 32
UNITS = 128


def layer_factories(scan_variants=False, only=None):
    """``(name, factory)`` for Keras LSTM, GRU and every recurrent plugin.

    With ``scan_variants`` also minGRU and minLSTM forced to the parallel
    scan and to stepping; ``only`` keeps the named entries (and Keras LSTM
    and GRU, the baselines).
    """
    factories = [
        ("keras LSTM", keras.layers.LSTM),
        ("keras GRU", keras.layers.GRU),
    ]
    for record in kerasweights.plugins(kind="recurrent"):
        factories.append((record.name, record.obj))
        if (
            scan_variants
            and "scan" in getattr(record.obj, "cell_arguments", list)()
        ):
            for mode in ("parallel", "sequential"):
                factories.append(
                    (
                        f"{record.name} scan={mode}",
                        functools.partial(record.obj, scan=mode),
                    )
                )
    if only:
        keep = set(only) | {"keras LSTM", "keras GRU"}
        factories = [(n, f) for n, f in factories if n in keep]
    return factories


def build(factory, length, jit):
    model = keras.Sequential(
        [
            keras.Input((length, FEATURES), batch_size=BATCH),
            factory(UNITS),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse", jit_compile=jit)
    return model


def forward_flops(model, length):
    """Multiply-adds x 2 of the recurrent layer's matrix products."""
    total = 0
    for weight in model.layers[0].trainable_weights:
        if len(weight.shape) == 2:
            total += 2 * BATCH * length * int(np.prod(weight.shape))
    return total


def matmul_peak(repeats=9):
    """FLOP/s of a large float32 matrix product on this machine."""
    size = 1024
    a = keras.random.normal((size, size))
    b = keras.random.normal((size, size))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def time_layers(length, rounds, jit, peak, factories):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, length, FEATURES)).astype("float32")
    y = rng.normal(size=(BATCH, 1)).astype("float32")
    models = {}
    first = {}
    for name, factory in factories:
        start = time.perf_counter()
        model = build(factory, length, jit)
        model.train_on_batch(x, y)  # tracing and compilation
        first[name] = time.perf_counter() - start
        model.predict_on_batch(x)
        models[name] = model
    train = {name: [] for name in models}
    train_cpu = {name: [] for name in models}
    infer = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            cpu = time.process_time()
            model.train_on_batch(x, y)
            train[name].append(time.perf_counter() - start)
            train_cpu[name].append(time.process_time() - cpu)
            start = time.perf_counter()
            model.predict_on_batch(x)
            infer[name].append(time.perf_counter() - start)
    rows = []
    lstm = statistics.median(train["keras LSTM"])
    gru = statistics.median(train["keras GRU"])
    lstm_cpu = statistics.median(train_cpu["keras LSTM"])
    for name, model in models.items():
        step = statistics.median(train[name])
        step_cpu = statistics.median(train_cpu[name])
        forward = statistics.median(infer[name])
        flops = forward_flops(model, length)
        rows.append(
            {
                "layer": name,
                "length": length,
                "train_ms": 1000 * step,
                "vs_lstm": step / lstm,
                "vs_gru": step / gru,
                "cpu_ms": 1000 * step_cpu,
                "cpu_vs_lstm": step_cpu / lstm_cpu,
                "infer_seq_per_s": BATCH / forward,
                "peak_fraction": 3 * flops / step / peak,
                "first_s": first[name],
            }
        )
    return rows


def profile_parts(length, rounds):
    """CPU time of the parts of a minGRU training step, TensorFlow only.

    Each part runs as its own ``tf.function`` on the benchmark's shapes
    (batch 64, 128 units, ``length`` steps), forward and gradient, with
    the loss on the last step as in the speed table. Returns
    ``[(part, ms)]``, medians of ``rounds`` calls.
    """
    import tensorflow as tf

    from kerasweights.recurrent import scan

    rng = np.random.default_rng(0)
    shape = (length, BATCH, UNITS)

    def variable(values):
        return tf.Variable(values.astype("float32"))

    x = tf.constant(rng.normal(size=(length, BATCH, FEATURES)), tf.float32)
    kernels = [variable(rng.normal(size=(FEATURES, UNITS)) * 0.2)]
    kernels.append(variable(rng.normal(size=(FEATURES, UNITS)) * 0.2))
    biases = [variable(np.zeros(UNITS)), variable(np.zeros(UNITS))]
    k_z = variable(rng.normal(size=shape))
    k_h = variable(rng.normal(size=shape))
    a = variable(1.0 / (1.0 + np.exp(-rng.normal(size=shape))))
    b = variable(rng.normal(size=shape))
    h0 = tf.zeros((BATCH, UNITS))

    def plain_gates(k_z, k_h):
        z = tf.sigmoid(k_z)
        return 1.0 - z, z * tf.maximum(k_h + 0.5, tf.sigmoid(k_h))

    size = next(
        n for n in (32, 25, 20, 16, 10, 8, 5, 4, 2, 1) if length % n == 0
    )
    count = length // size
    # The two-level form wants time as (position in chunk, chunk).
    a_chunks, b_chunks = [
        variable(
            np.transpose(
                v.numpy().reshape(count, size, BATCH, UNITS), (1, 0, 2, 3)
            )
        )
        for v in (a, b)
    ]

    @tf.custom_gradient
    def chunked(a, b, h0):
        # Two levels: the steps inside chunks for all chunks at once, the
        # chunk ends in sequence, one fix-up; the gradient is the same
        # recurrence run backwards in the same form.
        local, product = [b[0]], [a[0]]
        for j in range(1, size):
            local.append(a[j] * local[-1] + b[j])
            product.append(a[j] * product[-1])
        ends = tf.unstack(local[-1], num=count)
        gains = tf.unstack(product[-1], num=count)
        carry, starts = h0, []
        for k in range(count):
            starts.append(carry)
            carry = gains[k] * carry + ends[k]
        starts = tf.stack(starts)
        h = tf.stack(
            [loc + p * starts for loc, p in zip(local, product, strict=True)]
        )

        def grad(dh):
            back, gain = [None] * size, [None] * size
            back[-1], gain[-1] = dh[-1], tf.ones_like(dh[-1])
            for j in range(size - 2, -1, -1):
                back[j] = a[j + 1] * back[j + 1] + dh[j]
                gain[j] = a[j + 1] * gain[j + 1]
            firsts = tf.unstack(back[0], num=count)
            spans = tf.unstack(gain[0], num=count)
            heads = tf.unstack(a[0], num=count)
            into = [None] * count
            flow = tf.zeros_like(h0)
            for k in range(count - 1, -1, -1):
                into[k] = flow
                flow = heads[k] * (firsts[k] + spans[k] * flow)
            into = tf.stack(into)
            g = tf.stack(
                [bk + gn * into for bk, gn in zip(back, gain, strict=True)]
            )
            previous = tf.concat([starts[None], h[:-1]], 0)
            return g * previous, g, flow

        return h, grad

    def while_loop(written_out):
        # A while loop of 8 unrolled steps per iteration, as the layers
        # ran before the time-major paths (with the written-out gradient).
        def run():
            if written_out:
                return scan.linear_recurrence(a, b, h0)
            return scan.steps(a, b, h0)

        traced = with_gradient(run, [a, b])

        def first_call_traces_the_loop():
            saved = scan.UNROLL_LIMIT, scan.BLOCK
            scan.UNROLL_LIMIT, scan.BLOCK = 0, 8
            try:
                return traced()
            finally:
                scan.UNROLL_LIMIT, scan.BLOCK = saved

        return first_call_traces_the_loop, traced

    def with_gradient(forward, sources):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(forward()[-1])
            return loss, tape.gradient(loss, sources)

        return run

    def products():
        return sum(
            tf.tensordot(x, w, [[-1], [0]]) + c
            for w, c in zip(kernels, biases, strict=True)
        )

    def fused_gates():
        @tf.function
        def run():
            a = scan.fuse(scan._min_gru_forget)(k_z, biases[0])
            b = scan.fuse(scan._keep_candidate)(a, k_h, biases[1])
            # b and k_z stand in for the state gradient and the states.
            grads = scan.fuse(scan._offset_grads)(b, k_z, h0, a, k_h, biases[1])
            return [a[-1], b[-1]] + [g[-1] for g in grads]

        return run

    layer_path = with_gradient(
        lambda: scan.min_gru_sequence(
            tf.tensordot(x, kernels[0], [[-1], [0]]),
            tf.tensordot(x, kernels[1], [[-1], [0]]),
            biases[0],
            biases[1],
            h0,
        ),
        kernels + biases,
    )
    parts = [
        ("input products and their gradient", with_gradient(products, kernels)),
        (
            "gates, plain TensorFlow operations, with gradient",
            with_gradient(lambda: sum(plain_gates(k_z, k_h)), [k_z, k_h]),
        ),
        ("gates and gate gradients, XLA-fused (scan.py)", fused_gates()),
        (
            "recurrence: while loop of 8-step bodies, automatic gradient",
            while_loop(False),
        ),
        (
            "recurrence: while loop of 8-step bodies, written-out gradient "
            "(as the previous code)",
            while_loop(True),
        ),
        (
            f"recurrence: two levels, {count} chunks of {size} steps, "
            "written-out gradient",
            with_gradient(
                lambda: chunked(a_chunks, b_chunks, h0), [a_chunks, b_chunks]
            ),
        ),
        (
            "recurrence: unrolled on slices, written-out gradient (scan.py)",
            with_gradient(lambda: scan.linear_recurrence(a, b, h0), [a, b]),
        ),
        ("minGRU, all of the above as the layer runs it", layer_path),
    ]
    results = []
    for name, run in parts:
        if isinstance(run, tuple):
            first, run = run
            first()
        run()
        times = []
        for _ in range(rounds):
            cpu = time.process_time()
            tf.nest.map_structure(lambda t: t.numpy(), run())
            times.append(time.process_time() - cpu)
        results.append((name, 1000 * statistics.median(times)))
    # The two-level form must give the states and gradients of stepping.
    with tf.GradientTape(persistent=True) as tape:
        stepped = scan.linear_recurrence(a, b, h0)
        loss = tf.reduce_sum(tf.sin(stepped))
        two_level = chunked(a_chunks, b_chunks, h0)
        back = tf.reshape(
            tf.transpose(two_level, (1, 0, 2, 3)), (length, BATCH, UNITS)
        )
        loss_two = tf.reduce_sum(tf.sin(back))
    want = tape.gradient(loss, a).numpy()
    got = tape.gradient(loss_two, a_chunks).numpy()
    got = np.transpose(got, (1, 0, 2, 3)).reshape(want.shape)
    error = max(
        float(tf.reduce_max(tf.abs(back - stepped))),
        float(np.abs(got - want).max() / np.abs(want).max()),
    )
    results.append(("(two levels against stepping: largest difference)", error))
    return results


def adding_problem(length, steps, seed=0):
    """Test MSE of each layer after ``steps`` Adam steps on adding data."""
    rng = np.random.default_rng(seed)

    def batch(size):
        values = rng.uniform(size=(size, length))
        marks = np.zeros((size, length))
        for row in marks:
            first, second = rng.choice(length, 2, replace=False)
            row[first] = row[second] = 1.0
        x = np.stack([values, marks], -1).astype("float32")
        return x, (values * marks).sum(-1, keepdims=True).astype("float32")

    test_x, test_y = batch(1000)
    results = {}
    for name, factory in layer_factories():
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((length, 2)), factory(64), keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        for _ in range(steps):
            model.train_on_batch(*batch(64))
        results[name] = float(model.evaluate(test_x, test_y, verbose=0))
    baseline = float(np.mean((test_y - 1.0) ** 2))
    return results, baseline


def tflite_check(length=8, features=3):
    """Converts each layer with TFLite; runs it on the stock interpreter.

    Two ways per layer: batch pinned to 1 with the loop kept, and batch 1
    with ``unroll=True`` (case C15). Returns ``{name: {way: result}}``,
    where a result is the largest difference to Keras or the error's type.
    """
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(1, length, features))
    x = x.astype("float32")
    results = {}
    for name, factory in layer_factories():
        results[name] = {}
        for way, kwargs in (("loop", {}), ("unroll", {"unroll": True})):
            keras.utils.set_random_seed(0)
            model = keras.Sequential(
                [
                    keras.Input((length, features), batch_size=1),
                    factory(4, return_sequences=True, **kwargs),
                ]
            )
            folder = tempfile.mkdtemp()
            try:
                model.export(folder, format="tf_saved_model", verbose=False)
                converter = tf.lite.TFLiteConverter.from_saved_model(folder)
                interpreter = tf.lite.Interpreter(
                    model_content=converter.convert()
                )
                interpreter.allocate_tensors()
                inp = interpreter.get_input_details()[0]["index"]
                out = interpreter.get_output_details()[0]["index"]
                interpreter.set_tensor(inp, x)
                interpreter.invoke()
                got = interpreter.get_tensor(out)
                want = keras.ops.convert_to_numpy(model(x))
                results[name][way] = f"{np.abs(got - want).max():.1e}"
            except Exception as exc:  # reported in the table
                results[name][way] = f"fails ({type(exc).__name__})"
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    return results


def markdown(rows, peak, jit):
    from kerasweights.recurrent import fused

    lines = [
        f"Matrix-product peak measured in this run: {peak / 1e9:.1f} "
        f"GFLOP/s; jit_compile={jit}; "
        f"kerasweights.recurrent.fused.XLA_LOOPS={fused.XLA_LOOPS}.",
        "",
        "| layer | T | train step (ms) | vs Keras LSTM | vs Keras GRU "
        "| CPU time (ms) | CPU vs LSTM | inference (seq/s) | matmul peak "
        "| first step (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['layer']} | {row['length']} | {row['train_ms']:.1f} "
            f"| {row['vs_lstm']:.2f}x | {row['vs_gru']:.2f}x "
            f"| {row['cpu_ms']:.0f} | {row['cpu_vs_lstm']:.2f}x "
            f"| {row['infer_seq_per_s']:.0f} "
            f"| {100 * row['peak_fraction']:.1f}% "
            f"| {row['first_s']:.1f} |"
        )
    return "\n".join(lines)


def goals(rows):
    """Lines saying which speed goals of issue 4 hold in this run."""
    lines = ["", "Goals (medians of this run):", ""]
    for length in sorted({row["length"] for row in rows}):
        at = [r for r in rows if r["length"] == length]
        ours = [r for r in at if not r["layer"].startswith("keras ")]
        slow = [
            f"{r['layer']} {r['vs_lstm']:.2f}x"
            for r in ours
            if r["vs_lstm"] > 1.0
        ]
        slow_cpu = [
            f"{r['layer']} {r['cpu_vs_lstm']:.2f}x"
            for r in ours
            if r["cpu_vs_lstm"] > 1.0
        ]
        lines.append(
            f"* T={length}, at most 1.0x Keras LSTM (wall): "
            + ("all" if not slow else "missed by " + ", ".join(slow))
            + "; by CPU time: "
            + ("all" if not slow_cpu else "missed by " + ", ".join(slow_cpu))
        )
        for name in ("min_gru", "min_lstm"):
            row = next((r for r in at if r["layer"] == name), None)
            if row is not None:
                lines.append(
                    f"* T={length}, {name}: speed-up over Keras GRU "
                    f"{1 / row['vs_gru']:.2f}x (goal at T=512: 3x)"
                )
    return lines


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted({row["length"] for row in rows})
    names = [row["layer"] for row in rows if row["length"] == lengths[0]]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(lengths)
    for i, length in enumerate(lengths):
        ratios = [
            next(
                r["vs_lstm"]
                for r in rows
                if r["layer"] == name and r["length"] == length
            )
            for name in names
        ]
        ax.bar(
            np.arange(len(names)) + i * width,
            ratios,
            width,
            label=f"T={length}",
        )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(names)) + width * (len(lengths) - 1) / 2)
    ax.set_xticklabels(names, rotation=35, ha="right")
    ax.set_ylabel("training step / Keras LSTM")
    ax.set_title("Training-step time relative to keras.layers.LSTM (median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 512])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--adding", action="store_true")
    parser.add_argument("--adding-length", type=int, default=100)
    parser.add_argument("--adding-steps", type=int, default=300)
    parser.add_argument("--tflite", action="store_true")
    parser.add_argument(
        "--scan-variants",
        action="store_true",
        help="also time minGRU/minLSTM with scan=parallel and sequential",
    )
    parser.add_argument("--only", nargs="+", help="time only these layers")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="CPU time of the parts of a minGRU training step",
    )
    parser.add_argument(
        "--no-xla-loops",
        action="store_true",
        help="run the fused loops of LayerNormLSTM, LayerNormGRU, "
        "PeepholeLSTM and MGU without XLA (fused.XLA_LOOPS = False)",
    )
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--plot", help="write a PNG of the ratios here")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    if args.no_xla_loops:
        from kerasweights.recurrent import fused

        fused.XLA_LOOPS = False

    if args.tflite:
        print("TFLite, batch pinned to 1, T=8: max |TFLite - Keras|")
        print()
        print("| layer | loop | unroll=True |")
        print("|---|---|---|")
        for name, result in tflite_check().items():
            print(f"| {name} | {result['loop']} | {result['unroll']} |")
        print()
    if args.profile:
        length = max(args.lengths)
        print(
            f"Parts of a minGRU training step, T={length}, batch {BATCH}, "
            f"{UNITS} units: process CPU time, median of {rounds} calls"
        )
        print()
        print("| part | CPU time (ms) |")
        print("|---|---|")
        for name, ms in profile_parts(length, rounds):
            print(f"| {name} | {ms:.3g} |")
        print()
    if not args.no_speed:
        peak = matmul_peak()
        rows = []
        for length in args.lengths:
            factories = layer_factories(args.scan_variants, args.only)
            rows.extend(time_layers(length, rounds, args.jit, peak, factories))
        table = markdown(rows, peak, args.jit)
        table += "\n" + "\n".join(goals(rows))
        print(table)
        if args.markdown:
            with open(args.markdown, "w", encoding="utf-8") as handle:
                handle.write(table + "\n")
        if args.plot:
            plot(rows, args.plot)
    if args.adding:
        results, baseline = adding_problem(
            args.adding_length, args.adding_steps
        )
        print()
        print(
            f"Adding problem, T={args.adding_length}, "
            f"{args.adding_steps} steps of batch 64, 64 units. "
            f"Trivial baseline MSE: {baseline:.3f}"
        )
        print()
        print("| layer | test MSE | beats baseline |")
        print("|---|---|---|")
        for name, mse in results.items():
            print(
                f"| {name} | {mse:.4f} | {'yes' if mse < baseline else 'no'} |"
            )


if __name__ == "__main__":
    main()
