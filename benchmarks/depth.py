"""Trainability against depth: plain deep MLPs and CNNs on the digits data.

For each architecture (MLP, CNN), activation (tanh, relu), depth and
initializer, in one run:

* the ratio of the gradient norm of the first hidden kernel to that of the
  last hidden kernel at initialization, computed on the Keras model (one
  batch of 256 training samples; 1 means the gradient reaches the input
  layer undamped), and
* the test accuracy after a fixed number of epochs of SGD with momentum,
  at the learning rate of a small grid that did best on a validation
  split, the same grid for every initializer.

Networks are plain: ``depth`` layers with the activation, zero biases, no
normalization, no residual connection, then a Dense classifier
(glorot_uniform). MLP: Dense layers of ``--width`` units. CNN: 3x3
``padding="same"`` Conv2D layers of ``--channels`` channels on the 8x8
images, then Flatten. Every kernel is drawn by the initializer under test
on a real Keras model (LSUV runs on that model); the weights are then
copied into an equivalent network written with TensorFlow ops that trains
every (initializer, learning rate) pair of a depth at once as one batched,
XLA-compiled computation. At small depths the benchmark checks that this
network gives the Keras model's logits.

Run from the repository root:

    python -m benchmarks.depth --quick   # a few minutes
    python -m benchmarks.depth           # the table of the docs

Writes the table into docs/benchmarks-depth.md (between the markers of
the mode that ran) and a plot to docs/img/depth_<mode>.png.
"""

import argparse
import json
import math
import os
import pathlib
import platform
import re
import shlex
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweights.initializers import DeltaOrthogonal  # noqa: E402
from kerasweights.initializers import GainVarianceScaling  # noqa: E402
from kerasweights.initializers import LSUVWarning  # noqa: E402
from kerasweights.initializers import OrthogonalGain  # noqa: E402
from kerasweights.initializers import ZerO  # noqa: E402
from kerasweights.initializers import lsuv_initialize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks-depth.md"

# Orthogonal gain at the critical point with zero biases: tanh'(0) = 1
# gives sigma_w = 1 (Pennington, Schoenholz & Ganguli 2017; Xiao et al.
# 2018); relu halves the second moment, so sqrt(2) keeps it (no gain gives
# relu dynamical isometry, Pennington et al. 2017).
CRITICAL_GAIN = {"tanh": 1.0, "relu": math.sqrt(2.0)}
MOMENTUM = 0.9
BATCH = 64
RATIO_SAMPLES = 256


def initializers(arch, activation, seed):
    """Name -> (family, kernel initializer factory, uses LSUV).

    A factory returns what goes into ``kernel_initializer`` for one model;
    our seeded initializers give every layer a different draw from one
    object (see docs/initializers.md), Keras' strings draw from the global
    seed set before the model is built.
    """
    gain = CRITICAL_GAIN[activation]
    ortho = (
        ("DeltaOrthogonal", lambda: DeltaOrthogonal(gain=gain, seed=seed))
        if arch == "cnn"
        else ("OrthogonalGain", lambda: OrthogonalGain(gain=gain, seed=seed))
    )
    return {
        "keras glorot_uniform": ("keras", lambda: "glorot_uniform", False),
        "keras he_normal": ("keras", lambda: "he_normal", False),
        "keras orthogonal": ("keras", lambda: "orthogonal", False),
        "GainVarianceScaling": (
            "ours",
            lambda: GainVarianceScaling(
                activation, mode="fan_in", distribution="normal", seed=seed
            ),
            False,
        ),
        ortho[0]: ("ours", ortho[1], False),
        "ZerO": ("ours", ZerO, False),
        "LSUV": ("ours", lambda: "orthogonal", True),
    }


def load_data(seed):
    """Train / validation / test split of scikit-learn's digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.2, random_state=seed, stratify=y_rest
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-3
    return [
        ((a - mean) / std, b)
        for a, b in (
            (x_train, y_train),
            (x_val, y_val),
            (x_test, y_test),
        )
    ]


def to_input(arch, x):
    return x.reshape(-1, 8, 8, 1) if arch == "cnn" else x


def build(arch, depth, size, activation, kernel_initializer):
    """The plain Keras model: ``depth`` hidden layers, then the readout."""
    if arch == "cnn":
        layers = [keras.Input((8, 8, 1))]
        layers += [
            keras.layers.Conv2D(
                size,
                3,
                padding="same",
                activation=activation,
                kernel_initializer=kernel_initializer,
            )
            for _ in range(depth)
        ]
        layers.append(keras.layers.Flatten())
    else:
        layers = [keras.Input((64,))]
        layers += [
            keras.layers.Dense(
                size,
                activation=activation,
                kernel_initializer=kernel_initializer,
            )
            for _ in range(depth)
        ]
    layers.append(keras.layers.Dense(10, kernel_initializer="glorot_uniform"))
    return keras.Sequential(layers)


def gradient_ratio(model, x, y):
    """|dL/dW_first| / |dL/dW_last| over the hidden kernels, at init."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    hidden = [
        layer.kernel
        for layer in model.layers[:-1]
        if getattr(layer, "kernel", None) is not None
    ]
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    first, last = tape.gradient(loss, [hidden[0], hidden[-1]])
    return float(tf.norm(first) / tf.norm(last))


# --- The batched network: R independent copies trained side by side -----


def _patches(h):
    """3x3 'same' patches of (..., 8, 8, C) in Keras' kernel order."""
    rank = len(h.shape)
    pad = [[0, 0]] * (rank - 3) + [[1, 1], [1, 1], [0, 0]]
    hp = tf.pad(h, pad)
    return tf.concat(
        [hp[..., i : i + 8, j : j + 8, :] for i in range(3) for j in range(3)],
        axis=-1,
    )


def make_network(arch, activation):
    """forward(params, x) -> logits (R, B, 10) for the R stacked runs.

    ``params`` = (first kernel, first bias, stacked hidden kernels, stacked
    hidden biases, readout kernel, readout bias), each with a leading run
    axis R (the stacked ones with the layer axis first).
    """
    act = tf.tanh if activation == "tanh" else tf.nn.relu

    def hidden_layer(h, kernel, bias):
        if arch == "cnn":
            r, b = h.shape[0], tf.shape(h)[1]
            flat = tf.reshape(_patches(h), [r, -1, kernel.shape[-2] * 9])
            k = tf.reshape(kernel, [r, -1, kernel.shape[-1]])
            out = tf.matmul(flat, k) + bias[:, None, :]
            return act(tf.reshape(out, [r, b, 8, 8, kernel.shape[-1]]))
        return act(tf.matmul(h, kernel) + bias[:, None, :])

    def forward(params, x):
        w0, b0, ws, bs, wo, bo = params
        r = w0.shape[0]
        h = tf.broadcast_to(x[None], tf.concat([[r], tf.shape(x)], 0))
        h = hidden_layer(h, w0, b0)
        if ws.shape[0]:
            h = tf.foldl(
                lambda h, wb: hidden_layer(h, wb[0], wb[1]),
                (ws, bs),
                initializer=h,
            )
        h = tf.reshape(h, [r, tf.shape(h)[1], -1])
        return tf.matmul(h, wo) + bo[:, None, :]

    return forward


def make_trainer(forward):
    @tf.function(jit_compile=True)
    def step(params, velocity, x, y, lr):
        with tf.GradientTape() as tape:
            tape.watch(params)
            logits = forward(params, x)
            labels = tf.broadcast_to(y[None], tf.shape(logits)[:2])
            loss = tf.reduce_sum(
                tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(
                        labels, logits
                    ),
                    axis=1,
                )
            )
        grads = tape.gradient(loss, params)
        new_velocity, new_params = [], []
        for i, (p, v, g) in enumerate(
            zip(params, velocity, grads, strict=True)
        ):
            v = MOMENTUM * v + g
            # The run axis: second for the stacked hidden layers, else first.
            shape = [1] * len(p.shape)
            shape[1 if i in (2, 3) else 0] = -1
            new_velocity.append(v)
            new_params.append(p - tf.reshape(lr, shape) * v)
        return new_params, new_velocity

    @tf.function(jit_compile=True)
    def predict(params, x):
        return forward(params, x)

    return step, predict


def stack_params(models, arch):
    """Copy the Keras models' weights into the batched parameters."""
    per_model = []
    for model in models:
        hidden = [
            (layer.kernel.numpy(), layer.bias.numpy())
            for layer in model.layers[:-1]
            if getattr(layer, "kernel", None) is not None
        ]
        out = model.layers[-1]
        per_model.append((hidden, out.kernel.numpy(), out.bias.numpy()))
    w0 = np.stack([m[0][0][0] for m in per_model])
    b0 = np.stack([m[0][0][1] for m in per_model])
    ws = np.stack(
        [np.stack([k for k, _ in m[0][1:]]) for m in per_model], axis=1
    )
    bs = np.stack(
        [np.stack([b for _, b in m[0][1:]]) for m in per_model], axis=1
    )
    wo = np.stack([m[1] for m in per_model])
    bo = np.stack([m[2] for m in per_model])
    return [tf.constant(a, tf.float32) for a in (w0, b0, ws, bs, wo, bo)]


def repeat_runs(params, times):
    """Each model's parameters ``times`` times (one copy per learning rate)."""
    out = []
    for i, p in enumerate(params):
        axis = 1 if i in (2, 3) else 0
        out.append(tf.repeat(p, times, axis=axis))
    return out


def accuracy(predict, params, x, y):
    logits = predict(params, tf.constant(x)).numpy()
    finite = np.isfinite(logits).all(axis=-1)
    correct = (np.argmax(logits, axis=-1) == y[None]) & finite
    return correct.mean(axis=1), ~finite.all(axis=1)


def train_batched(arch, activation, params, lrs, data, epochs, seed):
    """SGD+momentum, 1-epoch linear warm-up then cosine decay, per run lr."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    forward = make_network(arch, activation)
    step, predict = make_trainer(forward)
    velocity = [tf.zeros_like(p) for p in params]
    lr = tf.constant(lrs, tf.float32)
    n = len(x_train)
    per_epoch = n // BATCH
    total = per_epoch * epochs
    rng = np.random.default_rng(seed)
    x_train = to_input(arch, x_train)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(per_epoch):
            idx = order[i * BATCH : (i + 1) * BATCH]
            scale = min(1.0, (t + 1) / per_epoch) * 0.5
            scale *= 1 + math.cos(math.pi * t / total)
            params, velocity = step(
                params,
                velocity,
                tf.constant(x_train[idx]),
                tf.constant(y_train[idx]),
                lr * scale,
            )
            t += 1
    val, _ = accuracy(predict, params, to_input(arch, x_val), y_val)
    test, diverged = accuracy(predict, params, to_input(arch, x_test), y_test)
    return val, test, diverged


def check_equivalent(arch, activation, models, params, x):
    """The batched network gives each Keras model's logits."""
    forward = make_network(arch, activation)
    mine = forward(params, tf.constant(x)).numpy()
    for i, model in enumerate(models):
        theirs = model(x).numpy()
        scale = np.abs(theirs).max() + 1e-6
        err = np.abs(mine[i] - theirs).max() / scale
        if not err < 2e-3:
            raise AssertionError(
                f"batched {arch} run {i} differs from its Keras model by "
                f"{err:.2e} (relative)"
            )


# --- One (arch, activation, depth) cell of the table ---------------------


def depth_lr(base, depth):
    """The peak learning rate at ``depth`` for a grid value ``base``.

    ``base`` is the rate at depth 10; deeper networks get
    ``base * sqrt(10 / depth)``: a plain net's output moves by the sum of
    every layer's update, so the step must shrink as layers are added.
    """
    return base * math.sqrt(10.0 / depth)


def run_depth(args, data, arch, activation, depth, train):
    (x_train, y_train) = data[0]
    x_ratio = to_input(arch, x_train[:RATIO_SAMPLES])
    y_ratio = y_train[:RATIO_SAMPLES]
    size = args.channels if arch == "cnn" else args.width
    specs = initializers(arch, activation, args.seed)
    models, rows = [], []
    for name, (family, factory, uses_lsuv) in specs.items():
        keras.utils.set_random_seed(args.seed)
        started = time.perf_counter()
        model = build(arch, depth, size, activation, factory())
        note = ""
        if uses_lsuv:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always", LSUVWarning)
                report = lsuv_initialize(
                    model,
                    x_ratio,
                    tolerance=0.1,
                    max_iterations=5,
                    seed=args.seed,
                )
            bad = sum(r.status != "converged" for r in report.layers)
            if bad:
                note = f"LSUV: {bad} of {len(report.layers)} layers outside"
        ratio = gradient_ratio(model, x_ratio, y_ratio)
        models.append(model)
        rows.append(
            {
                "arch": arch,
                "activation": activation,
                "depth": depth,
                "initializer": name,
                "family": family,
                "ratio": ratio,
                "accuracy": float("nan"),
                "lr": float("nan"),
                "diverged": False,
                "init_seconds": time.perf_counter() - started,
                "note": note,
            }
        )
    if train == "none":
        return rows, 0.0
    if train == "some":
        # Deeper than the full grid allows: a few initializers, one rate.
        keep = [
            i
            for i, row in enumerate(rows)
            if row["initializer"] in args.deep_initializers
        ]
        models = [models[i] for i in keep]
        trained = [rows[i] for i in keep]
        bases = [args.lrs[len(args.lrs) // 2]]
    else:
        trained = rows
        bases = list(args.lrs)
    lrs = [depth_lr(base, depth) for base in bases]
    if not trained:
        return rows, 0.0
    params = stack_params(models, arch)
    if depth <= 30:
        check_equivalent(arch, activation, models, params, x_ratio[:64])
    del models
    params = repeat_runs(params, len(lrs))
    started = time.perf_counter()
    val, test, diverged = train_batched(
        arch,
        activation,
        params,
        [lr for _ in trained for lr in lrs],
        data,
        args.epochs,
        args.seed,
    )
    seconds = time.perf_counter() - started
    for i, row in enumerate(trained):
        block = slice(i * len(lrs), (i + 1) * len(lrs))
        best = int(np.argmax(val[block]))
        row["accuracy"] = float(test[block][best])
        row["val_accuracy"] = float(val[block][best])
        row["lr"] = bases[best]
        row["diverged"] = bool(diverged[block][best])
        row["all_test"] = [float(a) for a in test[block]]
    return rows, seconds


# --- Output --------------------------------------------------------------


def fmt_ratio(r):
    """The ratio for the table; "inf" and "nan" (0/0 or inf/inf) as such."""
    if math.isnan(r):
        return "nan"
    if math.isinf(r):
        return "inf"
    if r == 0:
        return "0"
    return f"{r:.3g}" if 1e-3 <= r <= 1e4 else f"{r:.1e}"


def fmt_cell(row):
    ratio = fmt_ratio(row["ratio"])
    if math.isnan(row["accuracy"]):
        return f"- / {ratio}"
    return f"{row['accuracy']:.3f} / {ratio}"


def table(rows, arch, activation, depths):
    subset = [
        r for r in rows if r["arch"] == arch and r["activation"] == activation
    ]
    if not subset:
        return ""
    lines = [
        f"\n**{arch.upper()}, {activation}**: test accuracy / gradient-norm "
        "ratio (first / last hidden kernel) at init\n",
        "| initializer | "
        + " | ".join(f"depth {d}" for d in depths)
        + " | lr picked |",
        "|---|" + "---|" * (len(depths) + 1),
    ]
    for name in dict.fromkeys(r["initializer"] for r in subset):
        cells, picked = [], []
        for d in depths:
            match = [
                r
                for r in subset
                if r["depth"] == d and r["initializer"] == name
            ]
            cells.append(fmt_cell(match[0]) if match else "")
            if match and not math.isnan(match[0]["lr"]):
                picked.append(f"{match[0]['lr']:g}")
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {', '.join(picked) or '-'} |"
        )
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    archs = list(dict.fromkeys(r["arch"] for r in rows))
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    fig, axes = plt.subplots(
        2 * len(archs),
        len(acts),
        figsize=(5.5 * len(acts), 3.6 * 2 * len(archs)),
        squeeze=False,
    )
    for a, arch in enumerate(archs):
        for col, activation in enumerate(acts):
            subset = [
                r
                for r in rows
                if r["arch"] == arch and r["activation"] == activation
            ]
            top, bottom = axes[2 * a, col], axes[2 * a + 1, col]
            for name in dict.fromkeys(r["initializer"] for r in subset):
                pts = sorted(
                    (r["depth"], r["accuracy"], r["ratio"], r["family"])
                    for r in subset
                    if r["initializer"] == name
                )
                style = "-" if pts[0][3] == "ours" else "--"
                depths = [p[0] for p in pts]
                top.plot(depths, [p[1] for p in pts], style, marker="o")
                ratios = [
                    p[2] if p[2] > 0 and math.isfinite(p[2]) else np.nan
                    for p in pts
                ]
                bottom.plot(depths, ratios, style, marker="o", label=name)
            top.set_title(f"{arch.upper()} {activation}: test accuracy")
            top.set_ylim(0, 1)
            bottom.set_title(
                f"{arch.upper()} {activation}: |grad W1| / |grad WL| at init"
            )
            bottom.set_yscale("log")
            bottom.axhspan(0.1, 10, color="green", alpha=0.08)
            bottom.legend(fontsize=7)
            all_depths = sorted({r["depth"] for r in subset})
            for ax in (top, bottom):
                ax.set_xscale("log")
                ax.set_xlabel("depth (hidden layers)")
                ax.set_xticks(all_depths, [str(d) for d in all_depths])
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


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


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.depth", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="depths 10 and 30 (the CNN at 30: a subset), 4 epochs, "
        "two learning rates; about 2 minutes",
    )
    parser.add_argument(
        "--archs", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"]
    )
    parser.add_argument(
        "--activations",
        nargs="+",
        choices=["tanh", "relu"],
        default=["tanh", "relu"],
    )
    parser.add_argument("--mlp-depths", type=int, nargs="+")
    parser.add_argument("--cnn-depths", type=int, nargs="+")
    parser.add_argument(
        "--mlp-train-max",
        type=int,
        help="train MLPs up to this depth; deeper ones get the ratio only",
    )
    parser.add_argument("--cnn-train-max", type=int)
    parser.add_argument(
        "--mlp-deep-train-max",
        type=int,
        help="beyond --mlp-train-max and up to this depth, train only "
        "--deep-initializers at the middle learning rate",
    )
    parser.add_argument("--cnn-deep-train-max", type=int)
    parser.add_argument("--deep-activations", nargs="+", default=["tanh"])
    parser.add_argument(
        "--deep-initializers",
        nargs="+",
        default=["keras glorot_uniform", "OrthogonalGain", "DeltaOrthogonal"],
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument(
        "--lrs", type=float, nargs="+", help="learning-rate grid (peak)"
    )
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-write", action="store_true", help="print the table only"
    )
    parser.add_argument(
        "--save-rows",
        metavar="FILE",
        help="also write every measured row as JSON after each cell",
    )
    args = parser.parse_args(argv)
    if args.quick:
        defaults = dict(
            mlp_depths=[10, 30],
            cnn_depths=[10, 30],
            mlp_train_max=30,
            cnn_train_max=10,
            mlp_deep_train_max=30,
            cnn_deep_train_max=30,
            epochs=4,
            lrs=[1e-2, 3e-2],
        )
    else:
        defaults = dict(
            mlp_depths=[10, 30, 100, 300, 1000],
            cnn_depths=[10, 30, 100, 300, 1000],
            mlp_train_max=300,
            cnn_train_max=10,
            mlp_deep_train_max=1000,
            cnn_deep_train_max=30,
            epochs=10,
            lrs=[3e-3, 1e-2, 3e-2],
        )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None):
    argv = list(argv if argv is not None else sys.argv[1:])
    args = parse_args(argv)
    # Keras walks a Sequential model's graph recursively: 1000 layers
    # need more than Python's default limit of 1000 frames.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    # --save-rows changes what is written, not what is measured.
    measured = [a for a in argv if a != args.save_rows and a != "--save-rows"]
    if measured == ["--quick"]:
        mode = "quick"
    else:
        mode = "full" if not measured else "custom"
    data = load_data(args.seed)
    rows, log, started = [], [], time.perf_counter()
    for arch in args.archs:
        depths = args.cnn_depths if arch == "cnn" else args.mlp_depths
        limit = args.cnn_train_max if arch == "cnn" else args.mlp_train_max
        deep_limit = (
            args.cnn_deep_train_max
            if arch == "cnn"
            else args.mlp_deep_train_max
        )
        for activation in args.activations:
            for depth in depths:
                cell_start = time.perf_counter()
                if depth <= limit:
                    train = "all"
                elif (
                    depth <= deep_limit and activation in args.deep_activations
                ):
                    train = "some"
                else:
                    train = "none"
                cell, train_s = run_depth(
                    args, data, arch, activation, depth, train
                )
                rows.extend(cell)
                if args.save_rows:
                    pathlib.Path(args.save_rows).write_text(json.dumps(rows))
                wall = time.perf_counter() - cell_start
                log.append((arch, activation, depth, wall, train_s))
                for row in cell:
                    print(
                        f"{arch} {activation:4s} depth {depth:4d} "
                        f"{row['initializer']:22s} {fmt_cell(row):>18s} "
                        f"lr {row['lr']:g} {row['note']}",
                        flush=True,
                    )
                print(
                    f"  -> {arch} {activation} depth {depth}: {wall:.0f} s "
                    f"({train_s:.0f} s training)",
                    flush=True,
                )
    total = time.perf_counter() - started
    command = shlex.join(["python", "-m", "benchmarks.depth"] + argv)
    timing = ", ".join(
        f"{arch} {act} {depth}: {wall:.0f} s"
        for arch, act, depth, wall, _ in log
    )
    text = (
        f"Command: `nice -n 5 {command}`  \n"
        f"{args.epochs} epochs of SGD (momentum {MOMENTUM}, batch {BATCH}, "
        f"1-epoch linear warm-up, cosine decay). Peak learning rate "
        f"`base * sqrt(10 / depth)`, `base` picked per initializer and "
        f"depth from {args.lrs} by validation accuracy. MLP width "
        f"{args.width}, CNN {args.channels} channels. Every initializer "
        f"trained up to depth {args.mlp_train_max} (MLP) / "
        f"{args.cnn_train_max} (CNN); deeper, up to "
        f"{args.mlp_deep_train_max} / {args.cnn_deep_train_max}, only "
        f"{', '.join(args.deep_initializers)} with "
        f"{', '.join(args.deep_activations)} at base "
        f"{args.lrs[len(args.lrs) // 2]:g}; beyond, gradient ratio only "
        f"(`-` in the table); seed {args.seed}. "
        f"Total wall time {total / 60:.1f} min on a shared "
        f"{os.cpu_count()}-core machine "
        f"({platform.processor() or platform.machine()}), TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}. "
        f"Per cell (all initializers and learning rates): {timing}.\n"
    )
    for arch in args.archs:
        depths = args.cnn_depths if arch == "cnn" else args.mlp_depths
        for activation in args.activations:
            text += table(rows, arch, activation, depths) + "\n"
    text += f"\n![depth plot](img/depth_{mode}.png)"
    print(text)
    if not args.no_write:
        write_page(mode, text)
        plot(rows, ROOT / "docs" / "img" / f"depth_{mode}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
