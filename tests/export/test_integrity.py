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


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("cut", ["one_byte", "half", "empty"])
def test_a_cut_variables_file_is_a_short_finding(copy, cut, capsys):
    path = _data_file(copy)
    size = len(open(path, "rb").read())
    keep = {"one_byte": size - 1, "half": size // 2, "empty": 0}[cut]
    with open(path, "r+b") as f:
        f.truncate(keep)
    report = verify_export(copy)
    assert not report.ok and report.changed_variables
    assert main(["verify", str(copy)]) == 1
    line = _one_error_line(capsys)
    assert "variables.data-" in line and len(line) < 800


def test_a_missing_variables_file_is_named_missing(copy, capsys):
    import os

    os.remove(_data_file(copy))
    assert main(["verify", str(copy)]) == 1
    line = _one_error_line(capsys)
    assert "is missing" in line and "more" in line and len(line) < 600
    assert "stored bytes changed" not in line


def test_two_exports_of_one_model_share_the_overall_digest(export, tmp_path):
    folder, result, model = export
    again = export_saved_model(model, tmp_path / "again", verify=False)
    assert again["integrity"]["overall"] == result["integrity"]["overall"]
    # The digest is over Keras paths and values, not checkpoint keys, and
    # leaves seed generator states out: renumbering keys or redrawing a
    # seed keeps it; changing a weight does not.
    from kerasweights.export.integrity import _overall

    variables = result["integrity"]["variables"]
    renamed = {
        "x/" + key if key.startswith("variables/") else key: entry
        for key, entry in variables.items()
    }
    renamed["variables/99/.ATTRIBUTES/VARIABLE_VALUE"] = {
        "name": "seed_generator_9/seed_generator_state",
        "dtype": "int64",
        "shape": [2],
        "sha256": "0" * 64,
    }
    assert _overall(renamed) == result["integrity"]["overall"]
    key = next(
        k for k, e in variables.items() if e["name"] == model.variables[0].path
    )
    changed = dict(variables)
    changed[key] = {**variables[key], "sha256": "f" * 64}
    assert _overall(changed) != result["integrity"]["overall"]


@pytest.mark.parametrize(
    "damage",
    [
        "tmp_file",
        "nested_file",
        "empty_folder",
        "no_manifest",
        "edited_manifest",
    ],
)
def test_every_file_and_folder_of_the_export_is_checked(copy, damage, capsys):
    manifest = copy / "kerasweights-manifest.json"
    if damage == "tmp_file":
        (copy / "model.tflite.tmp").write_bytes(b"x")
    elif damage == "nested_file":
        (copy / "variables" / "extra.tmp").write_bytes(b"x")
    elif damage == "empty_folder":
        (copy / "variables" / "newdir").mkdir()
    elif damage == "no_manifest":
        manifest.unlink()
    else:
        manifest.write_text(manifest.read_text().replace("written", "vritten"))
    assert not verify_export(copy).ok
    assert main(["verify", str(copy)]) == 1
    line = _one_error_line(capsys)
    expected = {
        "tmp_file": "model.tflite.tmp",
        "nested_file": "variables/extra.tmp",
        "empty_folder": "variables/newdir",
        "no_manifest": "kerasweights-manifest.json' is missing",
        "edited_manifest": "kerasweights-manifest.json' is damaged",
    }[damage]
    assert expected in line


def test_a_folder_holding_an_export_names_it(export, tmp_path, capsys):
    outer = tmp_path / "compressed"
    shutil.copytree(export[0], outer / "saved_model")
    assert main(["verify", str(outer)]) == 2
    line = _one_error_line(capsys)
    assert str(outer / "saved_model") in line


def test_a_damaged_report_says_so(copy, capsys):
    report = copy / "kerasweights-export.json"
    data = bytearray(report.read_bytes())
    data[0] ^= 0x01
    report.write_bytes(bytes(data))
    assert main(["verify", str(copy)]) == 2
    line = _one_error_line(capsys)
    assert "damaged or not a kerasweights report" in line
