"""Every registered layer and initializer plugin exports and serves.

One SavedModel holds, over an input with unknown batch and time axes, a
branch per registered recurrent plugin (last state, and per-step outputs
through ``TimeDistributed(Dense)``: case C14) and per (initializer,
target) pair. It is served at time lengths 1, 5 and 9 in a process that imports
TensorFlow only, and with ``saved_model_cli run``; each plugin's output is
compared with the Keras model (the test is parameterised over the
registry, so a plugin that registers later is covered the day it does).
"""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.export import export_saved_model

FEATURES = 4
LENGTHS = (1, 5, 9)
# Batch sizes differ from every time length (case C14).
BATCHES = {1: 3, 5: 2, 9: 4}

_SERVE = r"""
import json, sys
import numpy as np
import tensorflow as tf
path, inputs, outputs = sys.argv[1:4]
serve = tf.saved_model.load(path).signatures["serving_default"]
_, specs = serve.structured_input_signature
data = np.load(inputs)
results = {}
for key in data.files:
    for name, value in serve(sequence=tf.constant(data[key])).items():
        results[key + "__" + name] = value.numpy()
np.savez(outputs, **results)
print(json.dumps({
    "inputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in specs.items()},
    "outputs": sorted(serve.structured_outputs),
    "kerasweights": [m for m in sys.modules if m.startswith("kerasweights")],
}))
"""


def _recurrent_records():
    return kerasweights.plugins("recurrent")


def _initializer_cases():
    cases = []
    for record in kerasweights.plugins("initializer"):
        targets = getattr(record.obj, "plugin_targets", ("dense_kernel",))
        cases.extend((record, target) for target in targets)
    return cases


def _initialized_layer(record, target):
    init = record.obj()
    if target == "dense_kernel":
        return keras.layers.Dense(3, kernel_initializer=init)
    if target == "conv_kernel":
        return keras.layers.Conv1D(
            3, 3, padding="same", kernel_initializer=init
        )
    if target == "recurrent_kernel":
        return keras.layers.LSTM(3, recurrent_initializer=init)
    if target == "bias":
        return keras.layers.LSTM(
            3, unit_forget_bias=False, bias_initializer=init
        )
    return None


def _branch_names():
    names = [f"rnn_{r.name}" for r in _recurrent_records()]
    names += [f"seq_{r.name}" for r in _recurrent_records()]
    names += [f"init_{r.name}_{t}" for r, t in _initializer_cases()]
    return names


def _build():
    inputs = keras.Input((None, FEATURES), name="sequence")
    outputs = []
    for record in _recurrent_records():
        x = record.obj(3)(inputs)
        outputs.append(keras.layers.Dense(2, name=f"rnn_{record.name}")(x))
    # Per-step outputs through TimeDistributed over the unknown time axis
    # (case C14), for every plugin.
    for record in _recurrent_records():
        x = record.obj(3, return_sequences=True)(inputs)
        dense = keras.layers.Dense(2)
        name = f"seq_{record.name}"
        outputs.append(keras.layers.TimeDistributed(dense, name=name)(x))
    for record, target in _initializer_cases():
        layer = _initialized_layer(record, target)
        x = layer(inputs)
        if len(x.shape) == 3:
            x = keras.layers.GlobalAveragePooling1D()(x)
        name = f"init_{record.name}_{target}"
        outputs.append(keras.layers.Dense(2, name=name)(x))
    return keras.Model(inputs, outputs)


def _batches():
    rng = np.random.default_rng(7)
    return {
        f"len{t}": rng.standard_normal((BATCHES[t], t, FEATURES)).astype(
            "float32"
        )
        for t in LENGTHS
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    model = _build()
    data = np.random.default_rng(3).standard_normal((20, 7, FEATURES))
    export_saved_model(model, tmp / "sm", data=data.astype("float32"))
    batches = _batches()
    np.savez(tmp / "in.npz", **batches)
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _SERVE,
            str(tmp / "sm"),
            str(tmp / "in.npz"),
            str(tmp / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["kerasweights"] == []
    with np.load(tmp / "out.npz") as out:
        got = {k: out[k] for k in out.files}
    want = {}
    for key, x in batches.items():
        for name, value in zip(
            model.output_names, model(x, training=False), strict=True
        ):
            want[f"{key}__{name}"] = np.asarray(value)
    return {"dir": tmp / "sm", "report": report, "got": got, "want": want}


def test_the_signature_keeps_batch_and_time_unknown(served):
    report = served["report"]
    assert report["inputs"] == {"sequence": ["float32", [None, None, FEATURES]]}
    assert report["outputs"] == sorted(_branch_names())


@pytest.mark.parametrize("name", _branch_names())
def test_each_plugin_serves_at_lengths_1_5_9(served, name):
    for t in LENGTHS:
        key = f"len{t}__{name}"
        shape = (
            (BATCHES[t], t, 2) if name.startswith("seq_") else (BATCHES[t], 2)
        )
        assert served["got"][key].shape == shape
        np.testing.assert_allclose(
            served["got"][key], served["want"][key], rtol=1e-4, atol=1e-5
        )


def _saved_model_cli():
    found = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return found if os.path.exists(found) else shutil.which("saved_model_cli")


@pytest.mark.skipif(
    _saved_model_cli() is None, reason="saved_model_cli is not installed"
)
def test_saved_model_cli_runs_the_export(served, tmp_path):
    x = _batches()["len5"]
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [
            _saved_model_cli(),
            "run",
            "--dir",
            str(served["dir"]),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"sequence={tmp_path / 'x.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in _branch_names():
        got = np.load(tmp_path / "out" / f"{name}.npy")
        np.testing.assert_allclose(
            got, served["want"][f"len5__{name}"], rtol=1e-4, atol=1e-5
        )
