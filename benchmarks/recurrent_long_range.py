"""Long-range tasks: steps each recurrent layer needs to reach a target.

Two tasks, every registered ``recurrent`` plugin plus ``keras.layers.LSTM``
and ``keras.layers.GRU``, each layer trained from the same seed with the
same budget:

* **Adding problem** (Hochreiter and Schmidhuber, 1997) at ``T=200``: two
  channels, uniform values and two marks; the target is the sum of the two
  marked values. Always answering 1.0 gives a mean squared error of about
  1/6; the target is a test MSE of 0.05 (``--adding-target``).
* **Pixel-by-pixel digits**: scikit-learn's 8x8 handwritten digits (1797
  images shipped with scikit-learn, nothing downloaded) read one pixel per
  step, 64 steps; the target is a test error of 25% (``--digits-target``)
  on a fixed held-out quarter.

Each layer trains with Adam (``--lr``, gradient norm clipped to 1) on
batches of 32, is evaluated every ``--eval-every`` steps on a fixed test
set, and stops when it reaches the target or its budget (``--adding-steps``,
``--digits-steps``). The table gives the steps needed (or "not reached")
and the best test figure seen. With the defaults (400 and 400 steps) the
whole run takes about 20 minutes on the project's 2-core CPU machine
when it is shared with other jobs (load average near 20); the run in
docs/benchmarks-recurrent.md used 500 adding steps and took 24 minutes.

Usage:
    python -m benchmarks.recurrent_long_range [--units 32]
        [--adding-steps 400] [--digits-steps 400] [--eval-every 50]
        [--only min_gru janet] [--markdown FILE]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.recurrent_speed import layer_factories  # noqa: E402

BATCH = 32


def adding_batch(rng, size, length):
    """``(x, y)`` of the adding problem, ``x`` of shape (size, length, 2)."""
    values = rng.uniform(size=(size, length))
    marks = np.zeros((size, length))
    half = length // 2
    # One mark in each half, as in Hochreiter and Schmidhuber's set-up.
    marks[np.arange(size), rng.integers(0, half, size)] = 1.0
    marks[np.arange(size), rng.integers(half, length, size)] = 1.0
    x = np.stack([values, marks], -1).astype("float32")
    y = (values * marks).sum(-1, keepdims=True).astype("float32")
    return x, y


def digits_data(seed=0):
    """Pixel sequences of scikit-learn's digits: train and test splits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.reshape(-1, 64, 1) / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = len(x) * 3 // 4
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def train_until(model, next_batch, evaluate, target, steps, eval_every):
    """Trains until ``evaluate() <= target``; ``(steps or None, best)``."""
    best = evaluate()
    for step in range(1, steps + 1):
        model.train_on_batch(*next_batch())
        if step % eval_every == 0 or step == steps:
            score = evaluate()
            best = min(best, score)
            if score <= target:
                return step, best
    return None, best


def adding_task(factory, units, length, steps, target, eval_every, lr, seed):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    test_x, test_y = adding_batch(np.random.default_rng(1000), 500, length)
    model = keras.Sequential(
        [keras.Input((length, 2)), factory(units), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr, clipnorm=1.0), loss="mse")

    def evaluate():
        pred = model.predict_on_batch(test_x)
        return float(np.mean((pred - test_y) ** 2))

    return train_until(
        model,
        lambda: adding_batch(rng, BATCH, length),
        evaluate,
        target,
        steps,
        eval_every,
    )


def digits_task(factory, units, steps, target, eval_every, lr, seed, data):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    (train_x, train_y), (test_x, test_y) = data
    model = keras.Sequential(
        [
            keras.Input((64, 1)),
            factory(units),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
    )

    def next_batch():
        index = rng.integers(0, len(train_x), BATCH)
        return train_x[index], train_y[index]

    def evaluate():
        pred = model.predict_on_batch(test_x)
        return float(np.mean(np.argmax(pred, -1) != test_y))

    return train_until(model, next_batch, evaluate, target, steps, eval_every)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--adding-length", type=int, default=200)
    parser.add_argument("--adding-steps", type=int, default=400)
    parser.add_argument("--adding-target", type=float, default=0.05)
    parser.add_argument("--digits-steps", type=int, default=400)
    parser.add_argument("--digits-target", type=float, default=0.25)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="these layers (and Keras)")
    parser.add_argument("--no-adding", action="store_true")
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--markdown", help="also write the tables here")
    args = parser.parse_args(argv)

    factories = layer_factories(only=args.only)
    lines = []

    def emit(line=""):
        print(line, flush=True)
        lines.append(line)

    started = time.perf_counter()
    if not args.no_adding:
        emit(
            f"Adding problem, T={args.adding_length}, batch {BATCH}, "
            f"{args.units} units, Adam lr={args.lr}, at most "
            f"{args.adding_steps} steps; target test MSE "
            f"<= {args.adding_target} (always answering 1.0: about 0.167)."
        )
        emit()
        emit("| layer | steps to target | best test MSE | seconds |")
        emit("|---|---|---|---|")
        for name, factory in factories:
            start = time.perf_counter()
            reached, best = adding_task(
                factory,
                args.units,
                args.adding_length,
                args.adding_steps,
                args.adding_target,
                args.eval_every,
                args.lr,
                args.seed,
            )
            shown = "not reached" if reached is None else str(reached)
            emit(
                f"| {name} | {shown} | {best:.4f} "
                f"| {time.perf_counter() - start:.0f} |"
            )
        emit()
    if not args.no_digits:
        data = digits_data(args.seed)
        emit(
            f"Pixel-by-pixel digits (8x8, 64 steps, {len(data[0][0])} "
            f"training and {len(data[1][0])} test images), batch {BATCH}, "
            f"{args.units} units, Adam lr={args.lr}, at most "
            f"{args.digits_steps} steps; target test error "
            f"<= {args.digits_target:.0%} (chance: 90%)."
        )
        emit()
        emit("| layer | steps to target | best test error | seconds |")
        emit("|---|---|---|---|")
        for name, factory in factories:
            start = time.perf_counter()
            reached, best = digits_task(
                factory,
                args.units,
                args.digits_steps,
                args.digits_target,
                args.eval_every,
                args.lr,
                args.seed,
                data,
            )
            shown = "not reached" if reached is None else str(reached)
            emit(
                f"| {name} | {shown} | {best:.1%} "
                f"| {time.perf_counter() - start:.0f} |"
            )
        emit()
    emit(f"Total time: {time.perf_counter() - started:.0f} s.")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
