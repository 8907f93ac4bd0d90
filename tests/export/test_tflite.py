"""TFLite conversion that runs on the stock interpreter (case C15)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasweights
from kerasweights.datasets.digits import load_digits
from kerasweights.errors import ExportVerificationError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import OutputExistsError
from kerasweights.export import export_tflite
from kerasweights.export import tflite as tflite_module

LENGTHS = (1, 5, 8)


def _names():
    return [r.name for r in kerasweights.plugins("recurrent")]


def _recurrent_model():
    """Digits rows, unknown batch and time, one branch per plugin."""
    inputs = keras.Input((None, 8), name="rows")
    outputs = [
        keras.layers.Dense(10, name=f"digit_{r.name}")(r.obj(6)(inputs))
        for r in kerasweights.plugins("recurrent")
    ]
    return keras.Model(inputs, outputs)


def _interpreter(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The stock interpreter, with its default op resolver.
        interpreter = tf.lite.Interpreter(model_path=str(path))
    return interpreter.get_signature_runner("serving_default")


@pytest.fixture(scope="module")
def digits():
    return load_digits("sequence", seed=0).x_test


@pytest.fixture(scope="module")
def converted(tmp_path_factory, digits):
    model = _recurrent_model()
    path = tmp_path_factory.mktemp("tflite") / "rows.tflite"
    report = export_tflite(model, path, data=digits[:40])
    # Keras outputs of three digits cut to each length, for every branch.
    want = {}
    for length in LENGTHS:
        outputs = model(digits[:3, :length], training=False)
        for name, value in zip(model.output_names, outputs, strict=True):
            want[length, name] = np.asarray(value)
    return model, path, report, want


def test_the_batch_is_pinned_and_time_stays_dynamic(converted):
    _, path, report, _ = converted
    assert report["strategy"].startswith("batch pinned to 1")
    assert report["inputs"]["rows"]["shape"] == [1, None, 8]
    # The check fed real data at two time lengths.
    assert {c["rows"][1] for c in report["checked"]} == {8, 5}
    assert report["max_abs_diff"] < 1e-4
    assert path.read_bytes()[4:8] == b"TFL3"


@pytest.mark.parametrize("name", _names())
def test_each_recurrent_plugin_matches_keras_at_any_length(
    converted, digits, name
):
    _, path, _, want = converted
    runner = _interpreter(path)
    output = f"digit_{name}"
    for length in LENGTHS:
        for i, row in enumerate(digits[:3]):
            x = np.ascontiguousarray(row[None, :length])
            np.testing.assert_allclose(
                runner(rows=x)[output][0],
                want[length, output][i],
                rtol=1e-4,
                atol=1e-5,
            )


def test_pinned_time_unrolls_when_the_loop_does_not_convert(
    tmp_path, digits, monkeypatch
):
    record = kerasweights.plugins("recurrent")[0]
    inputs = keras.Input((None, 8), name="rows")
    model = keras.Model(
        inputs, keras.layers.Dense(10, name="digit")(record.obj(4)(inputs))
    )
    convert = tflite_module._convert
    seen = []

    def no_loops(candidate, signature, workdir):
        unrolled = all(
            layer.unroll for layer in tflite_module._loops(candidate)
        )
        seen.append(unrolled)
        if not unrolled:
            raise RuntimeError("error: tensor list needs a static shape")
        return convert(candidate, signature, workdir)

    monkeypatch.setattr(tflite_module, "_convert", no_loops)
    report = export_tflite(
        model, tmp_path / "m.tflite", batch_size=2, time_steps=8, data=digits
    )
    assert seen == [False, True]
    assert report["strategy"] == (
        "batch pinned to 2, unknown axes pinned to 8, recurrent loops unrolled"
    )
    runner = _interpreter(tmp_path / "m.tflite")
    x = np.ascontiguousarray(digits[10:12])
    np.testing.assert_allclose(
        runner(rows=x)["digit"], model(x), rtol=1e-4, atol=1e-5
    )


def test_without_time_steps_the_error_says_to_pin_them(tmp_path, monkeypatch):
    record = kerasweights.plugins("recurrent")[0]
    inputs = keras.Input((None, 3), name="x")
    model = keras.Model(inputs, record.obj(2)(inputs))

    def fail(*args):
        raise RuntimeError("error: tensor list needs a static shape")

    monkeypatch.setattr(tflite_module, "_convert", fail)
    with pytest.raises(ExportVerificationError, match="time_steps") as info:
        export_tflite(model, tmp_path / "m.tflite")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.tflite").exists()


def test_a_model_with_an_op_tflite_lacks_gets_one_clear_error(tmp_path):
    inputs = keras.Input((4,), name="x")
    det = keras.layers.Lambda(
        lambda x: keras.ops.expand_dims(
            keras.ops.linalg.det(keras.ops.reshape(x, (-1, 2, 2))), -1
        ),
        output_shape=(1,),
    )(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="y")(det))
    with pytest.raises(ExportVerificationError) as info:
        export_tflite(model, tmp_path / "m.tflite")
    message = str(info.value)
    assert "MatrixDeterminant" in message and "built-in" in message
    assert "\n" not in message
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"batch_size": 0}, InvalidArgumentError, "batch_size=0"),
        ({"batch_size": "2"}, InvalidTypeError, "batch_size='2'"),
        ({"batch_size": True}, InvalidTypeError, "batch_size=True"),
        ({"time_steps": -1}, InvalidArgumentError, "time_steps=-1"),
        ({"time_steps": 4}, InvalidArgumentError, "no.*unknown|none"),
    ],
)
def test_bad_options_are_refused_before_writing(tmp_path, kwargs, error, words):
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))
    with pytest.raises(error, match=words):
        export_tflite(model, tmp_path / "m.tflite", **kwargs)
    assert not (tmp_path / "m.tflite").exists()


def test_an_existing_file_is_never_replaced_silently(tmp_path):
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))
    path = tmp_path / "m.tflite"
    path.write_text("mine")
    with pytest.raises(OutputExistsError, match="overwrite"):
        export_tflite(model, path)
    assert path.read_text() == "mine"
    with pytest.raises(OutputExistsError, match="folder"):
        export_tflite(model, tmp_path)
    report = export_tflite(model, path, overwrite=True)
    assert report["path"] == str(path)
    assert path.read_bytes()[4:8] == b"TFL3"
