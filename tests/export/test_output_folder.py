"""Output folders: claimed with a manifest, never losing a user's file."""

import json
import os

import pytest

from kerasweights.errors import OutputExistsError
from kerasweights.export import MANIFEST_NAME
from kerasweights.export import claim_output_folder
from kerasweights.export import read_manifest
from kerasweights.export.output_folder import check_output_folder
from kerasweights.export.output_folder import record_output_files


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
    record_output_files(folder)


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
    claim_output_folder(folder, ["other"], "export", overwrite=True)
    assert sorted(os.listdir(folder)) == [MANIFEST_NAME]
    assert read_manifest(folder)["entries"] == ["other"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_foreign_files_are_always_refused(tmp_path, overwrite):
    folder = tmp_path / "out"
    _previous_run(folder)
    (folder / "notes.txt").write_text("mine")
    before = _snapshot(folder)
    with pytest.raises(OutputExistsError, match="notes.txt"):
        claim_output_folder(folder, ["model.keras"], "export", overwrite)
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


def test_the_manifest_records_every_path_written(tmp_path):
    folder = tmp_path / "out"
    _previous_run(folder)
    manifest = read_manifest(folder)
    assert manifest["files"] == ["model.keras", "saved/x.pb"]
    assert manifest["folders"] == ["saved"]


@pytest.mark.parametrize(
    "added", ["saved/my_notes.txt", "saved/deep/README.md", "saved/deep"]
)
def test_overwrite_keeps_a_file_added_inside_an_entry(tmp_path, added):
    folder = tmp_path / "out"
    _previous_run(folder)
    path = folder.joinpath(*added.split("/"))
    if added.endswith("deep"):
        path.mkdir()
    else:
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine")
    before = _snapshot(folder)
    with pytest.raises(OutputExistsError, match="did not write") as info:
        claim_output_folder(folder, ["model.keras"], "export", True)
    assert (
        "saved/" in str(info.value) and len(str(info.value).splitlines()) == 1
    )
    assert _snapshot(folder) == before
    assert path.exists()


def test_a_manifest_without_a_file_list_keeps_filled_folders(tmp_path):
    # Manifests written before paths were recorded name entries only; what
    # is inside a folder entry cannot be told from a user's file.
    folder = tmp_path / "out"
    claim_output_folder(folder, ["model.keras", "saved"], "tune")
    (folder / "model.keras").write_text("old model")
    (folder / "saved").mkdir()
    (folder / "saved" / "my_notes.txt").write_text("mine")
    before = _snapshot(folder)
    with pytest.raises(OutputExistsError, match="no file list"):
        claim_output_folder(folder, ["model.keras"], "tune", overwrite=True)
    assert _snapshot(folder) == before


def test_a_manifest_without_a_file_list_still_replaces_files(tmp_path):
    folder = tmp_path / "out"
    claim_output_folder(folder, ["model.keras", "saved"], "tune")
    (folder / "model.keras").write_text("old model")
    (folder / "saved").mkdir()
    claim_output_folder(folder, ["model.keras"], "tune", overwrite=True)
    assert sorted(os.listdir(folder)) == [MANIFEST_NAME]


def test_overwrite_refuses_a_run_of_another_command(tmp_path):
    folder = tmp_path / "out"
    _previous_run(folder)
    before = _snapshot(folder)
    with pytest.raises(OutputExistsError, match="export run") as info:
        claim_output_folder(folder, ["model.keras"], "tune", overwrite=True)
    assert "tune --overwrite" in str(info.value)
    assert _snapshot(folder) == before


@pytest.mark.parametrize(
    "files", [["../precious.txt"], ["x/../../precious.txt"], ["/etc/x"]]
)
def test_recorded_paths_outside_the_entries_are_not_trusted(tmp_path, files):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MANIFEST_NAME).write_text(
        json.dumps({"command": "tune", "entries": ["x"], "files": files})
    )
    assert read_manifest(folder) is None


def test_check_output_folder_changes_nothing(tmp_path):
    folder = tmp_path / "out"
    _previous_run(folder)
    before = _snapshot(folder)
    check_output_folder(folder, "export", overwrite=True)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output_folder(folder, "export")
    assert _snapshot(folder) == before
    check_output_folder(tmp_path / "new", "export")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "option, shown, hidden",
    [
        (None, "pass --overwrite (overwrite=True) to", None),
        ("--overwrite", "pass --overwrite to", "overwrite=True"),
        ("overwrite=True", "pass overwrite=True to", "--overwrite"),
    ],
)
def test_refusals_name_the_overwrite_option_the_caller_uses(
    tmp_path, option, shown, hidden
):
    folder = tmp_path / "out"
    _previous_run(folder)
    for call in (
        lambda: check_output_folder(folder, "export", overwrite_option=option),
        lambda: claim_output_folder(
            folder, ["x"], "export", overwrite_option=option
        ),
    ):
        with pytest.raises(OutputExistsError) as info:
            call()
        assert shown in str(info.value)
        assert hidden is None or hidden not in str(info.value)
    # A run of another command names the option the same way.
    with pytest.raises(OutputExistsError) as info:
        check_output_folder(
            folder, "tune", overwrite=True, overwrite_option=option
        )
    text = str(info.value)
    assert "replaces only a previous tune run" in text
    assert hidden is None or hidden not in text
    # Without the option the refusal does not suggest passing it: that
    # would only lead to the refusal above.
    with pytest.raises(OutputExistsError) as info:
        check_output_folder(folder, "tune", overwrite_option=option)
    assert "pass " not in str(info.value)
    assert "replaces only a previous tune run" in str(info.value)
