"""Compression of a digits conv model and a recurrent model, in one run.

Two models are trained on scikit-learn's digits (embedded, no download):

* ``conv``: Conv2D(32) -> Conv2D(64) -> Dense(128) -> Dense(10), kernels
  drawn by kerasweights initializers (DeltaOrthogonal, GainVarianceScaling);
* ``recurrent``: the images read row by row (8 steps of 8 pixels) through
  kerasweights' MGU(128, return_sequences) -> MinGRU(128) -> Dense(10).

Each trained model is then compressed with `kerasweights.compression
.compress` in several ways, each starting from the same trained weights and
fine-tuned for the same number of epochs: pruned to 50% and 80%, int8 with
quantization-aware fine-tuning, int8 post-training, pruned 50% / 80% plus
int8. The original trained for as many more epochs without compression is
measured too, so what fine-tuning alone changes can be told apart. Every
variant is converted to TFLite and measured the same way:

* size: the TFLite flatbuffer as written, and gzipped (level 9), which is
  how a sparse or clustered model shrinks on disk or on the wire (a TFLite
  file stores zeros like any other value);
* accuracy: on the held-out test split (360 images), by the TFLite file;
* latency: one example per call, TFLite interpreter with one thread,
  median over rounds in which all variants take turns (interleaved), so a
  slow phase of the shared machine hits them alike.

Usage:
    python -m benchmarks.compression [--quick] [--markdown FILE]
"""

import argparse
import gzip
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasweights.compression import TFLiteModel  # noqa: E402
from kerasweights.compression import compress  # noqa: E402
from kerasweights.compression import convert_to_tflite  # noqa: E402
from kerasweights.datasets.digits import load_digits  # noqa: E402
from kerasweights.initializers import DeltaOrthogonal  # noqa: E402
from kerasweights.initializers import GainVarianceScaling  # noqa: E402
from kerasweights.recurrent import MGU  # noqa: E402
from kerasweights.recurrent import MinGRU  # noqa: E402

VARIANTS = (
    ("original (float32)", {}),
    ("original, fine-tuned as long (float32)", None),
    ("pruned 50%", {"prune": 0.5}),
    ("pruned 80%", {"prune": 0.8}),
    ("int8 (QAT)", {"quantize": "int8"}),
    ("int8 (post-training)", {"quantize": "int8-ptq"}),
    ("pruned 50% + int8 (QAT)", {"prune": 0.5, "quantize": "int8"}),
    ("pruned 80% + int8 (QAT)", {"prune": 0.8, "quantize": "int8"}),
)


def conv_model():
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(
        32, 3, activation="relu", kernel_initializer=DeltaOrthogonal()
    )(inputs)
    x = keras.layers.Conv2D(
        64, 3, activation="relu", kernel_initializer=DeltaOrthogonal()
    )(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(
        128,
        activation="relu",
        kernel_initializer=GainVarianceScaling(activation="relu"),
    )(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="conv")


def recurrent_model():
    inputs = keras.Input((8, 8), name="rows")
    x = MGU(128, return_sequences=True)(inputs)
    x = MinGRU(128)(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="recurrent")


def _gzip(content):
    return len(gzip.compress(content, compresslevel=9, mtime=0))


def _train(model, data, epochs, validate=True):
    keras.utils.set_random_seed(0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val) if validate else None,
        epochs=epochs,
        batch_size=32,
        verbose=0,
    )
    return model


def run_model(name, build, view, train_epochs, tune_epochs, rounds):
    data = load_digits(view, seed=0)
    start = time.perf_counter()
    original = _train(build(), data, train_epochs)
    print(f"[{name}] trained in {time.perf_counter() - start:.0f} s")

    rows = []
    for label, options in VARIANTS:
        start = time.perf_counter()
        if options is None:
            # The same extra epochs without compression: what fine-tuning
            # alone changes.
            model = type(original).from_config(original.get_config())
            model.set_weights(original.get_weights())
            model = _train(model, data, tune_epochs, validate=False)
            options = {}
        elif options:
            model = compress(
                original,
                data.x_train,
                data.y_train,
                epochs=tune_epochs,
                measure=False,
                **options,
            ).model
        else:
            model = original
        quantized = options.get("quantize") is not None
        content = convert_to_tflite(
            model, quantize="int8" if quantized else None
        )
        runner = TFLiteModel(content)
        probs = runner.predict(data.x_test)
        keras_probs = model.predict(data.x_test, verbose=0)
        weights = model.get_weights()
        rows.append(
            {
                "variant": label,
                "tflite_bytes": len(content),
                "tflite_gzip_bytes": _gzip(content),
                "accuracy": float(np.mean(probs.argmax(1) == data.y_test)),
                "keras_accuracy": float(
                    np.mean(keras_probs.argmax(1) == data.y_test)
                ),
                "nonzero": int(sum(np.count_nonzero(w) for w in weights)),
                "parameters": int(sum(w.size for w in weights)),
                "runner": runner,
                "latencies": [],
            }
        )
        print(
            f"[{name}] {label}: {time.perf_counter() - start:.0f} s, "
            f"accuracy {rows[-1]['accuracy']:.4f}"
        )

    example = data.x_test[:1]
    for _ in range(rounds):
        for row in rows:
            row["latencies"].append(row["runner"].latency(example, 200))
    base = rows[0]
    for row in rows:
        row["latency_ms"] = 1e3 * statistics.median(row["latencies"])
        row["size_ratio"] = base["tflite_gzip_bytes"] / row["tflite_gzip_bytes"]
        row["raw_ratio"] = base["tflite_bytes"] / row["tflite_bytes"]
        row["accuracy_change"] = 100 * (row["accuracy"] - base["accuracy"])
        row["tuned_change"] = 100 * (row["accuracy"] - rows[1]["accuracy"])
        row["latency_ratio"] = row["latency_ms"] / base["latency_ms"]
        del row["runner"]
    return rows


def markdown(results):
    lines = []
    for name, rows in results.items():
        lines += [
            f"**{name}** ({rows[0]['parameters']} parameters)",
            "",
            "| variant | TFLite | gzipped | smaller (gzipped) | nonzero "
            "weights | test accuracy | change (points) | change vs "
            "fine-tuned float | latency | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['variant']} | {r['tflite_bytes'] / 1024:.1f} KiB "
                f"| {r['tflite_gzip_bytes'] / 1024:.1f} KiB "
                f"| {r['size_ratio']:.2f}x | {r['nonzero']} "
                f"| {r['accuracy']:.4f} | {r['accuracy_change']:+.2f} "
                f"| {r['tuned_change']:+.2f} "
                f"| {1e3 * r['latency_ms']:.0f} us "
                f"| {r['latency_ratio']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="few epochs, for a smoke run"
    )
    parser.add_argument("--markdown", metavar="FILE")
    args = parser.parse_args(argv)

    train, tune, rounds = (2, 1, 2) if args.quick else (30, 8, 7)
    results = {
        "digits conv": run_model(
            "conv", conv_model, "image", train, tune, rounds
        ),
        "digits recurrent (MGU + MinGRU)": run_model(
            "recurrent", recurrent_model, "sequence", train, tune, rounds
        ),
    }
    text = markdown(results)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return results


if __name__ == "__main__":
    main()
