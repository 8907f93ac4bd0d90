"""Loading model files: clear errors (C04) and bare registered names (C03)."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.errors import ModelFileError
from kerasweights.saving import load_model
from kerasweights.saving import read_model_config


def _small_model():
    inputs = keras.Input((3,), name="features")
    outputs = keras.layers.Dense(2, name="scores")(inputs)
    return keras.Model(inputs, outputs)


def _rewrite_config(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            zout.writestr(item, data)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.keras")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ModelFileError, match="not a file"):
        load_model(tmp_path)


def test_truncated_file(tmp_path):
    path = tmp_path / "m.keras"
    _small_model().save(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated") as info:
        load_model(cut)
    assert isinstance(info.value, ValueError)
    assert cut.read_bytes() == data[: len(data) // 2]


def test_not_a_keras_file(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("hello")
    with pytest.raises(ModelFileError, match="not a .keras archive"):
        load_model(path)
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(ModelFileError, match="without config.json"):
        load_model(other)


@pytest.mark.parametrize("name", ["model.h5", "renamed.keras"])
def test_legacy_hdf5_file_is_named_with_its_conversion(tmp_path, name):
    # Every command reads model files through here, so an .h5 file (even
    # one renamed to .keras) is named as what it is, with the way out.
    path = tmp_path / name
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "legacy HDF5 (.h5)" in message
    assert ".save('model.keras')" in message
    assert "\n" not in message


def test_lambda_layer_is_refused_without_advising_unsafe_loading(tmp_path):
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "Lambda layer" in message
    assert "safe_mode=False" not in message and "\n" not in message


def test_missing_plugin_names_registered_name_and_package(tmp_path):
    path = tmp_path / "m.keras"
    _small_model().save(path)

    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["module"] = "acme_gates.layers"
                layer["class_name"] = "FancyDense"
                layer["registered_name"] = "acme_gates>FancyDense"
        return config

    broken = tmp_path / "needs-plugin.keras"
    _rewrite_config(path, broken, edit)
    with pytest.raises(ModelFileError) as info:
        load_model(broken)
    message = str(info.value)
    assert "acme_gates>FancyDense" in message
    assert "package 'acme_gates', which is not installed" in message
    assert "pip install" not in message
    assert "\n" not in message


def test_round_trip_through_load_model(tmp_path):
    model = _small_model()
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(
        load_model(path).predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert read_model_config(path)["class_name"] == "Functional"


def _plugin_model():
    """A model holding one recurrent layer and one initializer plugin."""
    init = next(
        r
        for r in kerasweights.plugins("initializer")
        if "dense_kernel" in getattr(r.obj, "plugin_targets", ("dense_kernel",))
    )
    layer = kerasweights.plugins("recurrent")[0]
    inputs = keras.Input((5, 3))
    x = layer.obj(4, return_sequences=False)(inputs)
    outputs = keras.layers.Dense(2, kernel_initializer=init.obj())(x)
    return keras.Model(inputs, outputs), init, layer


def test_bare_registered_names_load(tmp_path):
    """C03: a file naming our classes without `kerasweights>` loads."""
    model, init, layer = _plugin_model()
    path = tmp_path / "m.keras"
    model.save(path)
    bare = {init.registered_name, layer.registered_name}

    def edit(config):
        text = json.dumps(config)
        for name in bare:
            text = text.replace(f'"{name}"', f'"{name.split(">", 1)[1]}"')
        return json.loads(text)

    stripped = tmp_path / "bare.keras"
    _rewrite_config(path, stripped, edit)
    text = json.dumps(read_model_config(stripped))
    assert not any(name in text for name in bare)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype("float32")
    loaded = keras.saving.load_model(stripped)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_fresh_process_finds_plugins_after_import(tmp_path, fresh_python):
    """C04: a process that imports only kerasweights loads the model."""
    model, _, _ = _plugin_model()
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    names = [r.registered_name for r in kerasweights.plugins()]
    code = f"""
import sys, numpy as np
import kerasweights, keras
# Registered by the import alone, before any lookup through the registry.
missing = [n for n in {names!r}
           if keras.saving.get_registered_object(n) is None]
assert not missing, missing
assert not any(m.startswith("kerasweights.") and m.endswith("_cmd")
               for m in sys.modules)
m = keras.saving.load_model({os.fspath(path)!r})
y = m.predict(np.load({os.fspath(tmp_path / "x.npy")!r}), verbose=0)
np.testing.assert_allclose(y, np.load({os.fspath(tmp_path / "y.npy")!r}),
                           atol=1e-6)
print("ok")
"""
    out = fresh_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
