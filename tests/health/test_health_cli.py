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
        (["--data", "{f}/short_y.npz"], "same, non-zero first axis"),
        (["--data", "{f}/array.npy"], "holds one array"),
        (["--data", "{f}/junk.npz"], "is not a NumPy .npz file"),
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
