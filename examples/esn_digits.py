"""Classify handwritten digits with an echo state network.

Each 8x8 digit of scikit-learn's embedded digits data set is read as a
sequence of 8 rows of 8 pixels. A fixed random reservoir (`ESN` from the
kerasweights-esn plugin) runs over the rows; only a softmax readout on its
states is trained: on the states after every row (``--readout all``, the
default) or on the last state only (``--readout last``). For comparison,
the same softmax readout is trained on the raw 64 pixels in the same run.

Digits are nearly linearly separable, so the pixel readout is a strong
baseline here; reservoirs earn their keep on signals whose history matters.

Run (from the repository root)::

    pip install ./plugins/kerasweights-esn
    python examples/esn_digits.py
    python examples/esn_digits.py --readout last --leaky 0.5 --json

``--output model.keras`` also saves the trained model; it loads in a fresh
process after ``import kerasweights`` (which imports the installed plugin).
"""

import argparse
import json
import sys
import time

import keras
import numpy as np

try:
    from kerasweights_esn import ESN
except ImportError:  # the plugin is a separate distribution
    sys.exit(
        "error: this example needs the kerasweights-esn plugin; install it "
        "with `pip install ./plugins/kerasweights-esn`"
    )


READOUTS = {"all": "the states after every row", "last": "the last state"}


def load_sequences(seed):
    """Digits as (samples, 8 rows, 8 pixels) in [0, 1], split 75/25."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target.astype("int32")
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def readout_model(inputs, features):
    """A softmax readout on ``features``, the only trainable part."""
    outputs = keras.layers.Dense(10, activation="softmax", name="readout")(
        features
    )
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--spectral-radius", type=float, default=0.9)
    parser.add_argument("--leaky", type=float, default=1.0)
    parser.add_argument("--connectivity", type=float, default=0.1)
    parser.add_argument("--input-scaling", type=float, default=1.0)
    parser.add_argument(
        "--readout",
        choices=("all", "last"),
        default="all",
        help="train the readout on the states after every row, or the last",
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="save the trained model here")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser.parse_args(argv)


def main(argv=None):
    """Train and evaluate; returns the results (the model included)."""
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    x_train, x_test, y_train, y_test = load_sequences(args.seed)

    inputs = keras.Input((8, 8), name="rows")
    states = ESN(
        args.units,
        spectral_radius=args.spectral_radius,
        leaky=args.leaky,
        connectivity=args.connectivity,
        input_scaling=args.input_scaling,
        seed=args.seed,
        return_sequences=args.readout == "all",
        name="reservoir",
    )(inputs)
    if args.readout == "all":
        states = keras.layers.Flatten()(states)
    model = readout_model(inputs, states)
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)

    pixels = keras.Input((8, 8), name="rows")
    baseline = readout_model(pixels, keras.layers.Flatten()(pixels))
    baseline.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    _, baseline_accuracy = baseline.evaluate(x_test, y_test, verbose=0)

    if args.output:
        model.save(args.output)
    report = {
        "units": args.units,
        "readout": args.readout,
        "epochs": args.epochs,
        "seed": args.seed,
        "test_samples": int(len(y_test)),
        "esn_test_accuracy": round(float(accuracy), 4),
        "pixel_readout_test_accuracy": round(float(baseline_accuracy), 4),
        "trainable_parameters": int(
            sum(np.prod(w.shape) for w in model.trainable_weights)
        ),
        "esn_train_seconds": round(seconds, 2),
        "output": args.output,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"ESN({args.units}) + softmax readout on {READOUTS[args.readout]}: "
            "test accuracy "
            f"{report['esn_test_accuracy']:.4f} "
            f"({report['trainable_parameters']} trainable parameters, "
            f"{seconds:.1f} s)"
        )
        print(
            "softmax readout on raw pixels: test accuracy "
            f"{report['pixel_readout_test_accuracy']:.4f}"
        )
        if args.output:
            print(f"saved {args.output}")
    return {**report, "model": model, "x_test": x_test, "y_test": y_test}


if __name__ == "__main__":
    main()
