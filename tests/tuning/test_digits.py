"""The digits data: shapes, scaling and a split fixed by the seed."""

import numpy as np
import pytest

from kerasweights.datasets.digits import load_digits
from kerasweights.errors import InvalidArgumentError


def _rows(split):
    return np.concatenate([split.x_train, split.x_val, split.x_test]).reshape(
        -1, 64
    )


def test_image_and_sequence_views_hold_the_same_split():
    image = load_digits("image", seed=3)
    sequence = load_digits("sequence", seed=3)
    assert image.x_train.shape[1:] == (8, 8, 1)
    assert sequence.x_train.shape[1:] == (8, 8)
    np.testing.assert_array_equal(image.x_test[..., 0], sequence.x_test)
    np.testing.assert_array_equal(image.y_val, sequence.y_val)


def test_split_is_complete_disjoint_scaled_and_stratified():
    from sklearn.datasets import load_digits as sk_digits

    split = load_digits("sequence", seed=0)
    n = len(split.y_train) + len(split.y_val) + len(split.y_test)
    assert n == 1797
    rows = _rows(split)
    assert rows.dtype == np.float32
    assert rows.min() == 0.0 and rows.max() == 1.0
    # Every original image appears exactly once (as a multiset of rows).
    original = np.sort((sk_digits().data / 16.0).astype("float32"), axis=0)
    np.testing.assert_array_equal(np.sort(rows, axis=0), original)
    assert abs(len(split.y_test) / n - 0.2) < 0.01
    for y in (split.y_train, split.y_val, split.y_test):
        counts = np.bincount(y, minlength=10) / len(y)
        assert counts.min() > 0.07 and counts.max() < 0.13


def test_same_seed_same_split_other_seed_other_split():
    a, b = load_digits(seed=1), load_digits(seed=1)
    c = load_digits(seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_limit_keeps_a_stratified_subset():
    split = load_digits(limit=200, seed=0)
    n = len(split.y_train) + len(split.y_val) + len(split.y_test)
    assert n == 200
    assert set(np.unique(split.y_train)) == set(range(10))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"view": "pixels"},
        {"seed": -1},
        {"validation_fraction": 0.0},
        {"test_fraction": 1.5},
        {"validation_fraction": 0.6, "test_fraction": 0.5},
        {"limit": 10},
    ],
)
def test_bad_arguments_name_the_value(kwargs):
    with pytest.raises(InvalidArgumentError) as info:
        load_digits(**kwargs)
    name, value = next(iter(kwargs.items()))
    assert name in str(info.value)
    assert repr(value) in str(info.value) or str(value) in str(info.value)
