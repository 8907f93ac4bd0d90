"""A graph with an unknown batch size and a static length runs every loop.

The general TensorFlow loop runs several steps per iteration once the
static length allows it; reshaping the sequence into those blocks must not
need the batch size (a `tf.function` or `fit` traced with `None` batch).
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import FEATURES
from conftest import IDS
from conftest import LAYERS
from conftest import seeded

LENGTH = 20  # at least two blocks of the general loop, plus a remainder


@pytest.mark.parametrize("general", [False, True], ids=["default", "general"])
@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_unknown_batch_with_a_static_length(cls, general):
    layer = seeded(cls, return_sequences=True)
    if general:
        if not hasattr(cls, "fused"):
            pytest.skip("no separate fast path to turn off")
        layer.fused = False
    x = np.random.default_rng(0).normal(size=(2, LENGTH, FEATURES))
    x = x.astype("float32")
    want = layer(x, training=False)
    spec = tf.TensorSpec([None, LENGTH, FEATURES], tf.float32)

    @tf.function(input_signature=[spec])
    def step(x):
        with tf.GradientTape() as tape:
            out = layer(x, training=True)
            loss = tf.reduce_sum(out)
        return out, tape.gradient(loss, layer.trainable_weights)

    out, grads = step(tf.constant(x))
    assert out.shape == want.shape
    # float32; XLA (training calls of some layers) may reorder sums.
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
