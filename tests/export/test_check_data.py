"""Check data the Keras model cannot take is bad data, found before writing.

Integer inputs take whole numbers in their dtype's range only (check data
is cast to the input dtype, and a cast that changes a value is refused),
and the in-memory model runs once on the check batch, so data it rejects
(token ids beyond an Embedding's vocabulary) is an `InputDataError` rather
than a SavedModel that "did not serve".
"""

import os

import keras
import numpy as np
import pytest

from kerasweights.errors import InputDataError
from kerasweights.export import export_saved_model
from kerasweights.export import validate_check_data
from kerasweights.export.verification import check_model_runs


def _spec(dtype, shape=(None, 4)):
    return {"tokens": {"dtype": dtype, "shape": list(shape)}}


@pytest.mark.parametrize(
    "dtype, value, words",
    [
        ("int32", np.array([[0.5, 1, 2, 3]]), "not whole numbers"),
        ("int64", np.array([[1, 2, 3, 4.25]], "float32"), "such as 4.25"),
        ("int8", np.array([[0, 1, 2, 300]]), "from -128 to 127"),
        ("uint8", np.array([[0, -1, 2, 3]]), "from 0 to 255"),
        ("bool", np.array([[0, 1, 2, 1]]), "0 and 1"),
    ],
)
def test_integer_inputs_refuse_values_a_cast_would_change(dtype, value, words):
    with pytest.raises(InputDataError, match=words) as info:
        validate_check_data(_spec(dtype), value)
    assert "'tokens'" in str(info.value) and dtype in str(info.value)


@pytest.mark.parametrize(
    "dtype, value",
    [
        ("int32", np.array([[0.0, 1.0, 2.0, 9.0]], "float32")),
        ("int8", np.array([[-128, 0, 5, 127]], "int64")),
        ("bool", np.array([[0.0, 1.0, 1.0, 0.0]])),
        ("float32", np.array([[0.5, -3.25, 1e6, 2]])),
    ],
)
def test_values_the_cast_keeps_are_accepted(dtype, value):
    arrays = validate_check_data(_spec(dtype), value)
    np.testing.assert_array_equal(arrays["tokens"].astype(dtype), value)


def _token_model(vocabulary=10):
    inputs = keras.Input((4,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocabulary, 3, name="embed")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="score")(x))


def test_ids_beyond_the_vocabulary_are_bad_data():
    model = _token_model()
    check_model_runs(model, np.full((3, 4), 9, "int32"))
    with pytest.raises(InputDataError) as info:
        check_model_runs(model, np.full((3, 4), 99, "int32"))
    message = str(info.value)
    assert "99 is not in [0, 10)" in message
    assert "embed takes ids below 10" in message
    assert "\n" not in message and "\x1b" not in message


def test_bad_data_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "sm"
    tokens = np.full((3, 4), 99, "int32")
    with pytest.raises(InputDataError, match="cannot run on the check data"):
        export_saved_model(_token_model(), out, data=tokens)
    with pytest.raises(InputDataError, match="not whole numbers"):
        export_saved_model(_token_model(), out, data=tokens + 0.5)
    assert os.listdir(tmp_path) == []
