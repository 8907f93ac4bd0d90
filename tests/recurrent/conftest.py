"""Fixtures shared by the recurrent tests: the registered layers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kerasweights  # noqa: E402

RECORDS = kerasweights.plugins(kind="recurrent")
LAYERS = [record.obj for record in RECORDS]
IDS = [record.name for record in RECORDS]

FEATURES = 3
UNITS = 4


def seeded(cls, units=UNITS, init_seed=0, **kwargs):
    """A layer with seeded initializers and non-zero biases."""
    kwargs.setdefault(
        "kernel_initializer", keras.initializers.GlorotUniform(seed=init_seed)
    )
    kwargs.setdefault(
        "recurrent_initializer",
        keras.initializers.RandomNormal(stddev=0.5, seed=init_seed + 1),
    )
    if "bias_initializer" in cls.cell_arguments():
        kwargs.setdefault(
            "bias_initializer",
            keras.initializers.RandomUniform(-0.5, 0.5, seed=init_seed + 2),
        )
    return cls(units, **kwargs)


def run(layer, x, **kwargs):
    out = layer(x, **kwargs)
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


@pytest.fixture
def sequences():
    rng = np.random.default_rng(0)
    return rng.normal(size=(2, 6, FEATURES)).astype("float32")
