"""Each cell against a NumPy reference of its paper's equations."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy_reference import REFERENCES

import kerasweights.recurrent as recurrent

FEATURES = 3
UNITS = 4

LAYERS = [
    getattr(recurrent, name)
    for name in recurrent.__all__
    if getattr(getattr(recurrent, name), "cell_class", None) is not None
]


def make(cls, dtype="float32", **kwargs):
    layer = cls(
        UNITS,
        return_sequences=True,
        return_state=True,
        dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.6, seed=1),
        recurrent_initializer=keras.initializers.RandomNormal(
            stddev=0.6, seed=2
        ),
        **kwargs,
    )
    layer.build((2, None, FEATURES))
    rng = np.random.default_rng(3)
    # Random values everywhere (biases, gains, peepholes included), so every
    # term of the equations matters.
    layer.set_weights(
        [rng.normal(scale=0.6, size=w.shape) for w in layer.get_weights()]
    )
    return layer


def inputs(dtype="float32", time=7):
    rng = np.random.default_rng(4)
    return rng.normal(size=(2, time, FEATURES)).astype(dtype)


def initial_states(layer, dtype="float32"):
    rng = np.random.default_rng(5)
    return [
        (rng.uniform(-0.8, 0.8, size=(2, n))).astype(dtype)
        for n in layer.cell.state_size
    ]


def reference(layer, x, states):
    cell = layer.cell
    weights = [keras.ops.convert_to_numpy(w) for w in cell.trainable_weights]
    return REFERENCES[type(cell).__name__](weights, x, states, cell)


def test_every_builtin_has_a_reference():
    assert {cls.cell_class.__name__ for cls in LAYERS} == set(REFERENCES)


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_forward_matches_numpy(cls):
    layer = make(cls)
    x = inputs()
    states = initial_states(layer)
    want_out, want_states = reference(layer, x.astype("float64"), states)
    got_out, *got_states = layer(x, initial_state=states)
    np.testing.assert_allclose(got_out, want_out, atol=3e-5, rtol=1e-4)
    for got, want in zip(got_states, want_states, strict=True):
        np.testing.assert_allclose(got, want, atol=3e-5, rtol=1e-4)
    # The cell alone, stepped by keras.layers.RNN, agrees too.
    wrapped = keras.layers.RNN(
        cls.cell_class(UNITS, **_extra(layer)), return_sequences=True
    )
    wrapped.build(x.shape)
    wrapped.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        wrapped(x, initial_state=states), want_out, atol=3e-5, rtol=1e-4
    )


def _extra(layer):
    config = layer.cell.get_config()
    return {
        k: config[k]
        for k in type(layer).cell_arguments()
        if k in config and "initializer" not in k
    }


GRADIENT_CELLS = LAYERS


@pytest.mark.parametrize("cls", GRADIENT_CELLS, ids=lambda c: c.__name__)
def test_gradients_match_finite_differences(cls):
    layer = make(cls, dtype="float64")
    x = inputs("float64", time=4)
    states = initial_states(layer, "float64")
    probe = np.random.default_rng(6).normal(size=(2, 4, UNITS))

    def loss_numpy(weights):
        cell = layer.cell
        out, _ = REFERENCES[type(cell).__name__](weights, x, states, cell)
        return float(np.sum(out * probe))

    with tf.GradientTape() as tape:
        out = layer(tf.constant(x), initial_state=states)[0]
        loss = tf.reduce_sum(out * probe)
    grads = tape.gradient(loss, layer.cell.trainable_weights)

    weights = [
        keras.ops.convert_to_numpy(w) for w in layer.cell.trainable_weights
    ]
    eps = 1e-6
    for index, (weight, grad) in enumerate(zip(weights, grads, strict=True)):
        numeric = np.zeros_like(weight)
        for pos in np.ndindex(weight.shape):
            shifted = [w.copy() for w in weights]
            shifted[index][pos] += eps
            up = loss_numpy(shifted)
            shifted[index][pos] -= 2 * eps
            down = loss_numpy(shifted)
            numeric[pos] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad.numpy(), numeric, atol=1e-6, rtol=1e-5)
        assert np.abs(numeric).max() > 1e-3


SCAN_LAYERS = [c for c in LAYERS if "scan" in c.cell_arguments()]


@pytest.mark.parametrize("cls", SCAN_LAYERS, ids=lambda c: c.__name__)
def test_parallel_scan_equals_sequential(cls):
    parallel = make(cls, dtype="float64", scan="parallel")
    sequential = make(cls, dtype="float64", scan="sequential")
    x = inputs("float64", time=9)
    states = initial_states(parallel, "float64")
    mask = np.ones((2, 9), bool)
    mask[1, 5:] = False
    probe = np.random.default_rng(7).normal(size=(2, 9, UNITS))
    results = []
    for layer in (parallel, sequential):
        with tf.GradientTape() as tape:
            out, *last = layer(tf.constant(x), initial_state=states, mask=mask)
            loss = tf.reduce_sum(out * probe)
        grads = tape.gradient(loss, layer.trainable_weights)
        results.append((out.numpy(), last[0].numpy(), grads))
    (out_p, last_p, grad_p), (out_s, last_s, grad_s) = results
    np.testing.assert_allclose(out_p, out_s, atol=1e-10)
    np.testing.assert_allclose(last_p, last_s, atol=1e-10)
    for a, b in zip(grad_p, grad_s, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-9)


@pytest.mark.parametrize("cls", SCAN_LAYERS, ids=lambda c: c.__name__)
def test_parallel_scan_is_used_and_stable_on_long_sequences(cls):
    layer = cls(8, scan="parallel", return_sequences=True)
    x = np.random.default_rng(8).normal(size=(1, 2000, 2)).astype("float32")
    out = layer(x).numpy()
    assert np.all(np.isfinite(out))
    reference = cls(8, scan="sequential", return_sequences=True)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    want = tf.function(reference)(tf.constant(x)).numpy()
    np.testing.assert_allclose(out, want, atol=2e-5, rtol=2e-5)
    with pytest.raises(ValueError, match="static time length"):
        layer.cell.use_parallel_scan(None, False)


@pytest.mark.parametrize("cls", SCAN_LAYERS, ids=lambda c: c.__name__)
def test_parallel_scan_compiles_with_xla(cls):
    layer = make(cls, scan="parallel")
    x = tf.constant(inputs(time=7))

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            out = layer(x, training=True)[0]
            loss = tf.reduce_sum(out**2)
        return out, tape.gradient(loss, layer.trainable_weights)

    out, grads = step(x)
    np.testing.assert_allclose(out.numpy(), layer(x)[0].numpy(), atol=1e-5)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


@pytest.mark.parametrize("features", [UNITS, UNITS + 1])
def test_sru_fast_path_equals_the_general_loop(features):
    # An unmasked SRU sequence steps only c with a written-out gradient; a
    # mask sends the same layer through the general loop. 37 steps use
    # the loop's 8-step iterations and its unrolled remainder.
    layer = recurrent.SRU(UNITS, dtype="float64")
    x = np.random.default_rng(9).normal(size=(3, 37, features))
    layer.build(x.shape)
    rng = np.random.default_rng(10)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()]
    )
    results = []
    for mask in (None, np.ones((3, 37), bool)):
        with tf.GradientTape() as tape:
            out = layer(tf.constant(x), mask=mask)
            loss = tf.reduce_sum(out**2)
        grads = tape.gradient(loss, layer.trainable_weights)
        results.append((out.numpy(), [g.numpy() for g in grads]))
    (fast, fast_grads), (general, general_grads) = results
    np.testing.assert_allclose(fast, general, atol=1e-10)
    for a, b in zip(fast_grads, general_grads, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)
        assert np.abs(a).max() > 1e-3
