"""``kerasweights health MODEL.keras --data FILE``."""

import json

import health_helpers as hh
import numpy as np
import pytest

from kerasweights.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("health_cli")
    model = hh.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(folder / "model.keras")
    hh.sequential().save(folder / "uncompiled.keras")
    x, y = hh.data(n=64)
    np.savez(folder / "data.npz", x=x, y=y)
    np.savez(folder / "no_y.npz", x=x)
    np.savez(folder / "short_y.npz", x=x, y=y[:10])
    np.save(folder / "array.npy", x)
    (folder / "junk.npz").write_text("not numpy")
    np.savez(folder / "labels_7.npz", x=x, y=np.full(len(x), 7, "int32"))
    np.savez(folder / "labels_neg.npz", x=x, y=np.full(len(x), -1, "int64"))
    np.savez(folder / "labels_float.npz", x=x, y=y.astype("float32") + 0.5)
    np.savez(folder / "labels_whole.npz", x=x, y=y.astype("float32"))
    np.savez(
        folder / "objects.npz",
        x=np.array([1, "a", None], dtype=object),
        y=np.zeros(3),
    )
    np.savez(folder / "object_y.npz", x=x[:3], y=np.array([1, "a", None]))
    np.savez(folder / "string_y.npz", x=x, y=np.array(["a"] * len(x)))
    return folder


def test_prints_the_diagnosis(files, capsys):
    code = main(
        [
            "health",
            str(files / "model.keras"),
            "--data",
            str(files / "data.npz"),
            "--epochs",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Gradient health: healthy (2 recorded steps")


def test_json_report_and_plot(files, capsys, tmp_path):
    plot = tmp_path / "norms.png"
    code = main(
        [
            "health",
            str(files / "uncompiled.keras"),
            "--data",
            str(files / "data.npz"),
            "--epochs",
            "1",
            "--json",
            "--loss",
            "sparse_categorical_crossentropy",
            "--optimizer",
            "sgd",
            "--learning-rate",
            "1e-9",
            "--plot",
            str(plot),
            "--batch-size",
            "8",
            "--strict",
            "--every-n-steps",
            "1",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert report["steps_recorded"] == 8
    assert plot.read_bytes()[:4] == b"\x89PNG"
    # lr 1e-9 is far too low: --strict turns the verdict into exit 1.
    assert report["verdict"] == "update_ratio_low"
    assert code == 1


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--data", "{f}/no_y.npz"], "no array named 'y'"),
        (
            ["--data", "{f}/short_y.npz"],
            "arrays 'x' and 'y' must hold the same number of examples",
        ),
        (["--data", "{f}/array.npy"], "holds one array"),
        (["--data", "{f}/junk.npz"], "is not a NumPy file"),
        (
            ["--data", "{f}/labels_7.npz"],
            "array 'y' must hold class labels, whole numbers from 0 to 2 "
            "for the model's 3 output units. Received: y[0]=7",
        ),
        (["--data", "{f}/labels_neg.npz"], "Received: y[0]=-1"),
        (["--data", "{f}/labels_float.npz"], "units. Received: y[0]=2.5"),
        (["--data", "{f}/objects.npz"], "array 'x' holds Python objects"),
        (["--data", "{f}/object_y.npz"], "holds Python objects"),
        (["--data", "{f}/string_y.npz"], "array 'y' holds <U1 values"),
        (["--data", "{f}/missing.npz"], "does not exist"),
        (["--data", "{f}/data.npz", "--epochs", "0"], "--epochs must be"),
        (
            [
                "--data",
                "{f}/data.npz",
                "--learning-rate",
                "-1",
                "--optimizer",
                "sgd",
            ],
            "--learning-rate must be",
        ),
        (
            ["--data", "{f}/data.npz", "--optimizer", "nosuch"],
            "is not a Keras optimizer",
        ),
        ([], "required: --data"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, capsys, extra, fragment):
    argv = ["health", str(files / "model.keras")]
    argv += [a.format(f=files) for a in extra]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert fragment in err


def test_uncompiled_model_needs_a_loss(files, capsys):
    code = main(
        [
            "health",
            str(files / "uncompiled.keras"),
            "--data",
            str(files / "data.npz"),
        ]
    )
    assert code == 2
    assert "--loss" in capsys.readouterr().err


def test_bad_model_file_exits_2(files, capsys):
    code = main(
        ["health", str(files / "data.npz"), "--data", str(files / "data.npz")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "model file" in err.lower() and "data.npz" in err


@pytest.mark.parametrize("name", ["junk.npz", "objects.npz", "object_y.npz"])
def test_unloadable_data_never_suggests_unpickling(files, capsys, name):
    code = main(
        ["health", str(files / "model.keras"), "--data", str(files / name)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "pickle" not in err.lower()


def test_whole_number_float_labels_are_accepted(files, capsys):
    argv = ["health", str(files / "model.keras"), "--epochs", "1"]
    code = main(argv + ["--data", str(files / "labels_whole.npz")])
    assert code == 0
    assert capsys.readouterr().out.startswith("Gradient health:")


def test_tensorflow_data_errors_are_one_line(files, capsys, monkeypatch):
    # Labels out of range that reach TensorFlow (here: with our check
    # turned off) are still reported in one line, exit 2.
    from kerasweights.cli import health_cmd

    monkeypatch.setattr(health_cmd, "_check_data", lambda model, data: None)
    argv = ["health", str(files / "model.keras"), "--epochs", "1"]
    code = main(argv + ["--data", str(files / "labels_7.npz")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "does not fit the model" in err
    assert "label value of 7" in err and "Label values" not in err
