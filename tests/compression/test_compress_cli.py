"""``kerasweights compress``: one real run, and bad inputs exit 2."""

import json
import os

import keras
import numpy as np
import pytest

from kerasweights.cli import main


@pytest.fixture(scope="module")
def digits_model_file(tmp_path_factory):
    from kerasweights.datasets.digits import load_digits
    from kerasweights.initializers import DeltaOrthogonal

    data = load_digits("image", seed=0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(
        8, 3, activation="relu", kernel_initializer=DeltaOrthogonal()
    )(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    # Trained well past chance (about 0.95, not 0.80 after 3 epochs), so
    # compression's accuracy checks below do not hinge on thread timing.
    model.fit(data.x_train, data.y_train, epochs=10, verbose=0)
    path = tmp_path_factory.mktemp("model") / "digits.keras"
    model.save(path)
    return str(path)


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("sparsity", ["1.5", "abc", "0", "1", "-0.2", "nan"])
def test_unknown_sparsity_exits_2(
    sparsity, digits_model_file, tmp_path, capsys
):
    code = main(
        [
            "compress",
            digits_model_file,
            str(tmp_path / "o"),
            "--prune",
            sparsity,
        ]
    )
    assert code == 2
    err = _error(capsys)
    assert repr(sparsity) in err and "between 0 and 1" in err
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_keras_exits_2(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    code = main(["compress", str(fake), str(tmp_path / "o"), "--prune", "0.5"])
    assert code == 2
    assert "is not a .keras archive" in _error(capsys)
    assert not (tmp_path / "o").exists()


def test_an_output_folder_in_use_exits_2(digits_model_file, tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    code = main(["compress", digits_model_file, str(used), "--prune", "0.5"])
    assert code == 2
    assert "did not write ('notes.txt')" in _error(capsys)
    assert os.listdir(used) == ["notes.txt"]


def test_nothing_to_do_and_bad_cluster_exit_2(
    digits_model_file, tmp_path, capsys
):
    assert main(["compress", digits_model_file, str(tmp_path / "o")]) == 2
    assert "Nothing to do" in _error(capsys)
    code = main(
        ["compress", digits_model_file, str(tmp_path / "o"), "--cluster", "1"]
    )
    assert code == 2
    assert "2 to 256" in _error(capsys)


def test_a_model_digits_do_not_fit_needs_data(tmp_path, capsys):
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "five.keras"
    model.save(path)
    code = main(["compress", str(path), str(tmp_path / "o"), "--prune", "0.5"])
    assert code == 2
    err = _error(capsys)
    assert "(-1, 5)" in err and "--data" in err


def test_compress_writes_a_verified_smaller_model(
    digits_model_file, tmp_path, capsys
):
    out = tmp_path / "compressed"
    args = [
        "compress",
        digits_model_file,
        str(out),
        "--prune",
        "0.5",
        "--quantize",
        "int8",
        "--cluster",
        "16",
        "--epochs",
        "2",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for label in ("parameters", "TFLite file, gzipped", "accuracy", "latency"):
        assert label in printed
    assert "sparsity reached per kernel: 50.0%" in printed

    report = json.loads((out / "compression-report.json").read_text())
    assert report["data"] == "digits"
    assert report["settings"]["prune"] == 0.5
    before, after = report["before"], report["after"]
    assert after["parameters"]["nonzero"] < 0.6 * before["parameters"]["total"]
    assert after["size"]["tflite_gzip"] < before["size"]["tflite_gzip"] / 3
    assert after["tflite_accuracy"] > before["accuracy"] - 0.05
    assert report["saved_model"]["verification"]["max_abs_diff"] < 1e-4
    assert report["tflite"]["same_class"] >= 0.98

    # Served with TensorFlow alone, the SavedModel gives the compressed
    # model's predictions.
    import tensorflow as tf

    from kerasweights.datasets.digits import load_digits

    x = load_digits("image", seed=0).x_test[:20]
    serve = tf.saved_model.load(str(out / "saved_model"))
    served = serve.signatures["serving_default"](pixels=tf.constant(x))
    compressed = keras.saving.load_model(out / "model.keras")
    np.testing.assert_allclose(
        served["digit"].numpy(), compressed.predict(x, verbose=0), atol=1e-5
    )

    # A second run needs --overwrite, and replaces only what it wrote.
    assert main(args) == 2
    refusal = _error(capsys)
    assert "--overwrite" in refusal and "overwrite=True" not in refusal
    (out / "saved_model" / "extra.txt").write_text("mine")
    assert main([*args, "--overwrite"]) == 2
    assert "extra.txt" in _error(capsys)


def test_data_files_without_the_arrays_exit_2(
    digits_model_file, tmp_path, capsys
):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, features=np.zeros((4, 8, 8, 1)))
    base = ["compress", digits_model_file, str(tmp_path / "o"), "--prune"]
    assert main([*base, "0.5", "--data", str(wrong)]) == 2
    err = _error(capsys)
    assert err.endswith(
        "has no array named 'x_train'; kerasweights compress reads arrays "
        "'x_train', 'y_train', 'x_test' and 'y_test' or 'x' and 'y'. "
        "Received: ['features']"
    )
    assert main([*base, "0.5", "--data", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in _error(capsys)
    assert not (tmp_path / "o").exists()


def test_quiet_prints_nothing_on_success(digits_model_file, tmp_path, capfd):
    # capfd, not capsys: TFLite's delegate line is written by C++ straight
    # to file descriptor 2. Pytest records warnings instead of printing
    # them, so they are collected here too.
    import warnings

    out = tmp_path / "quiet"
    args = ["compress", digits_model_file, str(out), "--prune", "0.5"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main([*args, "--epochs", "1", "-q"]) == 0
    printed = capfd.readouterr()
    assert printed.out == ""
    assert printed.err == ""
    interpreter = [w for w in seen if "tf.lite.Interpreter" in str(w.message)]
    assert interpreter == []
    assert (out / "compression-report.json").is_file()


def test_quiet_in_a_fresh_process(digits_model_file, tmp_path):
    # TFLite announces its CPU delegate once per process: only a fresh
    # process shows that the line is dropped, as a user sees it.
    import subprocess
    import sys

    out = tmp_path / "quiet"
    run = subprocess.run(
        [sys.executable, "-m", "kerasweights.cli", "compress"]
        + [digits_model_file, str(out), "--prune", "0.5", "--epochs", "1"]
        + ["-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert run.stderr == ""


def test_an_int8_file_that_did_not_shrink_is_explained(capsys):
    from kerasweights.cli.compress_cmd import _print_report

    def side(tflite):
        return {
            "parameters": {"total": 10, "nonzero": 10},
            "size": {"tflite": tflite},
            "accuracy": 0.5,
            "latency_ms": 1.0,
        }

    report = {
        "settings": {"metric": "accuracy", "quantize": "int8"},
        "before": side(22_600),
        "after": side(23_100),
    }
    _print_report(report)
    assert "smaller ones stay float32" in capsys.readouterr().out
    report["after"] = side(15_000)
    _print_report(report)
    assert "note:" not in capsys.readouterr().out
    report["settings"]["quantize"] = None
    report["after"] = side(23_100)
    _print_report(report)
    assert "note:" not in capsys.readouterr().out
