"""The XLA-compiled loops of recurrent/fused.py against the general loop.

In a graph (`tf.function`, Keras ``fit``) the training calls of
LayerNormLSTM, LayerNormGRU, PeepholeLSTM and MGU run their written-out
forward and backward loops as two XLA functions. Here both are checked in
float64 against the general loop (``layer.fused = False``, differentiated by
TensorFlow): outputs, final states and the gradients with respect to every
weight, the inputs and the initial states, at static and unknown lengths,
with and without masks.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from test_fused_loops import BATCH  # noqa: E402
from test_fused_loops import FEATURES  # noqa: E402
from test_fused_loops import UNITS  # noqa: E402
from test_fused_loops import make  # noqa: E402

from kerasweights.recurrent import JANET  # noqa: E402
from kerasweights.recurrent import MGU  # noqa: E402
from kerasweights.recurrent import LayerNormGRU  # noqa: E402
from kerasweights.recurrent import LayerNormLSTM  # noqa: E402
from kerasweights.recurrent import PeepholeLSTM  # noqa: E402
from kerasweights.recurrent import fused  # noqa: E402

XLA = [LayerNormLSTM, LayerNormGRU, PeepholeLSTM, MGU]
IDS = [cls.__name__ for cls in XLA]

pytestmark = pytest.mark.skipif(
    not tf.test.is_built_with_xla(), reason="TensorFlow built without XLA"
)


@pytest.fixture
def compiled_calls(monkeypatch):
    """How many XLA functions the fused loops built (a list of names)."""
    calls = []
    original = fused._compiled

    def counting(fn, *args):
        calls.append(fn.__name__)
        return original(fn, *args)

    monkeypatch.setattr(fused, "_compiled", counting)
    return calls


def graph_step(layer, length, with_mask):
    """A `tf.function` returning outputs and gradients of a training call."""
    # A static length with a static batch: the general loop (base.py)
    # needs a known batch size to chunk a static length in a graph.
    batch = None if length is None else BATCH
    spec = [
        tf.TensorSpec([batch, length, FEATURES], "float64"),
        tf.TensorSpec([batch, length], "bool"),
    ] + [tf.TensorSpec([batch, UNITS], "float64")] * len(layer.cell.state_size)

    @tf.function(input_signature=spec)
    def step(x, mask, *states):
        with tf.GradientTape() as tape:
            tape.watch([x, *states])
            out = layer(
                x,
                initial_state=list(states),
                mask=mask if with_mask else None,
                training=True,
            )
            # A fixed, non-symmetric function of every output.
            loss = sum(
                tf.reduce_sum(o * tf.sin(_positions(o)))
                + 0.5 * (k + 1) * tf.reduce_sum(o * o)
                for k, o in enumerate(out)
            )
        sources = [x, *states, *layer.trainable_weights]
        grads = tape.gradient(loss, sources)
        return out, [
            tf.zeros_like(s) if g is None else tf.convert_to_tensor(g)
            for g, s in zip(grads, sources, strict=True)
        ]

    return step


def _positions(t):
    """``0, 1, 2, ...`` in the shape of ``t`` (known or not)."""
    flat = tf.cast(tf.range(tf.size(t)), t.dtype)
    return tf.reshape(flat, tf.shape(t))


def run(layer, length, static, with_mask, x, mask, states, fused_loop):
    layer.fused = fused_loop
    step = graph_step(layer, length if static else None, with_mask)
    return [
        t.numpy()
        for t in tf.nest.flatten(
            step(tf.constant(x), tf.constant(mask), *map(tf.constant, states))
        )
    ]


def check(cls, length, static, with_mask, calls):
    rng = np.random.default_rng(length)
    layer = make(cls)
    x = rng.normal(size=(BATCH, length, FEATURES))
    mask = np.ones((BATCH, length), bool)
    if length > 1:
        mask[0, length // 2 + 1 :] = False  # right padding
        mask[2, : length // 3 + 1] = False  # left padding
    states = [rng.normal(size=(BATCH, UNITS)) for _ in layer.cell.state_size]
    args = (layer, length, static, with_mask, x, mask, states)
    compiled = run(*args, fused_loop=True)
    # One XLA function for the forward loop, one for the gradient.
    assert calls == ["stacked", "body"]
    general = run(*args, fused_loop=False)
    assert calls == ["stacked", "body"]
    for a, b in zip(compiled, general, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    assert all(np.abs(g).max() > 0 for g in compiled[-len(states) :])


@pytest.mark.parametrize("cls", XLA, ids=IDS)
@pytest.mark.parametrize("length", [1, 5, 19])
def test_xla_loops_match_general_at_unknown_length(cls, length, compiled_calls):
    check(cls, length, False, True, compiled_calls)


@pytest.mark.parametrize("cls", XLA, ids=IDS)
def test_xla_loops_match_general_at_static_length(cls, compiled_calls):
    # A static length without a mask (the unknown-length tests have
    # masks).
    check(cls, 19, True, False, compiled_calls)


def test_janet_keeps_the_plain_loops(compiled_calls):
    # Compiling JANET's loops was not clearly faster (docs/recurrent.md).
    layer = make(JANET)
    run(layer, 5, True, True, *_inputs(layer, 5), fused_loop=True)
    assert compiled_calls == []


@pytest.mark.parametrize("cls", XLA, ids=IDS)
def test_inference_and_eager_calls_keep_the_plain_loops(cls, compiled_calls):
    layer = make(cls)
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 5, FEATURES)))
    tf.function(lambda x: layer(x, training=False))(x)
    layer(x, training=True)
    assert compiled_calls == []
    fused.XLA_LOOPS = False
    try:
        run(layer, 5, True, False, *_inputs(layer, 5), fused_loop=True)
    finally:
        fused.XLA_LOOPS = True
    assert compiled_calls == []


def _inputs(layer, length):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(BATCH, length, FEATURES))
    states = [rng.normal(size=(BATCH, UNITS)) for _ in layer.cell.state_size]
    return x, np.ones((BATCH, length), bool), states
