"""Weight checksums: recorded at export, rechecked by `verify_export`."""

import glob
import hashlib
import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasweights
from kerasweights.cli import main
from kerasweights.errors import InvalidArgumentError
from kerasweights.export import export_saved_model
from kerasweights.export import verify_export


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An export of a model using the first registered recurrent plugin."""
    record = kerasweights.plugins("recurrent")[0]
    inputs = keras.Input((None, 3), name="sequence")
    x = record.obj(4)(inputs)
    outputs = keras.layers.Dense(2, name="score")(x)
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("integrity") / "sm"
    result = export_saved_model(model, folder, verify=False)
    return folder, result, model


@pytest.fixture
def copy(export, tmp_path):
    folder = tmp_path / "sm"
    shutil.copytree(export[0], folder)
    return folder


def _data_file(folder):
    (path,) = glob.glob(str(folder / "variables" / "variables.data-*"))
    return path


def _flip_bit_in(folder, key, bit=3):
    """Flip one bit inside the stored bytes of checkpoint entry ``key``."""
    value = tf.train.load_checkpoint(
        str(folder / "variables" / "variables")
    ).get_tensor(key)
    path = _data_file(folder)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    start = bytes(data).find(value.tobytes())
    assert start >= 0
    data[start + value.nbytes // 2] ^= 1 << bit
    with open(path, "wb") as f:
        f.write(bytes(data))


def test_every_model_variable_is_recorded_by_name(export):
    folder, result, model = export
    integrity = result["integrity"]
    names = {entry["name"] for entry in integrity["variables"].values()}
    assert {v.path for v in model.variables} <= names
    reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    for key, entry in integrity["variables"].items():
        value = reader.get_tensor(key)
        if isinstance(value, bytes):
            continue
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes())
        assert entry["sha256"] == digest.hexdigest()
    with open(folder / "kerasweights-export.json") as f:
        assert json.load(f)["integrity"] == integrity
    assert "saved_model.pb" in integrity["files"]


def test_an_untouched_export_verifies(export, capsys):
    report = verify_export(export[0])
    assert report.ok and report.problems == []
    assert report.variables_checked == len(export[1]["integrity"]["variables"])
    assert main(["verify", str(export[0])]) == 0
    assert "OK" in capsys.readouterr().out


def test_one_flipped_bit_in_a_variable_is_found_and_named(export, copy, capsys):
    _, result, model = export
    kernel = next(v for v in model.variables if v.path.endswith("kernel"))
    key = next(
        k
        for k, e in result["integrity"]["variables"].items()
        if e["name"] == kernel.path
    )
    _flip_bit_in(copy, key)
    report = verify_export(copy)
    assert not report.ok
    assert report.changed_variables == [kernel.path]
    assert any(kernel.path in p for p in report.problems)

    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and kernel.path in err[0]


def test_a_flipped_bit_anywhere_in_the_data_file_is_found(copy):
    path = _data_file(copy)
    size = len(open(path, "rb").read())
    for offset in (0, size // 3, size - 1):
        with open(path, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0x10]))
        assert not verify_export(copy).ok
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(bytes([byte]))
        assert verify_export(copy).ok


def test_a_changed_graph_file_is_found(copy):
    with open(copy / "saved_model.pb", "ab") as f:
        f.write(b"\0")
    report = verify_export(copy)
    assert not report.ok and report.changed_variables == []
    assert report.problems == ["file 'saved_model.pb' changed"]


def test_a_folder_that_is_not_an_export_exits_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    for folder in (tmp_path, tmp_path / "missing", tmp_path / "notes.txt"):
        with pytest.raises(InvalidArgumentError, match="kerasweights export"):
            verify_export(folder)
        assert main(["verify", str(folder)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(folder) in err[0]


def test_an_export_report_without_checksums_exits_2(copy, capsys):
    report = copy / "kerasweights-export.json"
    data = json.loads(report.read_text())
    del data["integrity"]
    report.write_text(json.dumps(data))
    assert main(["verify", str(copy)]) == 2
    assert "no weight checksums" in capsys.readouterr().err
