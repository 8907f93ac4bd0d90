"""Bad labels, bad data files, divergence and several inputs: one line,
before any training (breaker report B2, B3, B5)."""

import keras
import numpy as np
import pytest
from conftest import dense_model

from kerasweights.cli import main
from kerasweights.compression import FineTuningDivergedError
from kerasweights.compression import compress
from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import KerasWeightsWarning


def _x(n=40, features=12):
    return np.random.default_rng(1).normal(size=(n, features)).astype("f4")


def _no_fit(monkeypatch):
    """Make any fine-tuning fail loudly: the checks must come first."""

    def fit(*args, **kwargs):
        raise AssertionError("fine-tuning ran before the data were checked")

    monkeypatch.setattr(keras.Model, "fit", fit)


@pytest.mark.parametrize(
    "y, expected",
    [
        (None, "`y_train` is None"),
        (np.array(["a", "b"] * 20), "holds <U1 values"),
        (np.r_[np.zeros(39), np.nan], "NaN or infinite"),
        (np.r_[np.zeros(39, "i8"), 102], "class index 102"),
        (np.r_[np.zeros(39, "i8"), -5], "class index -5"),
        (np.zeros((40, 2, 2)), "has shape (40, 2, 2)"),
        (np.zeros(41, "i8"), "41 labels for 40 examples"),
        (np.zeros(40, "c8"), "complex64"),
    ],
)
def test_bad_labels_are_refused_before_training(monkeypatch, y, expected):
    _no_fit(monkeypatch)
    with pytest.raises(InputDataError, match="y_train") as info:
        compress(dense_model(), _x(), y, prune=0.5, measure=False)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_string_or_complex_inputs_are_refused(monkeypatch):
    _no_fit(monkeypatch)
    y = np.zeros(40, "i8")
    for x in (_x().astype(str), _x().astype("c8")):
        with pytest.raises(InputDataError, match="x_train"):
            compress(dense_model(), x, y, prune=0.5, measure=False)


def test_a_nested_list_of_examples_is_one_input(blobs):
    x, y = blobs
    result = compress(
        dense_model(), x.tolist(), y.tolist(), prune=0.5, measure=False
    )
    assert min(result.report["sparsity"].values()) >= 0.5


@pytest.mark.parametrize("rate", [float("nan"), -1.0, 0, float("inf"), "1"])
def test_learning_rate_is_checked(monkeypatch, rate):
    _no_fit(monkeypatch)
    with pytest.raises(InvalidArgumentError, match="learning_rate"):
        compress(
            dense_model(),
            _x(),
            np.zeros(40, "i8"),
            prune=0.5,
            learning_rate=rate,
            measure=False,
        )


def test_one_hot_labels_train_a_softmax_classifier(blobs):
    x, y = blobs
    result = compress(
        dense_model(),
        x,
        np.eye(3, dtype="f4")[y],
        prune=np.float32(0.5),
        cluster=np.int64(4),
        epochs=1,
        measure=False,
    )
    assert result.report["settings"]["metric"] == "accuracy"
    assert result.report["settings"]["cluster"] == 4
    assert min(result.report["sparsity"].values()) >= 0.5


def test_diverged_fine_tuning_is_named_before_the_sparsity_check():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,))
    hidden = keras.layers.Dense(8, name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    x = _x() * 1e20
    y = np.random.default_rng(0).normal(size=40).astype("f4") * 1e20
    with pytest.raises(FineTuningDivergedError, match="diverged") as info:
        compress(model, x, y, prune=0.5, epochs=1, batch_size=8, measure=False)
    assert "non-finite weights in" in str(info.value)
    assert "learning rate" in str(info.value)


def test_a_fully_zero_kernel_warns(blobs):
    x, y = blobs
    with pytest.warns(KerasWeightsWarning, match="fully zero"):
        compress(dense_model(), x, y, prune=0.999, epochs=1, measure=False)


def test_several_inputs_are_refused_before_training(monkeypatch):
    _no_fit(monkeypatch)
    a, b = keras.Input((4,)), keras.Input((4,))
    out = keras.layers.Dense(3, activation="softmax")(
        keras.layers.Concatenate()([a, b])
    )
    model = keras.Model([a, b], out)
    x = np.zeros((40, 4), "f4")
    with pytest.raises(InvalidArgumentError, match="2 inputs"):
        compress(model, [x, x], np.zeros(40, "i8"), prune=0.5, measure=False)


def test_bad_data_files_exit_2_naming_the_file(tmp_path, capsys):
    model = dense_model(features=4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = _x(features=4)
    files = {
        "obj.npz": dict(x=np.array([object()] * 40), y=np.zeros(40)),
        "str.npz": dict(x=x, y=np.array(["a"] * 40)),
        "big.npz": dict(x=x, y=np.full(40, 102)),
    }
    plain = tmp_path / "plain.npz"
    plain.write_bytes(b"not numpy at all")
    for name, arrays in files.items():
        np.savez(tmp_path / name, **arrays)
    for name in [*files, "plain.npz"]:
        data = str(tmp_path / name)
        code = main(
            [
                "compress",
                path,
                str(tmp_path / "o"),
                "--prune",
                "0.5",
                "--data",
                data,
            ]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2, err
        assert err.startswith("error: --data file") and name in err, err
        assert "\n" not in err and "allow_pickle" not in err, err
    assert not (tmp_path / "o").exists()


def test_the_cli_says_what_it_verified_without_a_tflite_file(
    tmp_path, capsys, monkeypatch
):
    import kerasweights.compression as compression

    model = dense_model(features=4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    data = tmp_path / "d.npz"
    np.savez(data, x=_x(features=4), y=np.zeros(40, "i8"))
    stats = {
        "parameters": {"total": 1, "nonzero": 1},
        "size": {},
        "accuracy": 1.0,
        "latency_ms": 1.0,
    }
    report = {
        "settings": {"metric": "accuracy", "prune": 0.5},
        "before": stats,
        "after": dict(stats, size={}),
        "tflite_error": "no TFLite for this one",
    }
    result = compression.CompressionResult(model, None, report)
    monkeypatch.setattr(compression, "compress", lambda *a, **k: result)
    monkeypatch.setattr(
        compression,
        "write_compressed",
        lambda result, out, *a, **k: dict(result.report, directory=out),
    )
    args = ["compress", path, str(tmp_path / "o"), "--prune", "0.5"]
    assert main([*args, "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "verified: SavedModel served in a fresh process" in out
    assert "TFLite file served" not in out
    assert "no model.tflite written: no TFLite for this one" in out
