"""Output folders: claimed with a manifest, never losing a user's file."""

import json
import os

import pytest

from kerasweights.errors import OutputExistsError
from kerasweights.export import MANIFEST_NAME
from kerasweights.export import claim_output_folder
from kerasweights.export import read_manifest


def _snapshot(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _previous_run(folder):
    claim_output_folder(folder, ["model.keras", "saved"], "export")
    (folder / "model.keras").write_text("old model")
    (folder / "saved").mkdir()
    (folder / "saved" / "x.pb").write_text("old graph")


def test_new_and_empty_folders_are_claimed(tmp_path):
    new = tmp_path / "a" / "b"
    claim_output_folder(new, ["model.keras"], "tune")
    assert read_manifest(new)["entries"] == ["model.keras"]
    empty = tmp_path / "empty"
    empty.mkdir()
    claim_output_folder(empty, ["x"], "export")
    assert read_manifest(empty)["command"] == "export"


def test_a_previous_run_is_refused_without_overwrite(tmp_path):
    folder = tmp_path / "out"
    _previous_run(folder)
    before = _snapshot(folder)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        claim_output_folder(folder, ["model.keras"], "export")
    assert _snapshot(folder) == before


def test_overwrite_removes_only_what_the_manifest_names(tmp_path):
    folder = tmp_path / "out"
    _previous_run(folder)
    claim_output_folder(folder, ["other"], "tune", overwrite=True)
    assert sorted(os.listdir(folder)) == [MANIFEST_NAME]
    assert read_manifest(folder)["entries"] == ["other"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_foreign_files_are_always_refused(tmp_path, overwrite):
    folder = tmp_path / "out"
    _previous_run(folder)
    (folder / "notes.txt").write_text("mine")
    before = _snapshot(folder)
    with pytest.raises(OutputExistsError, match="notes.txt"):
        claim_output_folder(folder, ["model.keras"], "tune", overwrite)
    assert _snapshot(folder) == before


def test_a_folder_without_manifest_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(OutputExistsError, match="did not write"):
        claim_output_folder(tmp_path, ["data.csv"], "tune", overwrite=True)
    assert (tmp_path / "data.csv").read_text() == "1,2"


def test_a_manifest_pointing_outside_is_not_trusted(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MANIFEST_NAME).write_text(
        json.dumps({"entries": ["../precious.txt"]})
    )
    assert read_manifest(folder) is None
    with pytest.raises(OutputExistsError):
        claim_output_folder(folder, ["x"], "tune", overwrite=True)
    assert outside.read_text() == "keep"


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(OutputExistsError, match="existing file"):
        claim_output_folder(path, ["x"], "tune", overwrite=True)
    assert path.read_text() == "x"
