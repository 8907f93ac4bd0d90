"""Fixtures for the tuning tests."""

import keras
import pytest


class NanInitializer(keras.initializers.Initializer):
    """Fills a conv kernel with NaN: a trial that draws it goes non-finite."""

    plugin_targets = ("conv_kernel",)

    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, float("nan"), dtype=dtype or "float32")

    def get_config(self):
        return {}


@pytest.fixture
def nan_initializer():
    """An initializer class (not registered) whose kernels are all NaN."""
    return NanInitializer
