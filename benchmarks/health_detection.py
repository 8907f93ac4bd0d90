"""Detection quality of GradientHealth on a labelled set of training runs.

Builds at least 40 healthy and 40 faulty small training runs on the digits
data (scikit-learn's ``load_digits``, no download) and on synthetic tasks,
trains each with ``GradientHealth()`` at its defaults, and reports recall on
the faulty runs, false alarms on the healthy ones and the step at which
each fault was first reported.

Faults (each in several seeds and sizes): learning rate far too high,
learning rate far too low, deep sigmoid networks with a bad start, dying
ReLU from a large negative bias, unnormalised inputs, a log of zero in the
loss, an exploding linear recurrent network. Healthy: dense, conv and
recurrent networks of several sizes with sane optimizers.

Usage:
    python benchmarks/health_detection.py [--quick] [--json OUT.json]

``--quick`` runs 2 of each instead of 6 (a smoke test, not the figures).
``--plot-example PNG`` only trains one deep-sigmoid run and one healthy run
and writes their per-layer gradient norms side by side (the figure in
docs/benchmarks-health.md).
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import ops  # noqa: E402

from kerasweights.health import GradientHealth  # noqa: E402


def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype("float32") / 16.0
    return x[:1024], data.target[:1024].astype("int32")


def synthetic(seed, n=1024, features=16):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features,))
    y = (x @ w + 0.3 * rng.normal(size=n) > 0).astype("int32")
    return x, y


def _normal(stddev, seed):
    return keras.initializers.RandomNormal(stddev=stddev, seed=seed)


def _dense_net(inputs, classes, widths, activation="relu", **kw):
    model = [keras.Input((inputs,))]
    for w in widths:
        model.append(L.Dense(w, activation=activation, **kw))
    model.append(L.Dense(classes, activation="softmax"))
    return keras.Sequential(model)


SCE = "sparse_categorical_crossentropy"


# Each builder returns (model, optimizer, loss, x, y).
def healthy_dense(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    widths = [(32,), (64, 32), (128,), (32, 32, 32), (256, 64), (16,)][i % 6]
    opt = [
        keras.optimizers.Adam(1e-3),
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.optimizers.RMSprop(1e-3),
    ][i % 3]
    classes = 10 if i % 2 == 0 else 2
    return _dense_net(x.shape[1], classes, widths), opt, SCE, x, y


def healthy_tanh(i):
    x, y = digits() if i % 2 else synthetic(i + 100)
    classes = 10 if i % 2 else 2
    model = _dense_net(x.shape[1], classes, (64, 32), activation="tanh")
    return model, keras.optimizers.Adam(1e-3), SCE, x, y


def healthy_conv(i):
    x, y = digits()
    x = x.reshape(-1, 8, 8, 1)
    filters = [8, 16, 32][i % 3]
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(filters, 3, activation="relu", padding="same"),
            L.MaxPooling2D(),
            L.Conv2D(filters, 3, activation="relu"),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )
    return model, keras.optimizers.Adam(1e-3), SCE, x, y


def healthy_rnn(i):
    x, y = digits()
    x = x.reshape(-1, 8, 8)
    cell = [L.GRU, L.LSTM, L.SimpleRNN][i % 3]
    model = keras.Sequential(
        [keras.Input((8, 8)), cell(32), L.Dense(10, activation="softmax")]
    )
    return model, keras.optimizers.Adam(3e-3), SCE, x, y


def lr_too_high(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    classes = 10 if i % 2 == 0 else 2
    opt = [keras.optimizers.SGD(50.0), keras.optimizers.Adam(5.0)][i % 2]
    return _dense_net(x.shape[1], classes, (64, 32)), opt, SCE, x, y


def lr_too_low(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    classes = 10 if i % 2 == 0 else 2
    opt = [keras.optimizers.SGD(1e-7), keras.optimizers.Adam(1e-8)][i % 2]
    return _dense_net(x.shape[1], classes, (64,)), opt, SCE, x, y


def deep_sigmoid(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    classes = 10 if i % 2 == 0 else 2
    model = _dense_net(
        x.shape[1],
        classes,
        (32,) * (8 + i % 3),
        activation="sigmoid",
        kernel_initializer=_normal(0.05, i),
    )
    return model, keras.optimizers.SGD(0.05), SCE, x, y


def dying_relu(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    classes = 10 if i % 2 == 0 else 2
    model = _dense_net(
        x.shape[1],
        classes,
        (64, 64),
        bias_initializer=keras.initializers.Constant(-8.0 - i),
    )
    return model, keras.optimizers.Adam(1e-3), SCE, x, y


def unnormalised(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    classes = 10 if i % 2 == 0 else 2
    x = x * 1000.0 + 500.0
    act = ["tanh", "relu"][i % 2]
    model = _dense_net(x.shape[1], classes, (64,), activation=act)
    return model, keras.optimizers.SGD(0.05), SCE, x, y


def log_of_zero(i):
    x, y = digits() if i % 2 == 0 else synthetic(i)
    classes = 10 if i % 2 == 0 else 2

    def loss(y_true, y_pred):
        # log of a probability that is exactly zero: -inf, then NaN.
        picked = ops.take_along_axis(
            y_pred, ops.expand_dims(ops.cast(y_true, "int32"), -1), axis=-1
        )
        return -ops.mean(ops.log(picked * 0.0))

    return _dense_net(x.shape[1], classes, (32,)), "adam", loss, x, y


def exploding_rnn(i):
    x, y = digits()
    x = x.reshape(-1, 8, 8)
    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            L.SimpleRNN(
                32,
                activation=None,
                recurrent_initializer=_normal(1.0 + 0.2 * i, i),
            ),
            L.Dense(10, activation="softmax"),
        ]
    )
    return model, keras.optimizers.SGD(0.01), SCE, x, y


HEALTHY = {
    "dense": (healthy_dense, 24),
    "tanh": (healthy_tanh, 6),
    "conv": (healthy_conv, 6),
    "rnn": (healthy_rnn, 6),
}
FAULTY = {
    "lr_too_high": lr_too_high,
    "lr_too_low": lr_too_low,
    "deep_sigmoid": deep_sigmoid,
    "dying_relu": dying_relu,
    "unnormalised": unnormalised,
    "log_of_zero": log_of_zero,
    "exploding_rnn": exploding_rnn,
}


def run_one(builder, i, epochs):
    keras.utils.set_random_seed(1000 + i)
    model, opt, loss, x, y = builder(i)
    model.compile(optimizer=opt, loss=loss)
    health = GradientHealth()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[health]
        )
    first = health.problems[0] if health.problems else None
    return {
        "verdict": health.verdict,
        "problems": [p.name for p in health.problems],
        "first_step": first.step if first else None,
        "steps": len(health.records),
        "seconds": time.perf_counter() - start,
    }


def plot_example(path, epochs):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (title, builder) in zip(
        axes,
        [
            ("healthy dense (Adam)", healthy_dense),
            ("deep sigmoid", deep_sigmoid),
        ],
        strict=True,
    ):
        keras.utils.set_random_seed(1000)
        model, opt, loss, x, y = builder(0)
        model.compile(optimizer=opt, loss=loss)
        health = GradientHealth()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(
                x,
                y,
                batch_size=32,
                epochs=epochs,
                verbose=0,
                callbacks=[health],
            )
        steps = [r.step for r in health.records]
        for i, layer in enumerate(health.records[0].layers):
            ax.plot(
                steps,
                [max(r.layers[i].norm, 1e-30) for r in health.records],
                label=layer.name,
            )
        ax.set_yscale("log")
        ax.set_title(f"{title}: {health.verdict}")
        ax.set_xlabel("training step")
    axes[0].set_ylabel("gradient L2 norm per layer")
    axes[1].legend(fontsize="x-small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", metavar="OUT")
    parser.add_argument("--plot-example", metavar="PNG")
    args = parser.parse_args(argv)
    if args.plot_example:
        plot_example(args.plot_example, args.epochs)
        return
    per_fault = 2 if args.quick else 6

    rows = []
    for label, (builder, count) in HEALTHY.items():
        for i in range(2 if args.quick else count):
            result = run_one(builder, i, args.epochs)
            rows.append({"label": "healthy", "kind": label, "i": i, **result})
            print(json.dumps(rows[-1]), file=sys.stderr)
    for label, builder in FAULTY.items():
        for i in range(per_fault):
            result = run_one(builder, i, args.epochs)
            rows.append({"label": "faulty", "kind": label, "i": i, **result})
            print(json.dumps(rows[-1]), file=sys.stderr)

    healthy = [r for r in rows if r["label"] == "healthy"]
    faulty = [r for r in rows if r["label"] == "faulty"]
    found = [r for r in faulty if r["verdict"] != "healthy"]
    alarms = [r for r in healthy if r["verdict"] != "healthy"]
    steps = [r["first_step"] for r in found]

    print(
        "| runs | healthy | faulty | recall | false alarms | "
        "median steps to detect |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {len(rows)} | {len(healthy)} | {len(faulty)} | "
        f"{len(found)}/{len(faulty)} = {100 * len(found) / len(faulty):.1f}% "
        f"| {len(alarms)}/{len(healthy)} = "
        f"{100 * len(alarms) / len(healthy):.1f}% | "
        f"{statistics.median(steps) if steps else '-'} |"
    )
    print()
    print("| kind | label | runs | flagged | verdicts | steps to detect |")
    print("|---|---|---|---|---|---|")
    kinds = list(HEALTHY) + list(FAULTY)
    for kind in kinds:
        group = [r for r in rows if r["kind"] == kind]
        flagged = [r for r in group if r["verdict"] != "healthy"]
        verdicts = sorted({r["verdict"] for r in group})
        det = [r["first_step"] for r in flagged]
        print(
            f"| {kind} | {group[0]['label']} | {len(group)} | "
            f"{len(flagged)} | {', '.join(verdicts)} | "
            f"{(str(min(det)) + '-' + str(max(det))) if det else '-'} |"
        )
    if alarms:
        print("\nFalse alarms:")
        for r in alarms:
            print(f"  {r['kind']} #{r['i']}: {r['problems']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
