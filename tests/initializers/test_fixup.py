import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.initializers import Fixup
from kerasweights.initializers import fixup_factor
from kerasweights.initializers import fixup_scale


@pytest.mark.parametrize(
    "branches, layers, expected",
    [(16, 2, 16**-0.5), (8, 3, 8**-0.25), (1, 2, 1.0), (5, 1, 1.0)],
)
def test_factor_formula(branches, layers, expected):
    assert fixup_factor(branches, layers) == pytest.approx(expected)


def _branch(size, width=6):
    layers = [keras.layers.Dense(width) for _ in range(size)]
    for layer in layers:
        layer.build((None, width))
    return layers


def test_scale_zeroes_last_layer_and_scales_the_others():
    branches = [_branch(3) for _ in range(4)]
    before = [[layer.kernel.numpy() for layer in b] for b in branches]
    result = fixup_scale(branches, num_branches=16)
    factor = 16 ** (-1 / 4)
    assert result.factors == pytest.approx((factor,) * 4)
    for branch, kernels in zip(branches, before, strict=True):
        for layer, kernel in zip(branch[:-1], kernels[:-1], strict=True):
            np.testing.assert_allclose(layer.kernel.numpy(), kernel * factor)
        assert np.all(branch[-1].kernel.numpy() == 0)
    assert len(result.zeroed) == 4 and len(result.scaled) == 8


def test_residual_network_starts_as_identity():
    inputs = keras.Input((6,))
    branches, h = [], inputs
    for _ in range(3):
        first, second = keras.layers.Dense(6, "relu"), keras.layers.Dense(6)
        h = keras.layers.Add()([h, second(first(h))])
        branches.append([first, second])
    model = keras.Model(inputs, h)
    fixup_scale(branches)
    for first, second in branches:
        for layer in (first, second):
            layer.bias.assign(np.zeros(6, "float32"))
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), x, rtol=1e-6)


def test_errors():
    with pytest.raises(InvalidArgumentError, match="num_branches"):
        fixup_factor(0, 2)
    with pytest.raises(InvalidArgumentError, match="branch"):
        fixup_scale([[]])
    with pytest.raises(InvalidArgumentError, match="kernel"):
        fixup_scale([[keras.layers.Dense(3)]])
    with pytest.raises(InvalidTypeError):
        fixup_scale("dense")


# --- The Fixup initializer plugin ---------------------------------------


@pytest.mark.parametrize(
    "shape, fan_in",
    [((64, 256), 64), ((3, 3, 16, 32), 144), ((5, 24, 40), 120)],
)
@pytest.mark.parametrize(
    "distribution", ["normal", "truncated_normal", "uniform"]
)
def test_initializer_variance_matches_the_formula(shape, fan_in, distribution):
    init = Fixup(
        num_branches=16, layers_per_branch=3, distribution=distribution, seed=3
    )
    w = np.asarray(init(shape, dtype="float64"))
    expected = 2.0 / fan_in * 16 ** (-1.0 / 2.0)  # He variance * L^(-2/(2m-2))
    assert init.stddev(shape) ** 2 == pytest.approx(expected)
    n = w.size
    # The sample variance of n draws with kurtosis <= 3 has a relative
    # standard error of at most sqrt(2 / n); allow 5 of them, and 5
    # standard errors for the mean.
    assert abs(w.var() / expected - 1.0) < 5 * np.sqrt(2.0 / n)
    assert abs(w.mean()) < 5 * np.sqrt(expected / n)


def test_initializer_gain_follows_the_activation():
    init = Fixup(4, 2, activation="tanh", seed=0)
    assert init.stddev((100, 10)) == pytest.approx(5 / 3 / 10 * 4**-0.5)
    leaky = Fixup(4, 2, activation="leaky_relu", negative_slope=0.2)
    assert leaky.stddev((100, 10)) == pytest.approx(
        np.sqrt(2 / 1.04) / 10 * 0.5
    )


def test_initializer_last_layer_is_zero_and_single_layer_branch():
    for shape in [(8, 8), (3, 3, 4, 6)]:
        assert np.all(np.asarray(Fixup(10, 2, last=True)(shape)) == 0)
    assert np.all(np.asarray(Fixup(10, 1, last=True)((4, 4))) == 0)
    assert Fixup(10, 1, last=True).factor == 0.0
    assert Fixup(16, 2).factor == pytest.approx(0.25)


def test_initializer_and_helper_agree_on_the_factor():
    base = keras.initializers.RandomNormal(stddev=np.sqrt(2 / 6), seed=1)
    branches = []
    for _ in range(4):
        layers = [
            keras.layers.Dense(6, kernel_initializer=base) for _ in range(3)
        ]
        for layer in layers:
            layer.build((None, 6))
        branches.append(layers)
    fixup_scale(branches, num_branches=4)
    helper = branches[0][0].kernel.numpy()
    scaled = Fixup(4, 3).stddev((6, 6)) / np.sqrt(2 / 6)
    np.testing.assert_allclose(helper, base((6, 6)).numpy() * scaled, rtol=1e-6)


def test_initializer_residual_network_starts_as_identity():
    inputs = keras.Input((6,))
    h = inputs
    for _ in range(3):
        first = keras.layers.Dense(
            6, "relu", kernel_initializer=Fixup(3, 2, seed=0)
        )
        second = keras.layers.Dense(
            6, kernel_initializer=Fixup(3, 2, last=True)
        )
        h = keras.layers.Add()([h, second(first(h))])
    model = keras.Model(inputs, h)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), x, rtol=1e-6)


def test_initializer_config_and_string_use():
    init = Fixup(
        num_branches=8,
        layers_per_branch=3,
        last=False,
        activation="leaky_relu",
        negative_slope=0.1,
        distribution="uniform",
        seed=5,
    )
    config = init.get_config()
    assert config == {
        "num_branches": 8,
        "layers_per_branch": 3,
        "last": False,
        "activation": "leaky_relu",
        "negative_slope": 0.1,
        "distribution": "uniform",
        "seed": 5,
    }
    np.testing.assert_array_equal(
        np.asarray(Fixup.from_config(config)((4, 4))), np.asarray(init((4, 4)))
    )
    conv = keras.layers.Conv2D(4, 3, kernel_initializer="kerasweights>Fixup")
    conv.build((None, 6, 6, 2))
    assert isinstance(conv.kernel_initializer, Fixup)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_branches": 0}, InvalidArgumentError, "num_branches"),
        ({"layers_per_branch": 0}, InvalidArgumentError, "layers_per_branch"),
        ({"num_branches": 2.5}, InvalidArgumentError, "num_branches"),
        ({"layers_per_branch": 1}, InvalidArgumentError, "last=True"),
        ({"last": "yes"}, InvalidTypeError, "last"),
        ({"activation": "softmax"}, InvalidArgumentError, "activation"),
        ({"distribution": "cauchy"}, InvalidArgumentError, "distribution"),
        ({"seed": -1}, InvalidArgumentError, "seed"),
    ],
)
def test_initializer_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Fixup(**kwargs)


def test_initializer_bad_shapes():
    with pytest.raises(InvalidArgumentError, match="Dense kernel"):
        Fixup()((8,))
    with pytest.raises(InvalidArgumentError, match="positive integers"):
        Fixup()((0, 4))


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=2, max_size=5).map(tuple),
    branches=st.integers(1, 50),
    layers=st.integers(2, 4),
)
def test_initializer_scale_over_kernel_shapes(shape, branches, layers):
    # Fan-in in Keras layout: every axis but the last one.
    fan_in = int(np.prod(shape[:-1]))
    init = Fixup(branches, layers, distribution="uniform", seed=0)
    expected = np.sqrt(2.0 / fan_in) * branches ** (-1 / (2 * layers - 2))
    assert init.stddev(shape) == pytest.approx(expected)
    w = np.asarray(init(shape, dtype="float64"))
    assert w.shape == shape
    # A uniform draw with that standard deviation stays in +-sqrt(3) std.
    assert np.all(np.abs(w) <= np.sqrt(3) * expected * (1 + 1e-6))
    assert np.all(np.asarray(Fixup(branches, layers, last=True)(shape)) == 0)
