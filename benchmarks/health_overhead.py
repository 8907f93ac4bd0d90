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
disturb far less.

``--calls`` measures instead what one recorded step adds to the compiled
step itself, without fit, its callbacks or the host reads around it: the
model's own train function and the tapped one are called alternately, in
blocks of ``--block`` calls on the same batches, and the medians over
``--blocks`` blocks are compared. On a noisy shared machine this isolates
the in-graph cost far better than whole epochs do.

Usage:
    python benchmarks/health_overhead.py [--rounds 3] [--epochs 5]
        [--batch-size 32] [--nets dense conv recurrent] [--jit-compile]
    python benchmarks/health_overhead.py --calls [--blocks 30]
        [--block 50] [--batch-size 32] [--nets ...] [--jit-compile]
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


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        wall, cpu = self._start
        self.times.append(
            (time.perf_counter() - wall, time.process_time() - cpu)
        )


def measure(net, rounds, epochs, batch_size, jit_compile=False):
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
    samples = {(name, c): [] for name in VARIANTS for c in (0, 1)}
    names = list(VARIANTS)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            timer = EpochTimer()
            callbacks = [timer]
            if VARIANTS[name] is not None:
                health = GradientHealth(every_n_steps=VARIANTS[name])
                callbacks = [health, timer]
            models[name].fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=0,
                callbacks=callbacks,
            )
            for wall, cpu in timer.times[1:]:
                samples[name, 0].append(wall / steps)
                samples[name, 1].append(cpu / steps)
    return {key: statistics.median(v) for key, v in samples.items()}


def measure_calls(net, blocks, block, batch_size, jit_compile=False):
    """Median CPU and wall ms per call: the model's own step, a recorded one."""
    import tensorflow as tf

    from kerasweights.health.tap import GradientTap

    build, shape = NETS[net]
    x, y = digits()
    x = shape(x)
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(
        "adam", "sparse_categorical_crossentropy", jit_compile=jit_compile
    )
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    tap = GradientTap(model, every_n_steps=1)
    tap.install()
    data = tf.data.Dataset.from_tensor_slices((x, y))
    batches = iter(data.batch(batch_size, drop_remainder=True).repeat())
    functions = {
        "own": (tap.plain_function, True),
        "recorded": (tap.tapped_function, False),
    }
    samples = {(name, c): [] for name in functions for c in (0, 1)}
    for b in range(-2, blocks):  # two warm-up blocks (tracing)
        names = list(functions) if b % 2 == 0 else list(functions)[::-1]
        for name in names:
            function, plain = functions[name]
            tap.use_plain(plain)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(block):
                function(batches)
            if b >= 0:
                samples[name, 0].append((time.perf_counter() - wall) / block)
                samples[name, 1].append((time.process_time() - cpu) / block)
    tap.remove()
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
            net, args.blocks, args.block, args.batch_size, args.jit_compile
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
            "| network | own step | recorded step | added per recorded step "
            "| every step, in-graph | every 10th step, in-graph (added/10) |"
        )
        print("|---|---|---|---|---|---|")
        for net, med in results.items():
            own, rec = med["own", clock], med["recorded", clock]
            added = rec - own
            print(
                f"| {net} | {1000 * own:.3f} | {1000 * rec:.3f} | "
                f"{1e6 * added:+.0f} us | {100 * added / own:+.1f}% | "
                f"{10 * added / own:+.1f}% |",
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
            net, args.rounds, args.epochs, args.batch_size, args.jit_compile
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


if __name__ == "__main__":
    main()
