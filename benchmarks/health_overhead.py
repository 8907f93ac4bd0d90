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

Usage:
    python benchmarks/health_overhead.py [--rounds 3] [--epochs 5]
        [--batch-size 32] [--nets dense conv recurrent] [--jit-compile]
        [--hooks]
    python benchmarks/health_overhead.py --calls [--blocks 30]
        [--block 50] [--batch-size 32] [--nets ...] [--jit-compile]
        [--against COMMIT]
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


def dense():
    return keras.Sequential(
        [
            keras.Input((64,)),
            L.Dense(128, activation="relu"),
            L.Dense(64, activation="relu"),
            L.Dense(10, activation="softmax"),
        ]
    )


def conv():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(16, 3, activation="relu", padding="same"),
            L.Conv2D(32, 3, activation="relu", padding="same"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )


def recurrent():
    return keras.Sequential(
        [keras.Input((8, 8)), L.GRU(64), L.Dense(10, activation="softmax")]
    )


NETS = {
    "dense": (dense, lambda x: x),
    "conv": (conv, lambda x: x.reshape(-1, 8, 8, 1)),
    "recurrent": (recurrent, lambda x: x.reshape(-1, 8, 8)),
}
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


class _Alternating:
    """Calls ``tapped`` on every ``n``-th call and ``plain`` otherwise,
    as `GradientTap._dispatch` does."""

    def __init__(self, tap, plain, tapped, n):
        self.tap, self.plain, self.tapped, self.n = tap, plain, tapped, n
        self.calls = 0

    def __call__(self, iterator):
        recorded = self.calls % self.n == 0
        self.calls += 1
        self.tap.use_plain(not recorded)
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
            taps[name].use_plain(plain)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(block):
                function(batches)
            if b >= 0:
                samples[name, 0].append((time.perf_counter() - wall) / block)
                samples[name, 1].append((time.process_time() - cpu) / block)
    for used in set(taps.values()):
        used.remove()
    return {key: statistics.median(v) for key, v in samples.items()}


def main_calls(args, nets):
    print(
        f"digits, batch {args.batch_size}, {args.blocks} alternating blocks "
        f"of {args.block} train-function calls, median ms per call"
        + (", jit_compile=True" if args.jit_compile else "")
    )
    load = os.getloadavg()[0]
    results = {
        net: measure_calls(
            net,
            args.blocks,
            args.block,
            args.batch_size,
            args.jit_compile,
            args.against,
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
        if args.against:
            _print_against(results, clock, args.against)


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
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--nets", nargs="+", choices=list(NETS), default=None)
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
    args = parser.parse_args(argv)
    nets = args.nets or list(NETS)
    if args.calls:
        return main_calls(args, nets)

    print(
        f"digits, batch {args.batch_size}, {args.rounds} rounds x "
        f"{args.epochs - 1} timed epochs per variant, median ms per step"
    )
    load = os.getloadavg()[0]
    results = {
        net: measure(
            net,
            args.rounds,
            args.epochs,
            args.batch_size,
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
