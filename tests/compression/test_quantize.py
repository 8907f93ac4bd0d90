"""Post-training int8 and quantization-aware int8, measured end to end."""

import keras
import numpy as np
import pytest

from kerasweights.compression import compress


@pytest.fixture(scope="module")
def wide_model_and_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=96).astype("int32")
    x = (rng.normal(size=(3, 64))[y] * 2 + rng.normal(size=(96, 64))).astype(
        "float32"
    )
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64,), name="features")
    hidden = keras.layers.Dense(64, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="logits")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, epochs=5, verbose=0)
    return model, x, y


def test_post_training_int8_keeps_the_keras_weights(wide_model_and_data):
    model, x, y = wide_model_and_data
    result = compress(model, x, y, quantize="int8-ptq", latency_repeats=2)
    report = result.report
    assert report["settings"]["steps"] == 0
    for old, new in zip(
        model.get_weights(), result.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(old, new)
    before, after = report["before"], report["after"]
    # The 64x64 kernel (4096 entries) is stored as int8.
    assert after["size"]["tflite"] < before["size"]["tflite"] - 2.5 * 4096
    assert report["tflite_agreement"]["same_class"] >= 0.95
    assert after["tflite_accuracy"] >= before["accuracy"] - 0.05
    for key in ("latency_ms", "tflite_latency_ms"):
        assert before[key] > 0 and after[key] > 0


def test_quantization_aware_int8_matches_its_tflite_file(wide_model_and_data):
    model, x, y = wide_model_and_data
    result = compress(model, x, y, quantize="int8", epochs=2, latency_repeats=2)
    report = result.report
    assert report["settings"]["steps"] == 6
    kernel = result.model.get_layer("hidden").kernel.numpy()
    levels = kernel / (np.abs(kernel).max(axis=0) / 127)
    np.testing.assert_allclose(levels, np.round(levels), atol=2e-3)
    # The int8 weights in the file are the trained ones: only the
    # on-the-fly quantization of activations separates the two.
    assert report["tflite_agreement"]["same_class"] == 1.0
    assert report["tflite_agreement"]["max_abs_diff"] < 0.05
    assert report["after"]["tflite_accuracy"] == report["after"]["accuracy"]
