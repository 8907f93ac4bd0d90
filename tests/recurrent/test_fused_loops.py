"""The written-out BPTT loops (recurrent/fused.py) against the general loop.

Each layer is run twice with the same weights: once through its fused
TensorFlow loops, once with ``layer.fused = False`` (the general loop,
differentiated by TensorFlow). Outputs, final states and the gradients of
a random linear function of them with respect to every weight, the inputs
and the initial states must agree in float64.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweights.recurrent import JANET  # noqa: E402
from kerasweights.recurrent import MGU  # noqa: E402
from kerasweights.recurrent import LayerNormGRU  # noqa: E402
from kerasweights.recurrent import LayerNormLSTM  # noqa: E402
from kerasweights.recurrent import PeepholeLSTM  # noqa: E402

FUSED = [LayerNormLSTM, LayerNormGRU, PeepholeLSTM, JANET, MGU]
IDS = [cls.__name__ for cls in FUSED]
FEATURES = 3
UNITS = 5
BATCH = 3


def make(cls, **kwargs):
    """A float64 layer with seeded, non-trivial weights (gains too)."""
    layer = cls(
        UNITS,
        dtype="float64",
        return_sequences=True,
        return_state=True,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
        recurrent_initializer=keras.initializers.RandomNormal(
            stddev=0.5, seed=2
        ),
        bias_initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=3),
        **kwargs,
    )
    layer.build((None, None, FEATURES))
    rng = np.random.default_rng(4)
    for weight in layer.weights:
        if "gamma" in weight.path or "beta" in weight.path:
            shape = weight.shape
            weight.assign(1.0 + 0.3 * rng.normal(size=shape))
        if "peephole" in weight.path:
            weight.assign(0.5 * rng.normal(size=weight.shape))
    return layer


def outputs_and_gradients(layer, x, states, mask, fused, training):
    layer.fused = fused
    x = tf.constant(x)
    states = [tf.constant(s) for s in states]
    with tf.GradientTape() as tape:
        tape.watch([x] + states)
        out = layer(x, initial_state=states, mask=mask, training=training)
        rng = np.random.default_rng(5)
        loss = sum(tf.reduce_sum(o * rng.normal(size=o.shape)) for o in out)
    sources = [x] + states + list(layer.trainable_weights)
    grads = tape.gradient(loss, sources)
    return [o.numpy() for o in out], [
        np.zeros(s.shape) if g is None else g.numpy()
        for g, s in zip(grads, sources, strict=True)
    ]


def compare(layer, x, mask=None, training=True):
    rng = np.random.default_rng(6)
    states = [
        rng.normal(size=(x.shape[0], UNITS)) for _ in layer.cell.state_size
    ]
    assert layer.uses_fused_loop(training=False)
    # training=True: the written-out gradient; False: TensorFlow's own
    # gradient of the fused forward loop.
    fused = outputs_and_gradients(layer, x, states, mask, True, training)
    general = outputs_and_gradients(layer, x, states, mask, False, training)
    for a, b in zip(fused[0] + fused[1], general[0] + general[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    # The gradients are not trivially zero.
    assert all(np.abs(g).max() > 0 for g in fused[1])


@pytest.mark.parametrize("cls", FUSED, ids=IDS)
@pytest.mark.parametrize("length", [1, 5, 19])
def test_fused_matches_general(cls, length):
    x = np.random.default_rng(7).normal(size=(BATCH, length, FEATURES))
    compare(make(cls), x)


@pytest.mark.parametrize("cls", FUSED, ids=IDS)
def test_fused_forward_differentiated_by_tensorflow(cls):
    x = np.random.default_rng(7).normal(size=(BATCH, 18, FEATURES))
    mask = np.ones((BATCH, 18), bool)
    mask[0, 11:] = False
    compare(make(cls), x, mask, training=False)


@pytest.mark.parametrize("cls", FUSED, ids=IDS)
@pytest.mark.parametrize("zero_output", [False, True])
def test_fused_with_mask_and_go_backwards(cls, zero_output):
    x = np.random.default_rng(8).normal(size=(BATCH, 21, FEATURES))
    mask = np.ones((BATCH, 21), bool)
    mask[0, 15:] = False  # right padding
    mask[1, :4] = False  # left padding: output zero until the first step
    mask[2, 7:9] = False  # a hole
    layer = make(cls, go_backwards=True, zero_output_for_mask=zero_output)
    compare(layer, x, mask)


@pytest.mark.parametrize("cls", FUSED, ids=IDS)
def test_fused_unknown_length_in_a_graph(cls):
    layer = make(cls)
    layer.return_sequences = False

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, FEATURES], "float64")]
    )
    def last_output(x):
        with tf.GradientTape() as tape:
            out = layer(x, training=True)[0]
            loss = tf.reduce_sum(out * out)
        return out, tape.gradient(loss, layer.trainable_weights)

    x = np.random.default_rng(9).normal(size=(BATCH, 11, FEATURES))
    layer.fused = True
    fused = last_output(tf.constant(x))
    layer.fused = False
    general = last_output.python_function(tf.constant(x))
    for a, b in zip(
        tf.nest.flatten(fused), tf.nest.flatten(general), strict=True
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9)


@pytest.mark.parametrize("cls", FUSED, ids=IDS)
def test_general_loop_when_fused_does_not_apply(cls):
    assert not make(cls, unroll=True).uses_fused_loop()
    layer = make(cls, recurrent_dropout=0.2)
    assert layer.uses_fused_loop(training=False)
    assert not layer.uses_fused_loop(training=True)
    assert not make(cls, activation="relu").uses_fused_loop()


@pytest.mark.parametrize("cls", [PeepholeLSTM, LayerNormGRU])
def test_fused_compiles_with_xla(cls):
    # 17 steps: two unrolled iterations of 8 and a tail, with a mask (the
    # loop code is shared; the registry contract test compiles every layer
    # at 6 steps). Compiling takes about 5 s per layer.
    layer = make(cls)
    x = tf.constant(np.random.default_rng(10).normal(size=(BATCH, 17, 3)))
    mask = np.ones((BATCH, 17), bool)
    mask[1, 12:] = False
    mask = tf.constant(mask)

    def step(x):
        with tf.GradientTape() as tape:
            out = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(out[0] ** 2) + tf.reduce_sum(out[-1])
        return loss, tape.gradient(loss, layer.trainable_weights)

    compiled = tf.function(step, jit_compile=True)(x)
    eager = step(x)
    for a, b in zip(
        tf.nest.flatten(compiled), tf.nest.flatten(eager), strict=True
    ):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7)
