import math

import keras
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kerasweights.errors import InvalidArgumentError
from kerasweights.initializers import ZerO


def _paper_matrix(p_out, p_in):
    """Algorithm 1 of Zhao et al. in the paper's (out, in) layout."""
    if p_out == p_in:
        return np.eye(p_out)
    if p_out < p_in:
        partial = np.zeros((p_out, p_in))
        partial[np.arange(p_out), np.arange(p_out)] = 1.0
        return partial
    m = math.ceil(math.log2(p_out))
    c = 2.0 ** (-(m - 1) / 2)
    hadamard = scipy.linalg.hadamard(2**m)
    left = np.eye(p_out, 2**m)
    right = np.eye(2**m, p_in)
    return c * left @ hadamard @ right


@settings(max_examples=25, deadline=None)
@given(fan_in=st.integers(1, 40), fan_out=st.integers(1, 40))
def test_dense_matches_algorithm_1(fan_in, fan_out):
    w = np.asarray(ZerO()((fan_in, fan_out)), np.float64)
    np.testing.assert_allclose(w, _paper_matrix(fan_out, fan_in).T, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(
    spatial=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    cin=st.integers(1, 9),
    cout=st.integers(1, 9),
)
def test_conv_centre_holds_the_dense_matrix(spatial, cin, cout):
    w = np.asarray(ZerO()(spatial + (cin, cout)), np.float64)
    centre = tuple((k - 1) // 2 for k in spatial)
    np.testing.assert_allclose(w[centre], _paper_matrix(cout, cin).T, 1e-7)
    w[centre] = 0
    assert np.all(w == 0)


def test_deterministic_and_seed_free():
    np.testing.assert_array_equal(ZerO()((6, 20)), ZerO()((6, 20)))
    assert ZerO().get_config() == {}


def test_identity_layers_pass_signal_through():
    model = keras.Sequential(
        [keras.Input((7,))]
        + [keras.layers.Dense(7, kernel_initializer="kerasweights>ZerO")] * 1
        + [keras.layers.Dense(7, kernel_initializer="kerasweights>ZerO")]
    )
    x = np.random.default_rng(0).normal(size=(3, 7)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), x, rtol=1e-6)


def test_bad_rank_is_refused():
    with pytest.raises(InvalidArgumentError, match=r"shape=\(5,\)"):
        ZerO()((5,))
