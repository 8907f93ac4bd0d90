"""Breaker checks of the XLA-compiled fused loops (recurrent/fused.py).

A second-order gradient through a training call (a gradient penalty on
the input gradient, as in WGAN-GP critics) against the general loop.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweights.recurrent import JANET  # noqa: E402
from kerasweights.recurrent import MGU  # noqa: E402
from kerasweights.recurrent import LayerNormGRU  # noqa: E402
from kerasweights.recurrent import LayerNormLSTM  # noqa: E402
from kerasweights.recurrent import PeepholeLSTM  # noqa: E402

XLA_BUG = pytest.mark.xfail(
    tf.test.is_built_with_xla(),
    strict=True,
    reason="documented limitation (docs/recurrent.md): a second-order "
    "gradient of the XLA-compiled loops fails with 'Support for TensorList "
    "crossing the XLA/TF boundary is not implemented'",
)


def penalty_gradients(layer, x):
    """Gradients of ``sum(d loss / d x)^2`` with respect to the weights."""

    @tf.function
    def run(x):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(layer(x, training=True) ** 2)
            penalty = tf.reduce_sum(inner.gradient(loss, x) ** 2)
        return outer.gradient(penalty, [x] + layer.trainable_variables)

    return run(x)


def check_against_general_loop(cls, seed):
    """A layer's penalty gradients equal those of its general loop."""
    x = tf.constant(
        np.random.default_rng(seed).normal(size=(3, 5, 2)), tf.float64
    )
    fast = cls(4, dtype="float64")
    general = cls(4, dtype="float64")
    general.fused = False
    fast.build((None, 5, 2))
    general.build((None, 5, 2))
    general.set_weights(fast.get_weights())
    assert fast.uses_fused_loop(training=True)
    want = penalty_gradients(general, x)
    got = penalty_gradients(fast, x)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "cls",
    [
        pytest.param(PeepholeLSTM, marks=XLA_BUG),
        pytest.param(LayerNormLSTM, marks=XLA_BUG),
        pytest.param(LayerNormGRU, marks=XLA_BUG),
        pytest.param(MGU, marks=XLA_BUG),
        JANET,
    ],
    ids=lambda cls: cls.__name__,
)
def test_second_order_gradient_matches_general_loop(cls):
    check_against_general_loop(cls, seed=0)


@pytest.mark.parametrize(
    "cls",
    [PeepholeLSTM, LayerNormLSTM, LayerNormGRU, MGU],
    ids=lambda cls: cls.__name__,
)
def test_second_order_gradient_of_the_plain_fused_loops(cls, monkeypatch):
    # The documented remedy: without XLA the fused loops' written-out
    # gradient is differentiable and matches the general loop.
    from kerasweights.recurrent import fused

    monkeypatch.setattr(fused, "XLA_LOOPS", False)
    check_against_general_loop(cls, seed=1)
