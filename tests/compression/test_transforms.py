"""The weight transforms against direct NumPy computations."""

import numpy as np
import pytest

from kerasweights.compression.transforms import fake_quantize_int8
from kerasweights.compression.transforms import kmeans_1d
from kerasweights.compression.transforms import magnitude_mask


def test_fake_quantize_int8_is_the_per_channel_symmetric_grid():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(5, 7, 3)).astype("float32")
    weight[0, 0, 1] = 0.0
    rounded = fake_quantize_int8(weight)

    for channel in range(3):
        column = weight[..., channel]
        scale = np.abs(column).max() / 127
        levels = rounded[..., channel] / scale
        np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
        assert np.abs(levels).max() == pytest.approx(127, abs=1e-3)
        np.testing.assert_allclose(
            rounded[..., channel], column, atol=scale / 2 + 1e-7
        )
    assert rounded[0, 0, 1] == 0.0
    # Rounding twice changes nothing: the grid is a fixed point.
    np.testing.assert_allclose(fake_quantize_int8(rounded), rounded, atol=1e-7)


def test_fake_quantize_keeps_an_all_zero_channel_zero():
    weight = np.zeros((4, 2), dtype="float32")
    weight[:, 1] = [1.0, -2.0, 0.5, 0.0]
    rounded = fake_quantize_int8(weight)
    assert np.all(rounded[:, 0] == 0)


def test_magnitude_mask_zeroes_exactly_the_smallest_share():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(10, 10))
    mask = magnitude_mask(weight, 0.3)
    assert mask.sum() == 70
    assert np.abs(weight[~mask]).max() <= np.abs(weight[mask]).min()


def test_magnitude_mask_never_revives_a_pruned_weight():
    weight = np.arange(1.0, 11.0).reshape(2, 5)
    first = magnitude_mask(weight, 0.2)
    grown = weight.copy()
    grown[~first] = 100.0  # a pruned weight that grew large in the shadow
    second = magnitude_mask(grown, 0.4, keep=first)
    assert not np.any(second & ~first)
    assert second.sum() == 6


def test_kmeans_1d_reaches_a_fixed_point_of_lloyd():
    rng = np.random.default_rng(2)
    values = np.concatenate(
        [rng.normal(-1, 0.05, 50), rng.normal(0.2, 0.05, 30), [3.0]]
    )
    labels, centroids = kmeans_1d(values, 3)
    for k in range(3):
        assert centroids[k] == pytest.approx(values[labels == k].mean())
    nearest = np.argmin(np.abs(values[:, None] - centroids[None, :]), axis=1)
    np.testing.assert_array_equal(labels, nearest)
    # The outlier keeps a centroid of its own.
    assert np.sum(labels == labels[-1]) == 1
