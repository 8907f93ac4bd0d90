"""Step-time overhead of GradientHealth, measured in one run.

For a dense, a conv and a recurrent network on the digits data (scikit-
learn's ``load_digits``, 1797 images), trains four identical copies side
by side: two without the callback (the second one shows the noise floor of
the machine), one with ``GradientHealth(every_n_steps=1)`` and one with
``GradientHealth(every_n_steps=10)``, all at their defaults otherwise
(every statistic, dead-unit and saturation tracking included). Each
copy is fitted ``--rounds`` times for ``--epochs`` epochs, the variants
interleaved round by round; the first epoch of every fit (tracing,
compilation) is dropped, and the median
time per step of the remaining epochs is compared with the no-callback
median of the same network. Two clocks: wall time, and the CPU time of this
process (all its threads), which other programs on a shared machine
disturb far less. With ``--hooks`` the callback also adds up the CPU time
of the thread running its batch-end and epoch-end hooks, and a last table
splits the added CPU time into that host side and the rest.

``--calls`` measures instead what one recorded step adds to the compiled
step itself, without fit, its callbacks or the host reads around it: the
model's own train function (as its first fit traced it), the same step
traced once more after the optimizer was built (as the tapped function is
traced), and the tapped one are called in rotation, in blocks of
``--block`` calls on the same batches, and the medians over ``--blocks``
blocks are compared. On a noisy shared machine this isolates
the in-graph cost far better than whole epochs do. A fourth rotation
member calls the tapped function on every 10th call and the retraced
plain one in between, as ``every_n_steps=10`` does with one step per call:
unlike a tenth of the added time, it includes what switching between the
two compiled functions costs.

How the overhead scales with the step: ``--batch-size`` takes several
sizes, measured one after the other (each network and size in its own
rotation, so every ratio compares calls of the same rotation), and
``--nets`` takes two larger networks besides the three of the tables:
``dense-large`` (64-1024-1024-10, 1.1M weights) and ``conv-wide`` (64 and
128 filters), each with as many weight tensors as its small counterpart.
With ``--calls`` a last table gives, per network and batch size, the step
without the callback, what a recorded step adds and its share, with the
quartiles of the per-block ratio; ``--plot PNG`` draws it.

Usage:
    python benchmarks/health_overhead.py [--rounds 3] [--epochs 5]
        [--batch-size 32 [128 ...]] [--nets dense conv recurrent]
        [--jit-compile] [--hooks]
    python benchmarks/health_overhead.py --calls [--blocks 30]
        [--block 50] [--batch-size 32 [128 ...]] [--nets ...]
        [--jit-compile] [--against COMMIT] [--plot PNG]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from kerasweights.health import GradientHealth  # noqa: E402


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype("float32") / 16.0, data.target.astype("int32")


def dense(widths=(128, 64)):
    """64-128-64-10 by default (17 226 weights)."""
    return keras.Sequential(
        [
            keras.Input((64,)),
            *[L.Dense(w, activation="relu") for w in widths],
            L.Dense(10, activation="softmax"),
        ]
    )


def conv(filters=(16, 32)):
    """Conv 16 and 32 filters by default (9 930 weights)."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            *[
                L.Conv2D(f, 3, activation="relu", padding="same")
                for f in filters
            ],
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )


def recurrent():
    return keras.Sequential(
        [keras.Input((8, 8)), L.GRU(64), L.Dense(10, activation="softmax")]
    )


def dense_large():
    """64-1024-1024-10: the dense net's six weight tensors, 65 times the
    weights (1 126 410)."""
    return dense((1024, 1024))


def conv_wide():
    """The conv net with 64 and 128 filters: six weight tensors, 94 986
    weights, about 15 times the conv net's multiply-adds per image."""
    return conv((64, 128))


NETS = {
    "dense": (dense, lambda x: x),
    "conv": (conv, lambda x: x.reshape(-1, 8, 8, 1)),
    "recurrent": (recurrent, lambda x: x.reshape(-1, 8, 8)),
    # Larger nets, only with --nets: the same number of weight tensors as
    # the small ones, many more weights and much more work per step.
    "dense-large": (dense_large, lambda x: x),
    "conv-wide": (conv_wide, lambda x: x.reshape(-1, 8, 8, 1)),
}
# The networks of the tables of issue 5 (the default of --nets).
DEFAULT_NETS = ["dense", "conv", "recurrent"]
VARIANTS = {
    "none": None,
    # A second copy without the callback: the noise floor of the machine.
    "none (control)": None,
    "every step": 1,
    "every 10th step": 10,
}


class HookTimed(GradientHealth):
    """GradientHealth that adds up the CPU time of its own thread spent in
    its batch-end and epoch-end hooks (reads of the ring buffer, records,
    diagnoses, logs): the host side of its cost."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hook_time = 0.0

    def on_train_batch_end(self, batch, logs=None):
        start = time.thread_time()
        try:
            super().on_train_batch_end(batch, logs)
        finally:
            self.hook_time += time.thread_time() - start

    def on_epoch_end(self, epoch, logs=None):
        start = time.thread_time()
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.hook_time += time.thread_time() - start


class EpochTimer(keras.callbacks.Callback):
    """Wall and process CPU time of each epoch, and with ``health`` the
    host time its hooks spent in it."""

    def __init__(self, health=None):
        super().__init__()
        self.times = []
        self.health = health

    def _hooks(self):
        return getattr(self.health, "hook_time", 0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (
            time.perf_counter(),
            time.process_time(),
            self._hooks(),
        )

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu, hooks = self._start
        self.times.append(
            (
                time.perf_counter() - wall,
                time.process_time() - cpu,
                self._hooks() - hooks,
            )
        )


def measure(net, rounds, epochs, batch_size, jit_compile=False, hooks=False):
    build, shape = NETS[net]
    x, y = digits()
    x = shape(x)
    steps = -(-len(x) // batch_size)
    models = {}
    for name in VARIANTS:
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(
            "adam", "sparse_categorical_crossentropy", jit_compile=jit_compile
        )
        models[name] = model
    samples = {(name, c): [] for name in VARIANTS for c in (0, 1, 2)}
    names = list(VARIANTS)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            timer = EpochTimer()
            callbacks = [timer]
            if VARIANTS[name] is not None:
                kind = HookTimed if hooks else GradientHealth
                health = kind(every_n_steps=VARIANTS[name])
                timer.health = health
                callbacks = [health, timer]
            models[name].fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=0,
                callbacks=callbacks,
            )
            for wall, cpu, host in timer.times[1:]:
                samples[name, 0].append(wall / steps)
                samples[name, 1].append(cpu / steps)
                samples[name, 2].append(host / steps)
    return {key: statistics.median(v) for key, v in samples.items()}


def tap_class_at(commit):
    """`GradientTap` as kerasweights/health/tap.py was at a git commit."""
    import importlib.util
    import subprocess
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = subprocess.run(
        ["git", "show", f"{commit}:kerasweights/health/tap.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    folder = tempfile.mkdtemp(prefix="health_tap_")
    path = os.path.join(folder, f"tap_{commit}.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(f"tap_{commit}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GradientTap


def _trained(net, x, y, batch_size, jit_compile):
    keras.utils.set_random_seed(0)
    model = NETS[net][0]()
    model.compile(
        "adam", "sparse_categorical_crossentropy", jit_compile=jit_compile
    )
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    return model


def _use_plain(tap, plain):
    """Says which train function the tap's wrappers trace or run next: the
    model's own (no added op) or the tapped one. The tap sets this flag
    itself in its dispatcher; taps before commit f785484 (``--against``)
    had a ``use_plain`` method for it."""
    if hasattr(tap, "use_plain"):
        tap.use_plain(plain)
    else:
        tap._plain = bool(plain)


class _Alternating:
    """Calls ``tapped`` on every ``n``-th call and ``plain`` otherwise,
    as `GradientTap._dispatch` does."""

    def __init__(self, tap, plain, tapped, n):
        self.tap, self.plain, self.tapped, self.n = tap, plain, tapped, n
        self.calls = 0

    def __call__(self, iterator):
        recorded = self.calls % self.n == 0
        self.calls += 1
        _use_plain(self.tap, not recorded)
        return (self.tapped if recorded else self.plain)(iterator)


def measure_calls(
    net, blocks, block, batch_size, jit_compile=False, against=None
):
    """Median CPU and wall ms per call: the model's own step, a recorded one.

    With ``against`` (a git commit), a second copy of the model is tapped by
    the tap of that commit, and its recorded step is timed in the same
    rotation.
    """
    import tensorflow as tf

    from kerasweights.health.tap import GradientTap

    x, y = digits()
    x = NETS[net][1](x)
    model = _trained(net, x, y, batch_size, jit_compile)
    # The model's own train function as fit traced it (the optimizer was
    # built during that first trace), and the same step traced once more
    # now that the optimizer exists, as the tapped function is.
    first = model.train_function
    model.make_train_function(force=True)
    retraced = model.train_function
    model.train_function = first
    tap = GradientTap(model, every_n_steps=1)
    tap.install()
    data = tf.data.Dataset.from_tensor_slices((x, y))
    batches = iter(data.batch(batch_size, drop_remainder=True).repeat())
    functions = {
        "own": (tap.plain_function, True),
        "own, retraced": (retraced, True),
        "recorded": (tap.tapped_function, False),
    }
    # Every 10th step as fit runs it with one step per call: the tapped
    # function on every 10th call, the plain one (here the retraced step,
    # the base of the percentages) in between.
    functions["every 10th"] = (
        _Alternating(tap, retraced, tap.tapped_function, 10),
        True,
    )
    taps = dict.fromkeys(functions, tap)
    if against is not None:
        other = tap_class_at(against)(
            _trained(net, x, y, batch_size, jit_compile), every_n_steps=1
        )
        other.install()
        functions["recorded, " + against] = (other.tapped_function, False)
        taps["recorded, " + against] = other
    samples = {(name, c): [] for name in functions for c in (0, 1)}
    order = list(functions)
    for b in range(-2, blocks):  # two warm-up blocks (tracing)
        # Rotate the order block by block.
        names = order[b % len(order) :] + order[: b % len(order)]
        for name in names:
            function, plain = functions[name]
            _use_plain(taps[name], plain)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(block):
                function(batches)
            if b >= 0:
                samples[name, 0].append((time.perf_counter() - wall) / block)
                samples[name, 1].append((time.process_time() - cpu) / block)
    for used in set(taps.values()):
        used.remove()
    result = {key: statistics.median(v) for key, v in samples.items()}
    # Per block, the recorded step against the retraced one timed in the
    # same rotation: the spread of the ratio across blocks.
    result["block ratios"] = [
        rec / again
        for rec, again in zip(
            samples["recorded", 1], samples["own, retraced", 1], strict=True
        )
    ]
    return result


def main_calls(args, nets):
    scaling = {}
    for batch_size in args.batch_size:
        print(
            f"digits, batch {batch_size}, {args.blocks} alternating blocks "
            f"of {args.block} train-function calls, median ms per call"
            + (", jit_compile=True" if args.jit_compile else "")
        )
        load = os.getloadavg()[0]
        results = {
            net: measure_calls(
                net,
                args.blocks,
                args.block,
                batch_size,
                args.jit_compile,
                args.against,
            )
            for net in nets
        }
        print(
            f"load average (1 min): {load:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after"
        )
        _print_calls(results, args.against)
        print()
        for net, med in results.items():
            scaling[net, batch_size] = med
    _print_scaling(scaling)
    if args.plot:
        _plot_scaling(scaling, args.plot, args.jit_compile)
        print(f"\nplot written to {args.plot}")


def _print_calls(results, against):
    for clock, label in ((0, "wall time"), (1, "process CPU time")):
        print()
        print(f"{label}:")
        print()
        print(
            "| network | own step | own step, retraced | recorded step "
            "| added, vs own | added, vs retraced "
            "| every step, in-graph | every 10th step, in-graph "
            "| every 10th step, alternating |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for net, med in results.items():
            own, again = med["own", clock], med["own, retraced", clock]
            rec = med["recorded", clock]
            cells = [f"{1000 * own:.3f}", f"{1000 * again:.3f}"]
            cells.append(f"{1000 * rec:.3f}")
            cells += [f"{1e6 * (rec - own):+.0f} us"]
            cells += [f"{1e6 * (rec - again):+.0f} us"]
            # Relative to the retraced step: what the statistics add,
            # without the gain of the retrace itself.
            cells += [f"{100 * (rec / again - 1):+.1f}%"]
            cells += [f"{10 * (rec / again - 1):+.1f}%"]
            # Measured: 9 plain calls and 1 tapped call per 10.
            cells += [f"{100 * (med['every 10th', clock] / again - 1):+.1f}%"]
            print(f"| {net} | " + " | ".join(cells) + " |", flush=True)
        if against:
            _print_against(results, clock, against)


def _size(net):
    """Trainable weights and weight tensors of a network."""
    model = NETS[net][0]()
    variables = model.trainable_variables
    return sum(int(v.numpy().size) for v in variables), len(variables)


def _quartiles(values):
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def _print_scaling(scaling):
    """One line per network and batch size, process CPU time: the step
    without the callback (retraced), what a recorded step adds, and that
    as a share of the step; the quartiles of the per-block ratio show the
    spread within the run."""
    print("how the overhead scales with the step (process CPU time):")
    print()
    print(
        "| network | batch | weights (tensors) | step, no callback "
        "| recorded step | added per recorded step | every step, in-graph "
        "| per-block quartiles | every 10th step, in-graph "
        "| every 10th step, alternating |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    sizes = {}
    for (net, batch_size), med in scaling.items():
        if net not in sizes:
            sizes[net] = _size(net)
        weights, tensors = sizes[net]
        again, rec = med["own, retraced", 1], med["recorded", 1]
        low, high = _quartiles(med["block ratios"])
        cells = [
            str(batch_size),
            f"{weights:,} ({tensors})".replace(",", " "),
            f"{1000 * again:.3f} ms",
            f"{1000 * rec:.3f} ms",
            f"{1e6 * (rec - again):+.0f} us",
            f"{100 * (rec / again - 1):+.1f}%",
            f"{100 * (low - 1):+.1f}% to {100 * (high - 1):+.1f}%",
            f"{10 * (rec / again - 1):+.1f}%",
            f"{100 * (med['every 10th', 1] / again - 1):+.1f}%",
        ]
        print(f"| {net} | " + " | ".join(cells) + " |", flush=True)


def _plot_scaling(scaling, path, jit_compile):
    """Added CPU time per recorded step and the overhead in percent
    against the step time without the callback, one point per network and
    batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = dict(zip(NETS, "osD^v", strict=True))
    for net in dict.fromkeys(net for net, _ in scaling):
        points = sorted(
            (med["own, retraced", 1], med["recorded", 1], med["every 10th", 1])
            + (batch,)
            for (name, batch), med in scaling.items()
            if name == net
        )
        steps = [1000 * again for again, _, _, _ in points]
        added = [1e6 * (rec - again) for again, rec, _, _ in points]
        every = [100 * (rec / again - 1) for again, rec, _, _ in points]
        tenth = [100 * (alt / again - 1) for again, _, alt, _ in points]
        marker = markers[net]
        left.plot(steps, added, marker=marker, label=net)
        line = right.plot(steps, every, marker=marker, label=f"{net}, every")
        right.plot(
            steps,
            tenth,
            marker=marker,
            linestyle=":",
            color=line[0].get_color(),
            label=f"{net}, every 10th",
        )
        for step, value, (_, _, _, batch) in zip(
            steps, every, points, strict=True
        ):
            right.annotate(
                str(batch),
                (step, value),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("step without the callback (ms of process CPU)")
        axis.grid(True, which="both", alpha=0.3)
    left.set_ylabel("added per recorded step (us of process CPU)")
    left.legend(fontsize=8)
    right.axhline(5, color="grey", linestyle="--", linewidth=1)
    right.axhline(1, color="grey", linestyle="-.", linewidth=1)
    right.set_ylabel("overhead (%), in-graph; labels: batch size")
    right.legend(fontsize=7, ncol=2)
    title = "GradientHealth: recorded step against the plain step"
    if jit_compile:
        title += " (jit_compile=True)"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _print_against(results, clock, against):
    """The table of a recorded step against the older tap ``against``."""
    print()
    print(
        f"| network | recorded step | recorded step, {against} "
        f"| added, vs retraced | added, {against} "
        "| ratio of the added times |"
    )
    print("|---|---|---|---|---|---|")
    for net, med in results.items():
        again = med["own, retraced", clock]
        rec = med["recorded", clock]
        old = med["recorded, " + against, clock]
        print(
            f"| {net} | {1000 * rec:.3f} | {1000 * old:.3f} | "
            f"{1e6 * (rec - again):+.0f} us | "
            f"{1e6 * (old - again):+.0f} us | "
            f"{(rec - again) / (old - again):.2f} |",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--batch-size",
        type=int,
        nargs="+",
        default=[32],
        help="one or more batch sizes, measured one after the other",
    )
    parser.add_argument(
        "--nets",
        nargs="+",
        choices=list(NETS),
        default=None,
        help="default: " + " ".join(DEFAULT_NETS),
    )
    parser.add_argument(
        "--jit-compile", action="store_true", help="compile with XLA"
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="time train-function calls, not fit epochs",
    )
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument(
        "--hooks",
        action="store_true",
        help="also time the callback's hooks (host side) with thread CPU "
        "time and split the added CPU time into hooks and the rest",
    )
    parser.add_argument(
        "--against",
        default=None,
        help="with --calls: also time the tap of this git commit",
    )
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="with --calls: plot the added time and the overhead against "
        "the step time, one point per network and batch size",
    )
    args = parser.parse_args(argv)
    if args.plot and not args.calls:
        parser.error("--plot needs --calls")
    nets = args.nets or DEFAULT_NETS
    if args.calls:
        return main_calls(args, nets)
    for batch_size in args.batch_size:
        main_fit(args, nets, batch_size)


def main_fit(args, nets, batch_size):
    print(
        f"digits, batch {batch_size}, {args.rounds} rounds x "
        f"{args.epochs - 1} timed epochs per variant, median ms per step"
    )
    load = os.getloadavg()[0]
    results = {
        net: measure(
            net,
            args.rounds,
            args.epochs,
            batch_size,
            args.jit_compile,
            args.hooks,
        )
        for net in nets
    }
    print(
        f"load average (1 min): {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    for clock, label in ((0, "wall time"), (1, "process CPU time")):
        print()
        print(f"{label}:")
        print()
        print(
            "| network | no callback | control (no callback) | every step "
            "| every 10th step |"
        )
        print("|---|---|---|---|---|")
        for net, med in results.items():
            base = med["none", clock]
            cells = [f"{1000 * base:.3f}"]
            for name in ("none (control)", "every step", "every 10th step"):
                value = med[name, clock]
                cells.append(
                    f"{1000 * value:.3f} ({100 * (value / base - 1):+.1f}%)"
                )
            print(f"| {net} | " + " | ".join(cells) + " |", flush=True)
    if args.hooks:
        _print_hooks(results)
    print()


def _print_hooks(results):
    """The added CPU time per step, split into the callback's hooks (host
    side, its own thread's CPU time) and the rest (the added graph ops, the
    switch between two compiled functions, Keras's own handling)."""
    print()
    print("added process CPU time per step: hooks (host side) + the rest:")
    print()
    print(
        "| network | every step: added | hooks | rest "
        "| every 10th step: added | hooks | rest |"
    )
    print("|---|---|---|---|---|---|---|")
    for net, med in results.items():
        base = med["none", 1]
        cells = []
        for name in ("every step", "every 10th step"):
            added = med[name, 1] - base
            host = med[name, 2]
            for value in (added, host, added - host):
                cells.append(
                    f"{1e6 * value:+.0f} us ({100 * value / base:+.1f}%)"
                )
        print(f"| {net} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
