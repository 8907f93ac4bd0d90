import keras
import numpy as np
import pytest

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
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
