"""Trainability against depth: plain deep MLPs on the digits data.

For each activation (tanh, relu), depth and initializer, in one run:

* the ratio of the gradient norm of the first hidden kernel to that of the
  last hidden kernel at initialization (one batch of 256 training
  samples; 1 means the gradient reaches the input layer undamped), and
* the test accuracy after a fixed number of epochs of Adam.

Networks are plain: ``depth`` Dense layers of ``width`` units with the
activation, zero biases, no normalization, no residual connections, then a
Dense softmax classifier. Keras' glorot_uniform, he_normal and orthogonal
are compared with kerasweights' initializers on the same data split, with
the same seed and optimizer.

Run from the repository root:

    python -m benchmarks.depth --quick   # depths 10 and 30, 3 epochs
    python -m benchmarks.depth           # depths 10, 30, 100, 300
    python -m benchmarks.depth --with-1000

Writes the table into docs/benchmarks-depth.md (between the markers of
the mode that ran) and a plot to docs/img/depth.png (depth-quick.png for
``--quick``).
"""

import argparse
import math
import os
import pathlib
import platform
import re
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweights.initializers import GainVarianceScaling  # noqa: E402
from kerasweights.initializers import OrthogonalGain  # noqa: E402
from kerasweights.initializers import ZerO  # noqa: E402
from kerasweights.initializers import lsuv_initialize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks-depth.md"

# Orthogonal gain at which each activation is critical with zero biases:
# tanh'(0) = 1 gives sigma_w = 1 (Pennington et al. 2017); relu halves
# the second moment, so sqrt(2) keeps it.
ORTHOGONAL_GAIN = {"tanh": 1.0, "relu": math.sqrt(2.0)}


def initializers(activation, seed):
    """Name -> (family, kernel initializer factory, uses LSUV)."""

    def keras_string(name):
        return lambda i: name

    return {
        "keras glorot_uniform": ("keras", keras_string("glorot_uniform"), 0),
        "keras he_normal": ("keras", keras_string("he_normal"), 0),
        "keras orthogonal": ("keras", keras_string("orthogonal"), 0),
        "GainVarianceScaling": (
            "ours",
            lambda i: GainVarianceScaling(
                activation,
                mode="fan_in",
                distribution="normal",
                seed=seed + i,
            ),
            0,
        ),
        "OrthogonalGain": (
            "ours",
            lambda i: OrthogonalGain(
                gain=ORTHOGONAL_GAIN[activation], seed=seed + i
            ),
            0,
        ),
        "ZerO": ("ours", lambda i: ZerO(), 0),
        "LSUV (orthogonal start)": ("ours", keras_string("orthogonal"), 1),
    }


def load_data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3)
    return train_test_split(
        x,
        digits.target,
        test_size=0.25,
        random_state=seed,
        stratify=digits.target,
    )


def build(depth, width, activation, make_init):
    layers = [keras.Input((64,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(
                width, activation=activation, kernel_initializer=make_init(i)
            )
        )
    layers.append(keras.layers.Dense(10, kernel_initializer="glorot_uniform"))
    return keras.Sequential(layers)


def gradient_ratio(model, x, y):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    hidden = [layer.kernel for layer in model.layers[:-1]]
    first, last = tape.gradient(loss, [hidden[0], hidden[-1]])
    return float(tf.norm(first) / tf.norm(last))


def run_one(args, data, activation, depth, name, spec):
    x_train, x_test, y_train, y_test = data
    _, make_init, uses_lsuv = spec
    keras.utils.set_random_seed(args.seed)
    model = build(depth, args.width, activation, make_init)
    started = time.perf_counter()
    if uses_lsuv:
        lsuv_initialize(
            model,
            x_train[:256],
            tolerance=0.1,
            max_iterations=5,
            seed=args.seed,
        )
    ratio = gradient_ratio(model, x_train[:256], y_train[:256])
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=args.epochs,
        verbose=0,
        shuffle=True,
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if not math.isfinite(accuracy):
        accuracy = float("nan")
    return {
        "activation": activation,
        "depth": depth,
        "initializer": name,
        "family": spec[0],
        "ratio": ratio,
        "accuracy": float(accuracy),
        "seconds": time.perf_counter() - started,
    }


def fmt_ratio(r):
    if not math.isfinite(r):
        return "nan"
    if r == 0:
        return "0"
    return f"{r:.3g}" if 1e-3 <= r <= 1e4 else f"{r:.1e}"


def table(rows, depths):
    lines = []
    for activation in dict.fromkeys(r["activation"] for r in rows):
        lines.append(
            f"\n**{activation}**: test accuracy / gradient-norm "
            "ratio (first / last hidden kernel) at init\n"
        )
        lines.append(
            "| initializer | " + " | ".join(f"depth {d}" for d in depths) + " |"
        )
        lines.append("|---|" + "---|" * len(depths))
        names = list(
            dict.fromkeys(
                r["initializer"] for r in rows if r["activation"] == activation
            )
        )
        for name in names:
            cells = []
            for d in depths:
                match = [
                    r
                    for r in rows
                    if r["activation"] == activation
                    and r["depth"] == d
                    and r["initializer"] == name
                ]
                if match:
                    r = match[0]
                    cells.append(
                        f"{r['accuracy']:.3f} / {fmt_ratio(r['ratio'])}"
                    )
                else:
                    cells.append("-")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, depths, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for col, activation in enumerate(("tanh", "relu")):
        subset = [r for r in rows if r["activation"] == activation]
        names = list(dict.fromkeys(r["initializer"] for r in subset))
        for name in names:
            pts = sorted(
                (r["depth"], r["accuracy"], r["ratio"])
                for r in subset
                if r["initializer"] == name
            )
            family = next(
                r["family"] for r in subset if r["initializer"] == name
            )
            style = "-" if family == "ours" else "--"
            d = [p[0] for p in pts]
            axes[0, col].plot(
                d, [p[1] for p in pts], style, marker="o", label=name
            )
            ratios = [
                p[2] if p[2] > 0 and math.isfinite(p[2]) else np.nan
                for p in pts
            ]
            axes[1, col].plot(d, ratios, style, marker="o", label=name)
        axes[0, col].set_title(f"{activation}: test accuracy")
        axes[1, col].set_title(f"{activation}: |grad W1| / |grad WL| at init")
        axes[1, col].set_yscale("log")
        axes[1, col].axhspan(0.1, 10, color="green", alpha=0.08)
        for row in range(2):
            axes[row, col].set_xscale("log")
            axes[row, col].set_xlabel("depth (hidden layers)")
            axes[row, col].set_xticks(depths, [str(x) for x in depths])
            axes[row, col].xaxis.set_minor_formatter(
                matplotlib.ticker.NullFormatter()
            )
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def write_page(mode, text):
    start, end = f"<!-- depth:{mode}:start -->", f"<!-- depth:{mode}:end -->"
    page = PAGE.read_text() if PAGE.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in page and end in page:
        page = re.sub(
            re.escape(start) + ".*?" + re.escape(end),
            lambda _: block,
            page,
            flags=re.S,
        )
    else:
        page = page.rstrip() + "\n\n" + block + "\n"
    PAGE.write_text(page)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.depth", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="depths 10 and 30, 3 epochs"
    )
    parser.add_argument(
        "--with-1000", action="store_true", help="also depth 1000 (slow)"
    )
    parser.add_argument("--depths", type=int, nargs="+")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--activations", nargs="+", default=["tanh", "relu"])
    parser.add_argument(
        "--initializers",
        nargs="+",
        help="only these initializers (names as in the table)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the table only"
    )
    args = parser.parse_args(argv)
    custom = (
        args.depths
        or args.epochs
        or args.initializers
        or args.activations != ["tanh", "relu"]
    )
    mode = "custom" if custom else ("quick" if args.quick else "full")
    suffix = {"quick": "-quick", "full": "", "custom": "-custom"}[mode]
    depths = args.depths or ([10, 30] if args.quick else [10, 30, 100, 300])
    if args.with_1000 and 1000 not in depths:
        depths.append(1000)
    if args.epochs is None:
        args.epochs = 3 if args.quick else 10

    data = load_data(args.seed)
    rows, started = [], time.perf_counter()
    for activation in args.activations:
        for depth in depths:
            for name, spec in initializers(activation, args.seed).items():
                if args.initializers and name not in args.initializers:
                    continue
                row = run_one(args, data, activation, depth, name, spec)
                rows.append(row)
                print(
                    f"{activation:5s} depth {depth:4d} {name:26s} "
                    f"acc {row['accuracy']:.3f} ratio "
                    f"{fmt_ratio(row['ratio']):>8s} "
                    f"({row['seconds']:.0f} s)",
                    flush=True,
                )
    total = time.perf_counter() - started
    command = shlex.join(
        ["python", "-m", "benchmarks.depth"]
        + list(argv if argv is not None else sys.argv[1:])
    )
    text = (
        f"Command: `{command}`  \n"
        f"Epochs: {args.epochs}, width {args.width}, Adam lr "
        f"{args.learning_rate}, batch 64, seed {args.seed}. "
        f"Total time {total / 60:.1f} min on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}.\n"
        + table(rows, depths)
        + f"\n\n![depth plot](img/depth{suffix}.png)"
    )
    print(text)
    if not args.no_write:
        write_page(mode, text)
        plot(
            rows,
            depths,
            ROOT / "docs" / "img" / f"depth{suffix}.png",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
