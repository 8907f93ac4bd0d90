import math

import numpy as np
import pytest

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.initializers import activation_gain
from kerasweights.initializers import compute_fans


def _second_moment_gain(fn):
    # Independent of the library's quadrature: a dense trapezoid rule.
    x = np.linspace(-12.0, 12.0, 200_001)
    density = np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    return 1.0 / math.sqrt(np.trapezoid(fn(x) ** 2 * density, x))


def _erf(x):
    return np.vectorize(math.erf)(x)


def test_gain_of_relu_is_he_sqrt2_and_matches_its_second_moment():
    assert activation_gain("relu") == pytest.approx(math.sqrt(2.0))
    relu = _second_moment_gain(lambda x: np.maximum(x, 0.0))
    assert activation_gain("relu") == pytest.approx(relu, rel=1e-6)


def test_gelu_and_swish_gains_follow_the_documented_definition():
    def gelu(x):
        return x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))

    def swish(x):
        return x / (1.0 + np.exp(-x))

    assert activation_gain("gelu") == pytest.approx(
        _second_moment_gain(gelu), abs=1e-4
    )
    assert activation_gain("swish") == pytest.approx(
        _second_moment_gain(swish), abs=1e-4
    )
    assert activation_gain("silu") == activation_gain("swish")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("linear", 1.0),
        ("identity", 1.0),
        ("sigmoid", 1.0),
        ("tanh", 5.0 / 3.0),
        ("selu", 0.75),
    ],
)
def test_fixed_gains(name, expected):
    assert activation_gain(name) == pytest.approx(expected)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0])
def test_leaky_relu_gain(slope):
    expected = math.sqrt(2.0 / (1.0 + slope**2))
    assert activation_gain("leaky_relu", slope) == pytest.approx(expected)
    leaky = _second_moment_gain(lambda x: np.where(x > 0, x, slope * x))
    assert activation_gain("leaky_relu", slope) == pytest.approx(leaky, 1e-6)


def test_unknown_activation_names_the_choices():
    with pytest.raises(InvalidArgumentError, match="activation='softsign'"):
        activation_gain("softsign")
    with pytest.raises(InvalidTypeError):
        activation_gain(None)
    with pytest.raises(InvalidArgumentError, match="negative_slope"):
        activation_gain("leaky_relu", float("nan"))


@pytest.mark.parametrize(
    "shape, fans",
    [
        ((7, 5), (7, 5)),
        ((3, 4, 6), (12, 18)),
        ((3, 5, 4, 6), (60, 90)),
        ((2, 3, 5, 4, 6), (120, 180)),
        ((9,), (9, 9)),
        ((), (1, 1)),
    ],
)
def test_fans_in_keras_layout(shape, fans):
    assert compute_fans(shape) == fans
