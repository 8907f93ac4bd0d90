"""Long-range sanity on the adding problem (T=100), cheap enough to test.

Learning the adding problem to below the trivial baseline takes hundreds
to thousands of training steps per layer (benchmarks/recurrent_long_range
.py, docs/benchmarks-recurrent.md), far beyond a test's budget on two
shared cores. What a test can check cheaply is the precondition: at the
start of training, the loss's gradient reaches the first timestep of a
100-step adding sequence, the first mark included, so the signal that
solves the task is there to learn from.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasweights.recurrent as recurrent
from kerasweights.initializers import Chrono

LENGTH = 100
LAYERS = [
    getattr(recurrent, name)
    for name in recurrent.__all__
    if getattr(getattr(recurrent, name), "cell_class", None) is not None
]


def adding_batch(size, length, seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(size, length))
    marks = np.zeros((size, length))
    marks[:, 0] = 1.0  # the first mark at the far end of the sequence
    marks[np.arange(size), rng.integers(length // 2, length, size)] = 1.0
    x = np.stack([values, marks], -1).astype("float32")
    y = (values * marks).sum(-1, keepdims=True).astype("float32")
    return x, y


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_gradient_reaches_the_first_mark(cls):
    keras.utils.set_random_seed(0)
    kwargs = {}
    if cls.gate_layout is not None:
        # Gates start with chrono biases for the task's length.
        kwargs["bias_initializer"] = Chrono(LENGTH, seed=0)
    if cls is recurrent.IndRNN:
        # No gates: a recurrent weight for long memory instead, each unit
        # keeping between half and twice its value over T steps (the
        # default U(0, 1) forgets in about ten steps).
        kwargs["recurrent_initializer"] = keras.initializers.RandomUniform(
            0.5 ** (1 / LENGTH), 2 ** (1 / LENGTH), seed=0
        )
    model = keras.Sequential(
        [keras.Input((LENGTH, 2)), cls(16, **kwargs), keras.layers.Dense(1)]
    )
    x, y = adding_batch(16, LENGTH, seed=1)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_mean((model(x) - y) ** 2)
    grad = np.abs(tape.gradient(loss, x).numpy()).mean(axis=(0, 2))
    assert np.all(np.isfinite(grad))
    # The first step still gets a share of the last step's gradient that
    # float32 training can use (SRU's last step has its highway term, so
    # its share is the smallest, about 3e-3); a vanishing gradient gives
    # 1e-12 (IndRNN with its default initializer) or less.
    assert grad[0] > 1e-3 * grad[-1], (grad[0], grad[-1])
