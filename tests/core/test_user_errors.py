"""User mistakes found by trying to break the CLI and the API: each is one
clear line (exit 2 from the CLI) and never a traceback."""

import json
import zipfile

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.cli import main
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import ModelFileError
from kerasweights.saving import load_model


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_get_plugin_rejects_non_strings():
    for bad in (123, None, b"mgu"):
        with pytest.raises(InvalidTypeError, match="must be a plugin") as info:
            kerasweights.get_plugin(bad)
        assert isinstance(info.value, TypeError)


def test_load_model_rejects_non_paths():
    for bad in (None, 123, b"model.keras"):
        with pytest.raises(InvalidTypeError, match="`path` must be a path"):
            load_model(bad)


def _saved(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    return path


def _with_config(src, dst, text):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = text.encode()
            zout.writestr(item, data)


def test_deeply_nested_config_is_a_model_file_error(tmp_path):
    deep = tmp_path / "deep.keras"
    _with_config(_saved(tmp_path), deep, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(deep)


def test_object_from_the_saving_script_gets_no_pip_advice(tmp_path):
    path = _saved(tmp_path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["module"] = "__main__"
            layer["class_name"] = "Shift"
            layer["registered_name"] = "Custom>Shift"
    broken = tmp_path / "script.keras"
    _with_config(path, broken, json.dumps(config))
    with pytest.raises(ModelFileError) as info:
        load_model(broken)
    message = str(info.value)
    assert "'Custom>Shift'" in message
    assert "program that saved the model" in message
    assert "pip install" not in message


def test_unwritable_output_path_is_one_line_exit_2(tmp_path, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("mine")
    code = main(["tune", "--output", str(afile / "sub"), "--trials", "1", "-q"])
    line = _error_line(capsys)
    assert code == 2
    assert "afile.txt" in line
    assert afile.read_text() == "mine"


@pytest.mark.parametrize("seed", ["4294967295", "99999999999999999999"])
def test_tune_seed_out_of_range_is_exit_2(tmp_path, capsys, seed):
    code = main(["tune", "--output", str(tmp_path / "o"), "--seed", seed])
    line = _error_line(capsys)
    assert code == 2 and "--seed" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--plot", "out.txt"], "--plot must name a .png"),
        (["--plot", "nodir/x.png"], "does not exist"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "99999999999"], "--seed"),
        (["--optimizer", "sgd", "--learning-rate", "inf"], "finite"),
    ],
)
def test_health_arguments_are_checked_before_training(
    tmp_path, capsys, monkeypatch, flags, words
):
    monkeypatch.chdir(tmp_path)
    path = _saved(tmp_path)
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 3)), y=np.zeros((4, 2)))
    code = main(["health", str(path), "--data", "d.npz", *flags])
    line = _error_line(capsys)
    assert code == 2 and words in line
