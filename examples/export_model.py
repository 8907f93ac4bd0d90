"""Export a Keras model that uses kerasweights plugins as a SavedModel.

Trains a small conv net on digits with a plugin initializer, exports it
with `export_saved_model` (named, typed serving signature; checked in a
fresh process that imports TensorFlow only; a TFLite model checked on the
stock interpreter; SHA-256 checksums of the weights), rechecks the
checksums with `verify_export`, then serves it with TensorFlow alone.

Run (from the repository root)::

    python examples/export_model.py
    python examples/export_model.py --output my-export --overwrite
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

from kerasweights.datasets.digits import load_digits
from kerasweights.export import export_saved_model
from kerasweights.export import verify_export
from kerasweights.initializers import DeltaOrthogonal


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="export-model-output")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # One seed for the draws and the shuffling, so a run is repeatable.
    keras.utils.set_random_seed(args.seed)
    data = load_digits("image", seed=args.seed)
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(
        8,
        3,
        activation="relu",
        kernel_initializer=DeltaOrthogonal(gain=1.0),
    )(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(data.x_train, data.y_train, epochs=args.epochs, verbose=0)

    result = export_saved_model(
        model,
        args.output,
        overwrite=args.overwrite,
        data=data.x_test,
        tflite=True,
    )
    verification = result["verification"]
    print(
        "serving signature:",
        verification["inputs"],
        "->",
        verification["outputs"],
    )
    print(
        "largest difference from the Keras model:", verification["max_abs_diff"]
    )

    print("TFLite:", result["tflite"]["strategy"])
    integrity = verify_export(args.output)
    print(
        f"weights verified: {integrity.ok} "
        f"({integrity.variables_checked} stored variables)"
    )

    # Serving needs TensorFlow only.
    serve = tf.saved_model.load(args.output).signatures["serving_default"]
    probs = serve(pixels=tf.constant(data.x_test))["digit"].numpy()
    accuracy = float(np.mean(probs.argmax(axis=1) == data.y_test))
    print(f"served test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
