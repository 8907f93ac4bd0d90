"""Which kerasweights layers and initializers convert to TFLite, and how.

For every registered recurrent plugin (``kerasweights.plugins("recurrent")``,
last state and per-step outputs through ``TimeDistributed(Dense)``) and
for a Dense/Conv model with each registered initializer, this command tries
the TFLite conversions below with TFLite's built-in operators only, runs
each converted model in ``tf.lite.Interpreter`` with the built-in op
resolver on digits test data (rows as sequences for the recurrent layers,
images for the initializers) and compares it with the Keras model:

* **dynamic batch**: the serving signature as exported (batch ``-1``);
* **batch 1, time dynamic**: what ``export --tflite`` tries first;
* **batch 1, time 8, unrolled**: loops unrolled (``--tflite-time-steps``;
  the initializer models' LSTM reads 8 fixed rows already).

It prints a Markdown table (or writes it into docs/export.md between the
``tflite-table`` markers with ``--write-docs``):

    python -m benchmarks.export_tflite_table --write-docs
"""

import argparse
import os
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "export.md")
START = "<!-- tflite-table:start -->"
END = "<!-- tflite-table:end -->"
RTOL, ATOL = 1e-4, 1e-5


def _recurrent_cases():
    import keras

    import kerasweights

    cases = []
    for record in kerasweights.plugins("recurrent"):

        def last(record=record):
            inputs = keras.Input((None, 8), name="rows")
            x = record.obj(6)(inputs)
            return keras.Model(inputs, keras.layers.Dense(10, name="y")(x))

        def steps(record=record):
            inputs = keras.Input((None, 8), name="rows")
            x = record.obj(6, return_sequences=True)(inputs)
            y = keras.layers.TimeDistributed(keras.layers.Dense(10), name="y")
            return keras.Model(inputs, y(x))

        label = f"`{record.registered_name}`"
        cases.append((label, "recurrent, last state", last))
        cases.append((label, "recurrent, every step", steps))
    return cases


def _initializer_cases():
    import keras

    import kerasweights

    cases = []
    for record in kerasweights.plugins("initializer"):
        targets = getattr(record.obj, "plugin_targets", ("dense_kernel",))

        def build(record=record, targets=targets):
            init = record.obj
            inputs = keras.Input((8, 8, 1), name="pixels")
            x = inputs
            if "conv_kernel" in targets:
                x = keras.layers.Conv2D(
                    4, 3, padding="same", kernel_initializer=init()
                )(x)
            x = keras.layers.Flatten()(x)
            if "dense_kernel" in targets:
                x = keras.layers.Dense(16, kernel_initializer=init())(x)
            if "recurrent_kernel" in targets or "bias" in targets:
                x = keras.layers.Reshape((8, -1))(x)
                kwargs = {}
                if "recurrent_kernel" in targets:
                    kwargs["recurrent_initializer"] = init()
                if "bias" in targets:
                    kwargs["bias_initializer"] = init()
                    kwargs["unit_forget_bias"] = False
                x = keras.layers.LSTM(6, **kwargs)(x)
            return keras.Model(inputs, keras.layers.Dense(10, name="y")(x))

        layers = [
            name
            for name, wanted in (
                ("Conv2D", "conv_kernel" in targets),
                ("Dense", "dense_kernel" in targets),
                ("LSTM", {"recurrent_kernel", "bias"} & set(targets)),
            )
            if wanted
        ]
        use = "initializer in " + ", ".join(layers)
        cases.append((f"`{record.registered_name}`", use, build))
    return cases


def _attempt(model, batch, time_steps, unroll, data, workdir):
    """(ok, note) for one conversion way."""
    from kerasweights.export import model_signature
    from kerasweights.export import tflite

    signature = model_signature(model)
    dynamic_axes = any(
        d is None for s in signature["inputs"].values() for d in s["shape"][1:]
    )
    if not dynamic_axes:
        time_steps = None  # every axis is already static
    pinned = tflite._pinned_signature(signature, batch, time_steps)
    candidate = model
    if unroll:
        if not tflite._loops(model):
            return None, "no loop to unroll"
        candidate = tflite._unrolled_copy(model, pinned)
    try:
        content = tflite._convert(candidate, pinned, workdir)
        worst, _ = tflite._check(
            content,
            model,
            signature,
            pinned,
            data,
            batch or 1,
            RTOL,
            ATOL,
        )
    except Exception as exc:  # noqa: BLE001 - the reason is the result
        return False, tflite._short(exc)
    return True, f"max diff {worst:.1g}"


def _reason(text):
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(functional|model)_\d+(_\d+)*/", "", text)
    if "TensorListReserve" in text or "tensor list" in text.lower():
        return "loop's tensor list needs a static batch size"
    return text.replace("|", "/")[:120]


def _cell(result):
    ok, note = result
    if ok is None:
        return f"n/a ({note})"
    if ok:
        return f"yes ({note})"
    return f"no: {_reason(note)}"


def build_table():
    """The Markdown table and the seconds it took."""
    import keras

    from kerasweights.datasets.digits import load_digits

    rows_data = load_digits("sequence", seed=0).x_test[:24]
    image_data = load_digits("image", seed=0).x_test[:24]
    started = time.perf_counter()
    lines = [
        "| plugin | used as | dynamic batch | batch 1, time dynamic "
        "| batch 1, time 8, unrolled |",
        "| --- | --- | --- | --- | --- |",
    ]
    cases = _recurrent_cases() + _initializer_cases()
    with tempfile.TemporaryDirectory(prefix="tflite-table-") as tmp:
        for label, use, build in cases:
            keras.utils.set_random_seed(0)
            model = build()
            data = image_data if use.startswith("initializer") else rows_data
            cells = [
                _cell(_attempt(model, None, None, False, data, tmp)),
                _cell(_attempt(model, 1, None, False, data, tmp)),
                _cell(_attempt(model, 1, 8, True, data, tmp)),
            ]
            lines.append(f"| {label} | {use} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines), time.perf_counter() - started


def _write_docs(table, seconds):
    import tensorflow as tf

    with open(DOCS, encoding="utf-8") as f:
        text = f.read()
    if START not in text or END not in text:
        raise SystemExit(f"{DOCS} has no {START} ... {END} markers")
    block = (
        f"{START}\n\n{table}\n\nTensorFlow {tf.__version__}; "
        f"{seconds:.0f} s on a shared 2-core machine.\n\n{END}"
    )
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(DOCS, "w", encoding="utf-8") as f:
        f.write(head + block + tail)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="replace the table in docs/export.md",
    )
    args = parser.parse_args(argv)
    table, seconds = build_table()
    print(table)
    if args.write_docs:
        _write_docs(table, seconds)


if __name__ == "__main__":
    main()
