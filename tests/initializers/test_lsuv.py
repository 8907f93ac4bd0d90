import warnings

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.initializers import LSUV
from kerasweights.initializers import LSUVCallback
from kerasweights.initializers import LSUVWarning
from kerasweights.initializers import lsuv_initialize

TOL = 0.05


def _x(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _numpy_pre_activations(dense_layers, x, activation):
    """Forward pass of a plain MLP in NumPy, from the layers' weights."""
    out, h = [], x.astype(np.float64)
    for layer in dense_layers:
        z = h @ layer.kernel.numpy() + layer.bias.numpy()
        out.append(z)
        h = activation(z)
    return out


def test_sequential_tanh_mlp_reaches_unit_variance():
    layers = [keras.layers.Dense(32, activation="tanh") for _ in range(6)]
    model = keras.Sequential([keras.Input((10,))] + layers)
    x = _x(256, 10) * 3.0
    report = lsuv_initialize(model, x, tolerance=TOL, seed=0)
    assert report.all_converged
    assert [r.name for r in report.layers] == [layer.name for layer in layers]
    for z, result in zip(
        _numpy_pre_activations(layers, x, np.tanh), report.layers, strict=True
    ):
        assert abs(z.var() - 1.0) <= TOL + 1e-4
        assert result.variance == pytest.approx(z.var(), rel=1e-4)
        assert result.kind == "pre_activation"


def test_functional_conv_and_dense_with_custom_target():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(5)(h)
    model = keras.Model(inputs, outputs)
    report = lsuv_initialize(model, _x(64, 8, 8, 3), target_variance=2.0)
    assert [r.layer_class for r in report.layers] == ["Conv2D", "Dense"]
    assert all(abs(r.variance - 2.0) <= 0.1 for r in report.layers)
    assert np.var(np.asarray(model(_x(64, 8, 8, 3)))) == pytest.approx(
        report.layers[-1].variance, rel=0.3
    )


class _Block(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(16, activation="relu")
        self.second = keras.layers.Dense(16)

    def call(self, x):
        return self.second(self.first(x))


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.block = _Block()
        self.rnn = keras.layers.LSTM(6)
        self.head = keras.layers.Dense(3)

    def call(self, x):
        h = self.block(x)
        return self.head(self.rnn(h))


def test_subclassed_model_with_nested_layers_and_lstm():
    model = _Subclassed()
    x = _x(32, 7, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LSUVWarning)
        report = lsuv_initialize(model, x, tolerance=TOL, seed=1)
    classes = [r.layer_class for r in report.layers]
    assert classes == ["Dense", "Dense", "LSTM", "Dense"]
    lstm = model.rnn
    # The LSTM's input projection, recomputed independently.
    h = x.reshape(-1, 5).astype(np.float64)
    h = np.maximum(h @ model.block.first.kernel.numpy(), 0)
    h = h @ model.block.second.kernel.numpy()
    projection = h @ lstm.cell.kernel.numpy()
    assert abs(projection.var() - 1.0) <= TOL + 1e-4
    assert report.layers[2].kind == "input_projection"


def test_unsupported_layers_are_reported_and_warned():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Embedding(10, 6),
            keras.layers.Flatten(),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
        ]
    )
    x = np.random.default_rng(0).integers(0, 10, size=(32, 4))
    with pytest.warns(LSUVWarning, match="embedding"):
        report = lsuv_initialize(model, x)
    unsupported = {r.layer_class: r.reason for r in report.unsupported}
    assert set(unsupported) == {"Embedding", "BatchNormalization"}
    assert all(unsupported.values())
    assert report.all_converged
    assert report.layers[0].layer_class == "Dense"
    rows = report.to_markdown().splitlines()[2:]
    assert len(rows) == 3
    assert any("| Embedding | unsupported |" in row for row in rows)


def test_max_iterations_is_reported():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(6, activation="tanh")]
    )
    # A huge bias spread keeps the variance far from 1 after one step.
    model.layers[0].bias.assign(np.linspace(-30, 30, 6).astype("float32"))
    with pytest.warns(LSUVWarning, match="max_iterations"):
        report = lsuv_initialize(
            model, _x(64, 6), max_iterations=1, orthogonal_start=False
        )
    assert report.layers[0].status == "max_iterations"
    assert report.layers[0].iterations == 1


def test_probes_are_removed_afterwards():
    dense = keras.layers.Dense(4, activation="relu")
    rnn = keras.layers.SimpleRNN(3)
    model = keras.Sequential([keras.Input((2, 4)), rnn, dense])
    original = dense.activation
    lsuv_initialize(model, _x(16, 2, 4))
    assert dense.activation is original
    assert "call" not in vars(rnn)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"tolerance": 0.0}, InvalidArgumentError),
        ({"target_variance": -1.0}, InvalidArgumentError),
        ({"max_iterations": 0}, InvalidArgumentError),
        ({"max_iterations": 2.5}, InvalidTypeError),
    ],
)
def test_bad_arguments(kwargs, error):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(error):
        lsuv_initialize(model, _x(4, 3), **kwargs)


def test_empty_batch_and_non_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(InputDataError):
        lsuv_initialize(model, np.zeros((0, 3), "float32"))
    with pytest.raises(InvalidTypeError):
        lsuv_initialize(keras.layers.Dense(2), _x(4, 3))


def test_callback_runs_at_train_begin():
    x = _x(64, 8)
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    callback = LSUVCallback(x, seed=0, tolerance=TOL)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert callback.report is not None
    assert callback.report.all_converged
    assert len(callback.report.layers) == 2


def test_sequential_layer_by_layer_path_matches_whole_model_path():
    # A Sequential model is rescaled one layer at a time; a functional
    # copy of it goes through the general path (a forward pass of the
    # whole model per step). Both must reach the same kernels.
    def layers():
        return [
            keras.layers.Dense(24, activation="tanh", name=f"d{i}")
            for i in range(5)
        ] + [keras.layers.Dense(3, name="out")]

    sequential = keras.Sequential([keras.Input((7,))] + layers())
    inputs = keras.Input((7,))
    h = inputs
    for layer in layers():
        h = layer(h)
    functional = keras.Model(inputs, h)
    x = _x(128, 7) * 2.0
    reports = [
        lsuv_initialize(m, x, tolerance=0.02, seed=3)
        for m in (sequential, functional)
    ]
    for a, b in zip(*(r.layers for r in reports), strict=True):
        assert (a.name, a.status, a.iterations) == (
            b.name,
            b.status,
            b.iterations,
        )
        assert a.scale == pytest.approx(b.scale, rel=1e-5)
        assert a.variance == pytest.approx(b.variance, rel=1e-5)
    np.testing.assert_allclose(
        sequential(x).numpy(), functional(x).numpy(), rtol=1e-4, atol=1e-5
    )


# --- The LSUV initializer plugin and only_lsuv ---------------------------


@pytest.mark.parametrize(
    "shape", [(16, 16), (32, 8), (8, 32), (3, 3, 4, 8), (3, 24, 6)]
)
def test_initializer_is_the_orthogonal_pre_initialization(shape):
    w = np.asarray(LSUV(seed=0)(shape, dtype="float32"), np.float64)
    assert w.shape == shape
    m = w.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="rank 2"):
        LSUV()((8,))


def _lsuv_model():
    dense = [
        keras.layers.Dense(16, activation="tanh", kernel_initializer=init)
        for init in ("kerasweights>LSUV", "glorot_uniform", LSUV(seed=4))
    ]
    rnn = keras.layers.SimpleRNN(5, kernel_initializer="kerasweights>LSUV")
    model = keras.Sequential(
        [keras.Input((3, 6)), rnn, *dense, keras.layers.Dense(2)]
    )
    return model, rnn, dense


def test_only_lsuv_rescales_only_lsuv_layers_and_keeps_their_draw():
    model, rnn, dense = _lsuv_model()
    before = {layer.name: layer.weights[0].numpy() for layer in model.layers}
    x = _x(64, 3, 6) * 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", LSUVWarning)
        report = lsuv_initialize(model, x, tolerance=TOL, only_lsuv=True)
    status = {r.name: r.status for r in report.layers}
    assert status == {
        rnn.name: "converged",
        dense[0].name: "converged",
        dense[1].name: "skipped",
        dense[2].name: "converged",
        model.layers[-1].name: "skipped",
    }
    assert report.all_converged
    by_name = {r.name: r for r in report.layers}
    for layer in model.layers:
        after = layer.weights[0].numpy()
        result = by_name[layer.name]
        if result.status == "skipped":
            np.testing.assert_array_equal(after, before[layer.name])
            assert "not LSUV" in result.reason
        else:
            # The initializer's own orthogonal draw, only rescaled.
            np.testing.assert_allclose(
                after, before[layer.name] * result.scale, rtol=1e-5, atol=1e-7
            )
    # The rescaled layer's pre-activation, recomputed in NumPy.
    h = np.asarray(rnn(x), np.float64)
    z = h @ dense[0].kernel.numpy() + dense[0].bias.numpy()
    assert abs(z.var() - 1.0) <= TOL + 1e-4


def test_default_still_handles_every_layer():
    model, _, _ = _lsuv_model()
    report = lsuv_initialize(model, _x(64, 3, 6), tolerance=TOL, seed=0)
    assert [r.status for r in report.layers] == ["converged"] * 5


def test_only_lsuv_without_lsuv_layers_warns_and_changes_nothing():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    kernel = model.layers[0].kernel.numpy()
    with pytest.warns(LSUVWarning, match="no layer"):
        report = lsuv_initialize(model, _x(8, 3), only_lsuv=True)
    assert [r.status for r in report.layers] == ["skipped"]
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)
    with pytest.raises(InvalidTypeError, match="only_lsuv"):
        lsuv_initialize(model, _x(8, 3), only_lsuv="yes")


def test_callback_passes_only_lsuv():
    model, _, _ = _lsuv_model()
    x = _x(64, 3, 6)
    y = (x[:, 0, 0] > 0).astype("int32")
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    callback = LSUVCallback(x, only_lsuv=True, tolerance=TOL)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    statuses = [r.status for r in callback.report.layers]
    assert statuses.count("converged") == 3
    assert statuses.count("skipped") == 2


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple))
def test_initializer_semi_orthogonal_over_kernel_shapes(shape):
    w = np.asarray(LSUV(seed=2)(shape), np.float64).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-5)
