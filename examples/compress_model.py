"""Compress a digits model built from kerasweights layers, then serve it.

Trains a small recurrent classifier (kerasweights' MGU reading each 8x8
digit row by row) and compresses it with `kerasweights.compression`:
pruned to 50% with a schedule fitted to the fine-tuning steps, int8 with
quantization-aware fine-tuning. The result is written with
`write_compressed` (a SavedModel and a TFLite file, each checked in a
process that never imports kerasweights), and the TFLite file is then run
with TensorFlow alone.

Run (from the repository root)::

    python examples/compress_model.py
    python examples/compress_model.py --output my-compressed --overwrite
    python examples/compress_model.py --save-original digits-mgu.keras
"""

import argparse
import os

import keras
import numpy as np
import tensorflow as tf

from kerasweights.compression import compress
from kerasweights.compression import write_compressed
from kerasweights.datasets.digits import load_digits
from kerasweights.recurrent import MGU


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="compress-model-output")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--save-original",
        metavar="PATH",
        help="also save the trained, uncompressed model as a .keras file "
        "(for trying `kerasweights compress` on it)",
    )
    args = parser.parse_args(argv)

    data = load_digits("sequence", seed=0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8), name="rows")
    hidden = MGU(args.units)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(data.x_train, data.y_train, epochs=args.epochs, verbose=0)
    if args.save_original:
        model.save(args.save_original)

    result = compress(
        model,
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        prune=0.5,
        quantize="int8",
        epochs=max(1, args.epochs // 3),
    )
    report = write_compressed(
        result, args.output, data.x_test, overwrite=args.overwrite
    )
    before, after = report["before"], report["after"]
    print(
        "TFLite size, gzipped: "
        f"{before['size']['tflite_gzip']} -> {after['size']['tflite_gzip']} "
        "bytes"
    )
    print(
        f"test accuracy: {before['accuracy']:.4f} (Keras, float32) -> "
        f"{after['tflite_accuracy']:.4f} (TFLite, int8)"
    )
    print(f"sparsity per kernel: {report['sparsity']}")

    # Serving needs TensorFlow only.
    interpreter = tf.lite.Interpreter(
        model_path=os.path.join(args.output, "model.tflite")
    )
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, data.x_test.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, data.x_test)
    interpreter.invoke()
    output = interpreter.get_output_details()[0]["index"]
    probs = interpreter.get_tensor(output)
    accuracy = float(np.mean(probs.argmax(axis=1) == data.y_test))
    print(f"served TFLite test accuracy: {accuracy:.4f}")
    return accuracy, report


if __name__ == "__main__":
    main()
