import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kerasweights.errors import InvalidArgumentError
from kerasweights.initializers import DeltaOrthogonal
from kerasweights.initializers import OrthogonalGain


def _check_semi_orthogonal(matrix, gain):
    rows, cols = matrix.shape
    if rows >= cols:
        gram = matrix.T @ matrix
    else:
        gram = matrix @ matrix.T
    np.testing.assert_allclose(
        gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5 * max(1, gain**2)
    )


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    gain=st.sampled_from([0.5, 1.0, 1.7]),
)
def test_orthogonal_gain_is_semi_orthogonal(shape, gain):
    w = np.asarray(OrthogonalGain(gain=gain, seed=5)(shape), np.float64)
    assert w.shape == shape
    _check_semi_orthogonal(w.reshape(-1, shape[-1]), gain)


def test_large_square_kernel_orthogonal_to_1e5():
    w = np.asarray(OrthogonalGain(seed=0)((256, 256)), np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(256), atol=1e-5)
    np.testing.assert_allclose(w @ w.T, np.eye(256), atol=1e-5)


def test_wide_kernel_preserves_forward_norms():
    w = np.asarray(OrthogonalGain(gain=2.0, seed=1)((6, 20)), np.float64)
    x = np.random.default_rng(0).normal(size=(50, 6))
    np.testing.assert_allclose(
        np.linalg.norm(x @ w, axis=1), 2 * np.linalg.norm(x, axis=1), 1e-5
    )


def test_blocks_are_each_orthogonal_and_distinct():
    w = np.asarray(OrthogonalGain(blocks=4, seed=2)((8, 32)), np.float64)
    blocks = np.split(w, 4, axis=1)
    for block in blocks:
        _check_semi_orthogonal(block, 1.0)
    assert not np.allclose(blocks[0], blocks[1])
    with pytest.raises(InvalidArgumentError, match="divisible by 3"):
        OrthogonalGain(blocks=3)((8, 32))


def test_orthogonal_draws_are_haar_unbiased():
    # For a Haar-random n x n orthogonal matrix every entry has mean 0 and
    # variance 1/n. Without the sign correction of the QR factor the
    # diagonal is biased (|E w_00| is about sqrt(2 / (pi n))).
    n, draws = 8, 150
    init = OrthogonalGain(seed=3)
    corner = np.array([float(init((n, n))[0, 0]) for _ in range(draws)])
    assert abs(corner.mean()) < 5 * np.sqrt(1 / n / draws)
    assert abs(corner.var() - 1 / n) < 5 * np.sqrt(2 / draws) / n


def test_orthogonal_rank_one_is_refused():
    with pytest.raises(InvalidArgumentError, match="rank 2"):
        OrthogonalGain()((5,))


@settings(max_examples=15, deadline=None)
@given(
    spatial=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    cin=st.integers(1, 6),
    cout=st.integers(1, 6),
)
def test_delta_orthogonal_structure(spatial, cin, cout):
    shape = spatial + (cin, cout)
    w = np.asarray(DeltaOrthogonal(gain=1.3, seed=9)(shape), np.float64)
    centre = tuple((k - 1) // 2 for k in spatial)
    _check_semi_orthogonal(w[centre], 1.3)
    mask = np.ones(spatial, bool)
    mask[centre] = False
    assert np.all(w[mask] == 0)


@pytest.mark.parametrize(
    "layer_cls, spatial, cin, cout",
    [
        (keras.layers.Conv1D, (11,), 4, 6),
        (keras.layers.Conv2D, (7, 6), 5, 5),
        (keras.layers.Conv3D, (4, 5, 3), 3, 8),
        (keras.layers.Conv2D, (6, 6), 3, 7),
    ],
)
def test_delta_orthogonal_conv_preserves_norm(layer_cls, spatial, cin, cout):
    kernel = 3 if layer_cls is not keras.layers.Conv2D else (4, 3)
    layer = layer_cls(
        cout,
        kernel,
        padding="same",
        use_bias=False,
        kernel_initializer=DeltaOrthogonal(gain=1.0, seed=4),
    )
    x = np.random.default_rng(1).normal(size=(8,) + spatial + (cin,))
    y = np.asarray(layer(x.astype("float32")), np.float64)
    norms_in = np.linalg.norm(x.reshape(8, -1), axis=1)
    norms_out = np.linalg.norm(y.reshape(8, -1), axis=1)
    np.testing.assert_allclose(norms_out, norms_in, rtol=1e-5)


def test_delta_orthogonal_on_dense_kernel_names_shape_and_expectation():
    with pytest.raises(InvalidArgumentError) as info:
        DeltaOrthogonal()((64, 32))
    message = str(info.value)
    assert "shape=(64, 32)" in message
    assert "Conv1D/2D/3D" in message
    with pytest.raises(InvalidArgumentError):
        keras.layers.Dense(
            4, kernel_initializer="kerasweights>DeltaOrthogonal"
        ).build((None, 3))


def test_delta_orthogonal_by_string_in_a_layer():
    layer = keras.layers.Conv2D(
        6, 3, kernel_initializer="kerasweights>DeltaOrthogonal"
    )
    layer.build((None, 8, 8, 4))
    assert isinstance(layer.kernel_initializer, DeltaOrthogonal)
    _check_semi_orthogonal(layer.kernel.numpy()[1, 1].astype(np.float64), 1.0)


def test_successive_draws_are_haar_like_keras_orthogonal():
    # A deep network takes one draw per layer from one object, so check
    # the sequence: for independent Haar-random orthogonal n x n matrices
    # the trace T and the overlap S = trace(W_k^T W_k+1) of consecutive
    # draws have mean 0 and mean square 1, and det = +1 or -1 equally
    # often. QR without the sign correction fails the trace check (its
    # diagonal is biased). Keras' own `orthogonal` must pass the same
    # checks and give traces of the same distribution.
    from scipy import stats

    n, count = 16, 400
    ours = OrthogonalGain(seed=11)
    w = np.stack([np.asarray(ours((n, n)), np.float64) for _ in range(count)])
    keras.utils.set_random_seed(11)
    theirs = np.stack(
        [
            np.asarray(keras.initializers.Orthogonal()((n, n)), np.float64)
            for _ in range(count)
        ]
    )
    for draws in (w, theirs):
        trace = np.trace(draws, axis1=1, axis2=2)
        overlap = np.einsum("kij,kij->k", draws[:-1], draws[1:])
        # Standard errors: 1/sqrt(count) for the means, sqrt(2/count)
        # for the mean squares (T and S are close to N(0, 1)); allow 5.
        for values in (trace, overlap):
            assert abs(values.mean()) < 5 / np.sqrt(count)
            assert abs((values**2).mean() - 1) < 5 * np.sqrt(2 / count)
        positive = np.mean(np.linalg.det(draws) > 0)
        assert abs(positive - 0.5) < 5 * 0.5 / np.sqrt(count)
    traces = [np.trace(d, axis1=1, axis2=2) for d in (w, theirs)]
    assert stats.ks_2samp(*traces).pvalue > 1e-4
