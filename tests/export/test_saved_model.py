"""SavedModel export: named, typed signatures, checked in a fresh process."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.errors import ExportVerificationError
from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.export import export_saved_model
from kerasweights.export import model_signature
from kerasweights.export import verify_saved_model
from kerasweights.export.verification import check_inputs

# Serves a SavedModel with TensorFlow alone; written here, independent of
# the package's own child script.
_SERVE = r"""
import json, sys
import numpy as np
import tensorflow as tf
path, inputs = sys.argv[1], np.load(sys.argv[2])
serve = tf.saved_model.load(path).signatures["serving_default"]
_, specs = serve.structured_input_signature
out = serve(**{k: tf.constant(inputs[k]) for k in inputs.files})
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
print(json.dumps({
    "inputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in specs.items()},
    "outputs": sorted(serve.structured_outputs),
    "kerasweights": any(m.startswith("kerasweights") for m in sys.modules),
}))
"""


def serve_in_fresh_process(directory, inputs, tmp_path):
    np.savez(tmp_path / "in.npz", **inputs)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SERVE,
            str(directory),
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    with np.load(tmp_path / "out.npz") as out:
        return report, {k: out[k] for k in out.files}


def test_int32_named_input_and_named_output_c05(tmp_path):
    inputs = keras.Input((6,), name="token_ids", dtype="int32")
    x = keras.layers.Embedding(20, 4)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(3, name="scores")(x)
    model = keras.Model(inputs, outputs)

    result = export_saved_model(model, tmp_path / "sm")
    assert result["verification"]["inputs"] == {
        "token_ids": {"dtype": "int32", "shape": [None, 6]}
    }
    assert list(result["verification"]["outputs"]) == ["scores"]

    assert result["verification"]["cases"] == [{"token_ids": [16, 6]}]


def test_dict_inputs_and_two_outputs_c06(tmp_path):
    features = keras.Input((4,), name="features")
    group = keras.Input((1,), name="group")
    x = keras.layers.Concatenate()([features, group])
    label = keras.layers.Dense(2, name="label")(x)
    score = keras.layers.Dense(1, name="score")(x)
    model = keras.Model({"features": features, "group": group}, [label, score])
    rng = np.random.default_rng(1)
    data = {
        "features": rng.standard_normal((9, 4)).astype("float32"),
        "group": rng.integers(0, 2, (9, 1)).astype("float32"),
    }
    result = export_saved_model(model, tmp_path / "sm", data=data)
    verification = result["verification"]
    assert set(verification["inputs"]) == {"features", "group"}
    assert sorted(verification["outputs"]) == ["label", "score"]
    assert verification["cases"] == [{"features": [7, 4], "group": [7, 1]}]
    with open(tmp_path / "sm" / "kerasweights-export.json") as f:
        assert json.load(f)["signature"]["outputs"] == ["label", "score"]


def test_verification_catches_a_model_that_differs(tmp_path):
    def build():
        inputs = keras.Input((5,), name="x")
        return keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))

    exported, other = build(), build()
    export_saved_model(exported, tmp_path / "sm", verify=False)
    with pytest.raises(ExportVerificationError, match="'y'.*differs"):
        verify_saved_model(other, tmp_path / "sm")


def test_time_distributed_over_unknown_time_serves_right_c14(tmp_path):
    # Every registered recurrent plugin is exported the same way in
    # test_registry_export.py; this is the field report's model.
    inputs = keras.Input((None, 3), name="sequence")
    x = keras.layers.GRU(4, return_sequences=True)(inputs)
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(2), name="y")(x)
    model = keras.Model(inputs, outputs)
    result = export_saved_model(model, tmp_path / "sm")
    for case in result["verification"]["cases"]:
        batch, steps, _ = case["sequence"]
        assert batch != steps
    rng = np.random.default_rng(3)
    feeds = {
        f"s{i}": rng.random(shape).astype("float32")
        for i, shape in enumerate([(2, 5, 3), (3, 7, 3), (4, 2, 3)])
    }
    script = _SERVE.replace(
        "out = serve(**{k: tf.constant(inputs[k]) for k in inputs.files})",
        "out = {k: serve(sequence=tf.constant(inputs[k]))['y'] "
        "for k in inputs.files}",
    )
    np.savez(tmp_path / "in.npz", **feeds)
    argv = [str(tmp_path / n) for n in ("sm", "in.npz", "out.npz")]
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(tmp_path / "out.npz") as served:
        for key, x in feeds.items():
            assert served[key].shape == (*x.shape[:2], 2)
            np.testing.assert_allclose(
                served[key], model(x), rtol=1e-5, atol=1e-6
            )


@pytest.mark.parametrize(
    "shape",
    [[None, None, 8], [None, 8, 8], [None, 16, 3], [None, 5, None, 2]],
)
def test_check_batches_never_confuse_batch_and_time(shape):
    specs = {"x": {"dtype": "float32", "shape": shape}}
    cases = check_inputs(specs)
    first = cases[0]["x"]
    assert first.shape[0] not in first.shape[1:]
    if None in shape[1:]:
        second = cases[1]["x"]
        axes = [i for i, d in enumerate(shape) if d is None and i > 0]
        for axis in axes:
            assert second.shape[axis] != first.shape[axis]
            assert second.shape[axis] != second.shape[0]
    else:
        assert len(cases) == 1


def test_model_signature_refuses_a_non_model():
    with pytest.raises(InvalidTypeError, match="keras.Model"):
        model_signature(keras.layers.Dense(2))


def test_the_export_names_a_sequential_models_input_and_output(tmp_path):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name="probs")]
    )
    signature = model_signature(model)
    assert list(signature["inputs"]) == [model.inputs[0].name]
    assert signature["outputs"] == ["probs"]
    assert not os.path.exists(tmp_path / "sm")


def _files(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _small_model():
    inputs = keras.Input((None, 3), name="steps")
    x = keras.layers.GlobalAveragePooling1D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(x))


def test_bad_check_data_never_touches_a_previous_export(tmp_path):
    model = _small_model()
    out = tmp_path / "sm"
    export_saved_model(model, out, verify=False)
    before = _files(out)
    nan = np.ones((6, 4, 3), "float32")
    nan[2, 1, 0] = np.nan
    bad = [
        (np.ones((6, 4), "float32"), r"\(-1, -1, 3\)"),
        (np.ones((6, 4, 2), "float32"), r"\(-1, -1, 3\)"),
        (nan, "1 NaN"),
        (np.full((6, 4, 3), np.inf, "float32"), "NaN or infinite"),
        (np.full((6, 4, 3), "a"), "expected numbers"),
        (np.ones((0, 4, 3), "float32"), "no examples"),
        ({"other": np.ones((6, 4, 3))}, "keys"),
    ]
    for data, words in bad:
        with pytest.raises(InputDataError, match=words):
            export_saved_model(model, out, overwrite=True, data=data)
        assert _files(out) == before
    assert sorted(os.listdir(tmp_path)) == ["sm"]


def test_a_failed_verification_keeps_the_previous_export(tmp_path, monkeypatch):
    from kerasweights.export import verification

    model = _small_model()
    out = tmp_path / "parent" / "sm"
    export_saved_model(model, out, verify=False)
    before = _files(out)

    def fail(model, directory, data=None):
        raise ExportVerificationError(f"bad export in {directory!r}")

    monkeypatch.setattr(verification, "verify_saved_model", fail)
    with pytest.raises(ExportVerificationError) as info:
        export_saved_model(model, out, overwrite=True)
    assert str(out) in str(info.value) and "staging" not in str(info.value)
    assert _files(out) == before
    assert sorted(os.listdir(tmp_path / "parent")) == ["sm"]
    # Nothing is left behind when the folder is new, parents included.
    with pytest.raises(ExportVerificationError):
        export_saved_model(model, tmp_path / "new" / "deep" / "sm")
    assert sorted(os.listdir(tmp_path)) == ["parent"]


def test_an_export_records_its_files_and_can_be_replaced(tmp_path):
    model = _small_model()
    out = tmp_path / "sm"
    export_saved_model(model, out, verify=False)
    manifest = kerasweights.export.read_manifest(out)
    assert set(manifest["files"]) == set(_files(out)) - {
        kerasweights.export.MANIFEST_NAME
    }
    export_saved_model(model, out, overwrite=True, verify=False)
    assert sorted(os.listdir(tmp_path)) == ["sm"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_an_output_folder_that_cannot_be_made_is_named_as_given():
    with pytest.raises(InvalidArgumentError) as info:
        export_saved_model(_small_model(), "/proc/kerasweights-out")
    message = str(info.value)
    assert "'/proc/kerasweights-out'" in message
    assert "staging" not in message


def test_write_errors_name_the_users_folder_not_the_staging_one(
    tmp_path, monkeypatch
):
    import errno

    from kerasweights.export import saved_model

    def full_disk(model, directory, signature):
        path = os.path.join(directory, "variables", "variables.index")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(saved_model, "_write", full_disk)
    out = tmp_path / "sm"
    with pytest.raises(OSError) as info:
        export_saved_model(_small_model(), out, verify=False)
    assert info.value.filename == str(out / "variables" / "variables.index")
    assert "staging" not in str(info.value)
    assert os.listdir(tmp_path) == []

    def no_staging(*args, **kwargs):
        raise PermissionError(
            errno.EACCES, "Permission denied", str(tmp_path / ".kw-tmp")
        )

    monkeypatch.setattr(saved_model.tempfile, "mkdtemp", no_staging)
    with pytest.raises(InvalidArgumentError) as info:
        export_saved_model(_small_model(), tmp_path / "a" / "sm")
    assert repr(str(tmp_path / "a" / "sm")) in str(info.value)
    assert os.listdir(tmp_path) == []


def test_python_refusals_name_overwrite_true(tmp_path):
    from kerasweights.errors import OutputExistsError

    out = tmp_path / "sm"
    export_saved_model(_small_model(), out, verify=False)
    with pytest.raises(OutputExistsError) as info:
        export_saved_model(_small_model(), out, verify=False)
    assert "pass overwrite=True" in str(info.value)
    assert "--overwrite" not in str(info.value)
