"""A bad model file gets one ModelFileError saying what was expected."""

import zipfile

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.errors import ModelFileError
from kerasweights.export import load_keras_model


@pytest.fixture(scope="module")
def saved_model_file(tmp_path_factory):
    record = next(
        r
        for r in kerasweights.plugins("initializer")
        if "dense_kernel" in getattr(r.obj, "plugin_targets", ("dense_kernel",))
    )
    inputs = keras.Input((4,), name="features")
    outputs = keras.layers.Dense(
        3, name="scores", kernel_initializer=record.obj()
    )(inputs)
    model = keras.Model(inputs, outputs)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path, model


def test_a_good_file_loads_with_its_plugins(saved_model_file):
    path, model = saved_model_file
    loaded = load_keras_model(path)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def _truncated(tmp_path, saved_model_file):
    data = saved_model_file[0].read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(tmp_path, _):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    return path


def _zip_without_config(tmp_path, _):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    return path


def _missing(tmp_path, _):
    return tmp_path / "missing.keras"


def _wrong_suffix(tmp_path, saved_model_file):
    path = tmp_path / "model.h5"
    path.write_bytes(saved_model_file[0].read_bytes())
    return path


def _legacy_h5(tmp_path, saved_model_file):
    path = tmp_path / "legacy.h5"
    saved_model_file[1].save(path)  # Keras 3 still writes the HDF5 format
    return path


def _h5_named_keras(tmp_path, saved_model_file):
    path = tmp_path / "renamed.keras"
    path.write_bytes(_legacy_h5(tmp_path, saved_model_file).read_bytes())
    return path


def _folder(tmp_path, _):
    path = tmp_path / "dir.keras"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (_missing, "does not exist"),
        (_truncated, "truncated"),
        (_text, "not a .keras archive"),
        (_zip_without_config, "without config.json"),
        (_wrong_suffix, "does not end in .keras"),
        (_folder, "not a file"),
        (_legacy_h5, "legacy HDF5 (.h5) model file"),
        (_h5_named_keras, "keras.saving.load_model("),
    ],
)
def test_bad_model_files(tmp_path, saved_model_file, make, words):
    path = make(tmp_path, saved_model_file)
    with pytest.raises(ModelFileError) as info:
        load_keras_model(path)
    message = str(info.value)
    assert words in message
    assert str(path) in message
    assert "\n" not in message


def test_a_legacy_h5_message_says_how_to_convert(tmp_path, saved_model_file):
    path = _legacy_h5(tmp_path, saved_model_file)
    with pytest.raises(ModelFileError) as info:
        load_keras_model(path)
    message = str(info.value)
    assert "Keras 2 / tf_keras" in message and ".keras" in message
    # The conversion the message suggests works and gives an exportable file.
    converted = tmp_path / "model.keras"
    keras.saving.load_model(path).save(converted)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(
        load_keras_model(converted)(x), saved_model_file[1](x), rtol=1e-6
    )
