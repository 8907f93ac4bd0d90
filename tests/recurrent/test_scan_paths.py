"""The TensorFlow fast paths of the element-wise layers (scan.py).

minGRU, minLSTM, SRU and IndRNN run time-major sequences on TensorFlow
(the first three with written-out gradients); these tests hold them to
the plain Python loop (``unroll=True``, automatic differentiation) and to
NumPy, in float64.
"""

import numpy as np
import pytest
import tensorflow as tf

import kerasweights.recurrent as recurrent
from kerasweights.recurrent import scan

UNITS = 4
BATCH = 3
FAST_LAYERS = [
    recurrent.MinGRU,
    recurrent.MinLSTM,
    recurrent.SRU,
    recurrent.IndRNN,
]


def numpy_linear(a, b, h0):
    h = h0
    out = []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return np.stack(out)


def recurrence_case(length, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 1.2, size=(length, BATCH, UNITS))
    b = rng.normal(size=(length, BATCH, UNITS))
    h0 = rng.normal(size=(BATCH, UNITS))
    probe = rng.normal(size=(length, BATCH, UNITS))
    return a, b, h0, probe


def numpy_linear_grads(a, b, h0, probe):
    """Gradients of ``sum(probe * h)`` by the adjoint recursion."""
    h = numpy_linear(a, b, h0)
    previous = np.concatenate([h0[None], h[:-1]])
    g = np.zeros_like(h)
    carry = np.zeros_like(h0)
    for t in range(a.shape[0] - 1, -1, -1):
        g[t] = probe[t] + carry
        carry = a[t] * g[t]
    return g * previous, g, carry


def linear_grads(a, b, h0, probe, signature=None):
    def run(a, b, h0):
        with tf.GradientTape() as tape:
            tape.watch([a, b, h0])
            h = scan.linear_recurrence(a, b, h0)
            loss = tf.reduce_sum(h * probe)
        return h, tape.gradient(loss, [a, b, h0])

    if signature is not None:
        run = tf.function(run, input_signature=signature)
    h, grads = run(tf.constant(a), tf.constant(b), tf.constant(h0))
    return h.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("length", [1, 2, 16, 37])
@pytest.mark.parametrize("way", ["unrolled", "blocked", "unknown length"])
def test_linear_recurrence_matches_numpy(length, way, monkeypatch):
    a, b, h0, probe = recurrence_case(length)
    signature = None
    if way == "blocked":
        # A static length above the limit takes the while loop.
        monkeypatch.setattr(scan, "UNROLL_LIMIT", 0)
    elif way == "unknown length":
        spec = tf.TensorSpec((None, BATCH, UNITS), tf.float64)
        signature = [spec, spec, tf.TensorSpec((BATCH, UNITS), tf.float64)]
    h, grads = linear_grads(a, b, h0, probe, signature)
    np.testing.assert_allclose(h, numpy_linear(a, b, h0), atol=1e-12)
    for got, want in zip(
        grads, numpy_linear_grads(a, b, h0, probe), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("length", [1, 5, 37])
def test_reverse_steps_match_numpy(length, monkeypatch):
    a, b, h0, _ = recurrence_case(length, seed=1)
    want = numpy_linear(a[::-1], b[::-1], h0)[::-1]
    got = scan.steps(tf.constant(a), tf.constant(b), h0, reverse=True)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    monkeypatch.setattr(scan, "UNROLL_LIMIT", 0)
    got = scan.steps(tf.constant(a), tf.constant(b), h0, reverse=True)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def make(cls, features, **kwargs):
    layer = cls(UNITS, return_state=True, dtype="float64", seed=0, **kwargs)
    layer.build((BATCH, None, features))
    rng = np.random.default_rng(3)
    layer.set_weights(
        [rng.normal(scale=0.8, size=w.shape) for w in layer.get_weights()]
    )
    return layer


def outputs_and_grads(layer, x, h0, mask=None, training=True, signature=None):
    """Output, last state and the gradients of a fixed probe of both."""

    def run(x, h0):
        with tf.GradientTape() as tape:
            tape.watch([x, h0])
            out, last = layer(
                x, initial_state=[h0], mask=mask, training=training
            )
            probe = tf.sin(tf.range(tf.size(out), dtype=out.dtype))
            loss = tf.reduce_sum(tf.reshape(out, [-1]) * probe) + tf.reduce_sum(
                last**2
            )
        grads = tape.gradient(loss, layer.trainable_weights + [x, h0])
        return [out, last] + grads

    if signature is not None:
        run = tf.function(run, input_signature=signature)
    return [v.numpy() for v in run(tf.constant(x), tf.constant(h0))]


def layer_case(cls, length, features=3):
    rng = np.random.default_rng(length)
    x = rng.normal(size=(BATCH, length, features))
    h0 = rng.normal(size=(BATCH, UNITS))
    return x, h0


def assert_same(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("cls", FAST_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("sequences", [True, False], ids=["seq", "last"])
@pytest.mark.parametrize("length", [1, 5, 37])
def test_fast_path_equals_the_python_loop(cls, sequences, length):
    # Training (fused gate gradients) and inference (plain gates) paths,
    # whole sequences and the last output only, against the unrolled loop.
    x, h0 = layer_case(cls, length)
    fast = make(cls, 3, return_sequences=sequences)
    loop = make(cls, 3, return_sequences=sequences, unroll=True)
    want = outputs_and_grads(loop, x, h0)
    assert_same(outputs_and_grads(fast, x, h0), want)
    assert_same(outputs_and_grads(fast, x, h0, training=False), want)


@pytest.mark.parametrize("cls", FAST_LAYERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("sequences", [True, False], ids=["seq", "last"])
def test_fast_path_with_unknown_length(cls, sequences):
    # The while loop of BLOCK-step iterations, padded at the end.
    length = 2 * scan.BLOCK + 5
    x, h0 = layer_case(cls, length)
    fast = make(cls, 3, return_sequences=sequences)
    loop = make(cls, 3, return_sequences=sequences, unroll=True)
    signature = [
        tf.TensorSpec((BATCH, None, 3), tf.float64),
        tf.TensorSpec((BATCH, UNITS), tf.float64),
    ]
    got = outputs_and_grads(fast, x, h0, signature=signature)
    assert_same(got, outputs_and_grads(loop, x, h0))


@pytest.mark.parametrize("cls", FAST_LAYERS, ids=lambda c: c.__name__)
def test_fast_path_above_the_unroll_limit(cls, monkeypatch):
    monkeypatch.setattr(scan, "UNROLL_LIMIT", 4)
    x, h0 = layer_case(cls, 21)
    fast = make(cls, 3, return_sequences=True)
    loop = make(cls, 3, return_sequences=True, unroll=True)
    assert_same(outputs_and_grads(fast, x, h0), outputs_and_grads(loop, x, h0))


def test_sru_fast_path_with_highway_identity():
    # Inputs with `units` features: the highway term is the input itself.
    x, h0 = layer_case(recurrent.SRU, 9, features=UNITS)
    for sequences in (True, False):
        fast = make(recurrent.SRU, UNITS, return_sequences=sequences)
        loop = make(
            recurrent.SRU, UNITS, return_sequences=sequences, unroll=True
        )
        assert_same(
            outputs_and_grads(fast, x, h0), outputs_and_grads(loop, x, h0)
        )


@pytest.mark.parametrize(
    "cls", [recurrent.MinGRU, recurrent.MinLSTM], ids=lambda c: c.__name__
)
def test_masked_fast_path_equals_the_python_loop(cls):
    x, h0 = layer_case(cls, 9)
    mask = np.ones((BATCH, 9), bool)
    mask[1, 6:] = False
    mask[2, 2:] = False
    fast = make(cls, 3, return_sequences=True)
    loop = make(cls, 3, return_sequences=True, unroll=True)
    assert_same(
        outputs_and_grads(fast, x, h0, mask=mask),
        outputs_and_grads(loop, x, h0, mask=mask),
    )


@pytest.mark.parametrize("cls", FAST_LAYERS, ids=lambda c: c.__name__)
def test_fast_path_without_xla(cls, monkeypatch):
    # TensorFlow built without XLA runs the same functions unfused.
    monkeypatch.setattr(tf.test, "is_built_with_xla", lambda: False)
    monkeypatch.setattr(scan, "_JIT", {})
    x, h0 = layer_case(cls, 6)
    fast = make(cls, 3, return_sequences=True)
    loop = make(cls, 3, return_sequences=True, unroll=True)
    assert_same(outputs_and_grads(fast, x, h0), outputs_and_grads(loop, x, h0))
    assert all(fn is scan._JIT[fn] for fn in scan._JIT)


@pytest.mark.parametrize("cls", FAST_LAYERS, ids=lambda c: c.__name__)
def test_fast_path_trains_under_jit_compile(cls):
    # The fused functions nest inside an XLA-compiled training step.
    layer = make(cls, 3, return_sequences=False)
    x, h0 = layer_case(cls, 7)

    @tf.function(jit_compile=True)
    def step(x, h0):
        with tf.GradientTape() as tape:
            out, _ = layer(x, initial_state=[h0], training=True)
            loss = tf.reduce_sum(out**2)
        return out, tape.gradient(loss, layer.trainable_weights)

    out, grads = step(tf.constant(x), tf.constant(h0))
    want = outputs_and_grads(layer, x, h0)
    np.testing.assert_allclose(out.numpy(), want[0], atol=1e-9)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_steps_are_not_unrolled_inside_xla():
    x = tf.zeros((5, BATCH, UNITS))
    assert scan.unrolled_length(x) == 5

    @tf.function(jit_compile=True)
    def compiled(x):
        assert scan.unrolled_length(x) is None
        return x

    compiled(x)
