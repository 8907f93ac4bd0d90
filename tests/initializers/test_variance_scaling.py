import math

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kerasweights.errors import InvalidArgumentError
from kerasweights.initializers import GainVarianceScaling

# Five standard errors: a correct sampler fails about once in 1.7 million.
Z = 5.0


def _fan(shape, mode):
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    return {"fan_in": fan_in, "fan_out": fan_out}.get(
        mode, (fan_in + fan_out) / 2
    )


@pytest.mark.parametrize(
    "distribution", ["normal", "truncated_normal", "uniform"]
)
@pytest.mark.parametrize(
    "activation, slope, mode, shape",
    [
        ("relu", 0.01, "fan_in", (256, 300)),
        ("tanh", 0.01, "fan_out", (3, 3, 32, 48)),
        ("leaky_relu", 0.3, "fan_avg", (5, 40, 60)),
        ("selu", 0.01, "fan_in", (2, 2, 2, 16, 32)),
    ],
)
def test_mean_and_variance_match_the_formula(
    distribution, activation, slope, mode, shape
):
    gains = {
        "relu": math.sqrt(2),
        "tanh": 5 / 3,
        "leaky_relu": math.sqrt(2 / (1 + slope**2)),
        "selu": 0.75,
    }
    std = gains[activation] / math.sqrt(_fan(shape, mode))
    init = GainVarianceScaling(
        activation,
        negative_slope=slope,
        mode=mode,
        distribution=distribution,
        seed=3,
    )
    w = np.asarray(init(shape), dtype=np.float64).ravel()
    n = w.size
    kurtosis = {"normal": 3.0, "truncated_normal": 3.0, "uniform": 1.8}
    var_se = std**2 * math.sqrt((kurtosis[distribution] - 1) / n)
    assert abs(w.mean()) < Z * std / math.sqrt(n)
    assert abs(w.var() - std**2) < Z * var_se
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(3) * std * (1 + 1e-6)
    if distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978 * (1 + 1e-6)


def test_explicit_gain_overrides_activation():
    init = GainVarianceScaling("relu", gain=0.5, mode="fan_in", seed=0)
    assert init.effective_gain == 0.5
    assert init.stddev((100, 10)) == pytest.approx(0.05)


@settings(max_examples=15, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple),
    mode=st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
)
def test_stddev_uses_keras_layout_fans(shape, mode):
    init = GainVarianceScaling("linear", mode=mode, seed=1)
    assert init.stddev(shape) == pytest.approx(1 / math.sqrt(_fan(shape, mode)))
    values = init(shape)
    assert tuple(values.shape) == shape
    assert np.all(np.isfinite(np.asarray(values)))


def test_same_seed_same_sequence_and_calls_differ():
    a = GainVarianceScaling(seed=11)
    b = GainVarianceScaling(seed=11)
    a1, a2 = np.asarray(a((6, 4))), np.asarray(a((6, 4)))
    b1, b2 = np.asarray(b((6, 4))), np.asarray(b((6, 4)))
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)


def test_two_dense_layers_sharing_an_unseeded_object_differ():
    init = GainVarianceScaling("relu")
    first = keras.layers.Dense(5, kernel_initializer=init)
    second = keras.layers.Dense(5, kernel_initializer=init)
    first.build((None, 5))
    second.build((None, 5))
    assert not np.array_equal(first.kernel.numpy(), second.kernel.numpy())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "mish"}, "activation"),
        ({"mode": "fan_max"}, "mode"),
        ({"distribution": "cauchy"}, "distribution"),
        ({"gain": -1.0}, "gain"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        GainVarianceScaling(**kwargs)


def test_zero_dimension_and_integer_dtype_are_refused():
    with pytest.raises(InvalidArgumentError, match="shape"):
        GainVarianceScaling()((0, 3))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        GainVarianceScaling()((2, 3), dtype="int32")
