"""Small models and data shared by the compression tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def dense_model(features=12, seed=0):
    """A two-layer classifier on ``features`` inputs, 3 classes."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((features,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="label")(hidden)
    return keras.Model(inputs, outputs)


@pytest.fixture
def blobs():
    """64 examples of 12 features in 3 separable classes."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=64).astype("int32")
    centers = rng.normal(size=(3, 12)) * 3
    x = (centers[y] + rng.normal(size=(64, 12))).astype("float32")
    return x, y
