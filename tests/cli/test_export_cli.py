"""`kerasweights export MODEL.keras OUTDIR`: a verified SavedModel."""

import json
import os

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.cli import main


def _snapshot(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A digits-shaped conv model using a conv-kernel initializer plugin."""
    record = next(
        r
        for r in kerasweights.plugins("initializer")
        if "conv_kernel" in getattr(r.obj, "plugin_targets", ())
    )
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(4, 3, kernel_initializer=record.obj())(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    path = tmp_path_factory.mktemp("model") / "digits.keras"
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.fixture(scope="module")
def exported(model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "sm"
    code = main(["export", str(model_file), str(out), "--json"])
    return code, out


def test_export_writes_and_verifies_on_digits(exported, capsys):
    code, out = exported
    assert code == 0
    assert os.path.exists(out / "saved_model.pb")
    with open(out / "kerasweights-export.json") as f:
        report = json.load(f)
    verification = report["verification"]
    assert verification["inputs"] == {
        "pixels": {"dtype": "float32", "shape": [None, 8, 8, 1]}
    }
    assert list(verification["outputs"]) == ["digit"]
    assert verification["cases"] == [{"pixels": [16, 8, 8, 1]}]


def test_a_previous_export_needs_overwrite(exported, model_file, capsys):
    _, out = exported
    before = _snapshot(out)
    code = main(["export", str(model_file), str(out)])
    line = _one_error_line(capsys)
    assert code == 2 and "pass --overwrite to" in line and str(out) in line
    assert "overwrite=True" not in line  # the Python spelling
    assert _snapshot(out) == before


def test_overwrite_refuses_foreign_files(exported, model_file, capsys):
    _, out = exported
    (out / "README.txt").write_text("mine")
    try:
        before = _snapshot(out)
        code = main(["export", str(model_file), str(out), "--overwrite"])
        line = _one_error_line(capsys)
        assert code == 2 and "README.txt" in line
        assert _snapshot(out) == before
    finally:
        (out / "README.txt").unlink()


def _truncated(tmp_path, model_file):
    path = tmp_path / "cut.keras"
    data = model_file.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _text(tmp_path, _):
    path = tmp_path / "notes.keras"
    path.write_text("hello")
    return path


def _missing(tmp_path, _):
    return tmp_path / "nothing.keras"


def _legacy_h5(tmp_path, model_file):
    path = tmp_path / "legacy.h5"
    keras.saving.load_model(model_file).save(path)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (_missing, "does not exist"),
        (_truncated, "truncated"),
        (_text, "not a .keras archive"),
        (_legacy_h5, "legacy HDF5 (.h5) model file"),
    ],
)
def test_bad_model_files_exit_2_and_touch_nothing(
    tmp_path, capsys, model_file, make, words
):
    path = make(tmp_path, model_file)
    out = tmp_path / "out"
    code = main(["export", str(path), str(out)])
    line = _one_error_line(capsys)
    assert code == 2 and words in line and str(path) in line
    assert not out.exists()


def test_missing_arguments_exit_2(capsys):
    assert main(["export"]) == 2
    _one_error_line(capsys)


def test_a_file_added_inside_a_previous_export_is_kept(
    exported, model_file, capsys
):
    _, out = exported
    notes = out / "variables" / "README.md"
    notes.write_text("mine")
    try:
        before = _snapshot(out)
        code = main(["export", str(model_file), str(out), "--overwrite"])
        line = _one_error_line(capsys)
        assert code == 2 and "variables/README.md" in line
        assert _snapshot(out) == before
    finally:
        notes.unlink()


def _tune_run(folder, model_file):
    from kerasweights.export.output_folder import claim_output_folder
    from kerasweights.export.output_folder import record_output_files

    claim_output_folder(folder, ["best_model.keras", "tuner"], "tune")
    (folder / "best_model.keras").write_bytes(model_file.read_bytes())
    (folder / "tuner").mkdir()
    (folder / "tuner" / "trial.json").write_text("{}")
    record_output_files(folder)


def test_the_model_inside_the_output_folder_is_refused(
    tmp_path, model_file, capsys
):
    run = tmp_path / "run"
    _tune_run(run, model_file)
    before = _snapshot(run)
    code = main(
        ["export", str(run / "best_model.keras"), str(run), "--overwrite"]
    )
    line = _one_error_line(capsys)
    assert code == 2 and "inside the output folder" in line
    assert _snapshot(run) == before


def test_export_overwrite_refuses_a_tune_run(tmp_path, model_file, capsys):
    run = tmp_path / "run"
    _tune_run(run, model_file)
    before = _snapshot(run)
    code = main(["export", str(model_file), str(run), "--overwrite"])
    line = _one_error_line(capsys)
    assert code == 2 and "tune run" in line
    assert _snapshot(run) == before


def _nan_pixels():
    pixels = np.zeros((20, 8, 8, 1), "float32")
    pixels[3, 2, 1, 0] = np.nan
    return pixels


@pytest.mark.parametrize(
    "data, words",
    [
        (lambda: np.zeros((20, 8, 8), "float32"), "(-1, 8, 8, 1)"),
        (_nan_pixels, "NaN"),
    ],
)
def test_bad_data_exits_2_and_keeps_the_previous_export(
    exported, model_file, tmp_path, capsys, data, words
):
    _, out = exported
    path = tmp_path / "bad.npz"
    np.savez(path, pixels=data())
    before = _snapshot(out)
    argv = ["export", str(model_file), str(out), "--overwrite"]
    code = main([*argv, "--data", str(path)])
    line = _one_error_line(capsys)
    assert code == 2 and words in line and "'pixels'" in line
    assert _snapshot(out) == before
    assert os.listdir(out.parent) == [out.name]


def test_a_savedmodel_folder_given_as_model_exits_2(exported, tmp_path, capsys):
    _, out = exported
    code = main(["export", str(out), str(tmp_path / "again")])
    line = _one_error_line(capsys)
    assert code == 2 and str(out) in line
    assert not (tmp_path / "again").exists()


def test_an_output_path_that_is_a_file_exits_2(model_file, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    code = main(["export", str(model_file), str(target)])
    line = _one_error_line(capsys)
    assert code == 2 and "is a file; expected a folder" in line
    assert target.read_text() == "mine"


@pytest.mark.parametrize(
    "options, words",
    [
        (["--tflite-batch-size", "2"], "needs --tflite"),
        (["--tflite-time-steps", "5"], "needs --tflite"),
        (["--tflite", "--tflite-batch-size", "0"], "positive integer"),
        (["--tflite", "--tflite-batch-size", "two"], "positive integer"),
        (["--tflite", "--tflite-time-steps", "-4"], "positive integer"),
        # The digits conv model has no unknown axis to pin.
        (["--tflite", "--tflite-time-steps", "8"], "time_steps"),
    ],
)
def test_bad_tflite_options_exit_2_and_write_nothing(
    model_file, tmp_path, capsys, options, words
):
    out = tmp_path / "out"
    code = main(["export", str(model_file), str(out), *options])
    line = _one_error_line(capsys)
    assert code == 2 and words in line
    assert not out.exists()
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def tflite_export(model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite") / "sm"
    code = main(["export", str(model_file), str(out), "--tflite", "-q"])
    return code, out


def test_export_with_tflite_writes_a_checked_model(tflite_export, capsys):
    code, out = tflite_export
    assert code == 0
    with open(out / "kerasweights-export.json") as f:
        report = json.load(f)
    assert report["tflite"]["strategy"].startswith("batch pinned to 1")
    assert report["tflite"]["inputs"]["pixels"]["shape"] == [1, 8, 8, 1]
    assert "model.tflite" in report["integrity"]["files"]
    manifest = kerasweights.export.read_manifest(out)
    assert "model.tflite" in manifest["files"]
    assert main(["verify", str(out)]) == 0


def test_verify_finds_a_changed_tflite_file(tflite_export, tmp_path, capsys):
    import shutil

    _, out = tflite_export
    copy = tmp_path / "sm"
    shutil.copytree(out, copy)
    with open(copy / "model.tflite", "r+b") as f:
        f.seek(200)
        byte = f.read(1)[0]
        f.seek(200)
        f.write(bytes([byte ^ 1]))
    code = main(["verify", str(copy)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "'model.tflite' changed" in err[0]


def test_verify_refuses_a_folder_that_is_not_an_export(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "kerasweights export" in line
    assert main(["verify"]) == 2
    _one_error_line(capsys)


def _object_npz(path):
    x = np.array([1, "a", None], dtype=object)
    np.savez(path, x=x, y=np.zeros(3))


def _object_npy(path):
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _text_file(path):
    path.write_text("pixels\n1,2,3\n")


def _empty_file(path):
    path.write_bytes(b"")


def _truncated_npz(path):
    np.savez(path, pixels=np.zeros((20, 8, 8, 1), "float32"))
    path.write_bytes(path.read_bytes()[:300])


def _zip_not_npz(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pixels.txt", "1 2 3")


@pytest.mark.parametrize(
    "make, name, words",
    [
        (_object_npz, "o.npz", "array 'x' holds Python objects"),
        (_object_npy, "o.npy", "its array holds Python objects"),
        (_text_file, "data.csv", "is not a NumPy file"),
        (_empty_file, "empty.npz", "is not a NumPy file"),
        (_truncated_npz, "cut.npz", "is truncated or damaged"),
        (_zip_not_npz, "other.npz", "member 'pixels.txt' is not a NumPy"),
    ],
)
def test_unreadable_data_files_exit_2_in_one_line(
    model_file, tmp_path, capsys, make, name, words
):
    path = tmp_path / name
    make(path)
    out = tmp_path / "out"
    code = main(["export", str(model_file), str(out), "--data", str(path)])
    line = _one_error_line(capsys)
    assert code == 2 and words in line and repr(str(path)) in line
    # Never a hint to load the file unsafely.
    assert "pickle" not in line
    assert not out.exists()


@pytest.fixture(scope="module")
def token_model_file(tmp_path_factory):
    inputs = keras.Input((4,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(10, 3, name="embed")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(1, name="score")(x)
    path = tmp_path_factory.mktemp("tokens") / "tokens.keras"
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.parametrize(
    "tokens, words",
    [
        (np.full((2, 4), 99, "int32"), "embed takes ids below 10"),
        (np.full((2, 4), 0.5, "float32"), "not whole numbers"),
    ],
)
def test_data_the_keras_model_refuses_exits_2_naming_the_file(
    token_model_file, tmp_path, capsys, tokens, words
):
    path = tmp_path / "tokens.npy"
    np.save(path, tokens)
    out = tmp_path / "out"
    argv = ["export", str(token_model_file), str(out), "--data", str(path)]
    code = main(argv)
    line = _one_error_line(capsys)
    assert code == 2 and words in line
    assert line.startswith(f"error: --data file {str(path)!r}: ")
    assert "SavedModel" not in line
    assert os.listdir(tmp_path) == ["tokens.npy"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_an_output_folder_that_cannot_be_made_names_the_users_path(
    model_file, capsys
):
    code = main(["export", str(model_file), "/proc/kerasweights-out"])
    line = _one_error_line(capsys)
    assert code == 2 and "'/proc/kerasweights-out'" in line
    assert "staging" not in line


@pytest.mark.filterwarnings("ignore:You are saving a model that has not")
def test_a_fairness_model_file_exports_its_prediction_model(tmp_path, capsys):
    from kerasweights.fairness import FairnessModel
    from kerasweights.fairness import MMDPenalty

    inputs = keras.Input((3,), name="features")
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(inputs)
    predictor = keras.Model(inputs, outputs)
    path = tmp_path / "fair.keras"
    FairnessModel(predictor, MMDPenalty(), sensitive="group").save(path)
    data = tmp_path / "train.npz"
    rng = np.random.default_rng(0)
    np.savez(data, features=rng.normal(size=(9, 3)), group=np.arange(9) % 2)
    out = tmp_path / "sm"
    code = main(["export", str(path), str(out), "--data", str(data)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.count("note:") == 1
    lines = printed.out.splitlines()
    assert lines[1].startswith("  note: FairnessModel")
    assert "without the sensitive input 'group'" in lines[1]
    assert "serving signature: features float32 (-1, 3) -> score" in lines[2]
    with open(out / "kerasweights-export.json") as f:
        report = json.load(f)
    assert list(report["signature"]["inputs"]) == ["features"]
