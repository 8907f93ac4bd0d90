"""`.keras` and SavedModel round trips, in fresh processes."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import FEATURES
from conftest import IDS
from conftest import LAYERS
from conftest import seeded


def _non_default_kwargs(cls):
    kwargs = {"seed": 11}
    args = cls.cell_arguments()
    if "dropout" in args:
        kwargs["dropout"] = 0.1
    if "recurrent_dropout" in args:
        kwargs["recurrent_dropout"] = 0.2
    # Regularizers and constraints travel too (a constraint that leaves
    # these weights unchanged, so the outputs still compare).
    for role in ("kernel", "recurrent", "bias"):
        if f"{role}_regularizer" in args:
            kwargs[f"{role}_regularizer"] = keras.regularizers.L1L2(
                l1=0.01, l2=0.02
            )
        if f"{role}_constraint" in args:
            kwargs[f"{role}_constraint"] = keras.constraints.MaxNorm(
                100.0, axis=0
            )
    if cls.__module__.startswith("kerasweights."):
        kwargs["activity_regularizer"] = "l2"
    return kwargs


def _run_fresh(script):
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def keras_round_trip(tmp_path_factory):
    """Saves one model per plugin; reloads all in one fresh process."""
    folder = tmp_path_factory.mktemp("keras_files")
    x = np.random.default_rng(0).normal(size=(2, 5, FEATURES))
    x = x.astype("float32")
    np.save(folder / "x.npy", x)
    expected = {}
    configs = {}
    for name, cls in zip(IDS, LAYERS, strict=True):
        inputs = keras.Input((5, FEATURES))
        layer = seeded(
            cls,
            return_sequences=True,
            go_backwards=True,
            name=f"{name}_layer",
            **_non_default_kwargs(cls),
        )
        y = layer(inputs)
        y = keras.layers.Bidirectional(cls(3))(y)
        model = keras.Model(inputs, y)
        model.save(folder / f"{name}.keras")
        expected[name] = keras.ops.convert_to_numpy(model(x))
        configs[name] = layer.get_config()
    script = textwrap.dedent(
        f"""
        import json, pathlib, numpy as np
        import keras
        import kerasweights
        import sys
        assert "kerasweights.recurrent" in sys.modules, (
            "`import kerasweights` did not import the recurrent plugins, so "
            "a saved model cannot find them (case C04)"
        )
        folder = pathlib.Path({str(folder)!r})
        x = np.load(folder / "x.npy")
        result = {{}}
        for name in {IDS!r}:
            model = keras.saving.load_model(folder / f"{{name}}.keras")
            out = keras.ops.convert_to_numpy(model(x))
            np.save(folder / f"{{name}}.out.npy", out)
            layer = model.get_layer(f"{{name}}_layer")
            result[name] = layer.get_config()
        (folder / "configs.json").write_text(json.dumps(result))
        """
    )
    _run_fresh(script)
    loaded = json.loads((folder / "configs.json").read_text())
    return folder, expected, configs, loaded


@pytest.mark.parametrize("name", IDS)
def test_keras_file_round_trip_in_fresh_process(keras_round_trip, name):
    folder, expected, configs, loaded = keras_round_trip
    got = np.load(folder / f"{name}.out.npy")
    np.testing.assert_allclose(got, expected[name], atol=1e-6)
    assert np.abs(expected[name]).max() > 1e-3
    original = json.loads(json.dumps(configs[name]))
    assert loaded[name] == original


@pytest.fixture(scope="module")
def saved_model_outputs(tmp_path_factory):
    """One SavedModel holding every plugin, served by TensorFlow alone."""
    folder = tmp_path_factory.mktemp("saved_model")
    inputs = keras.Input((None, FEATURES))
    outputs = {}
    for name, cls in zip(IDS, LAYERS, strict=True):
        y = seeded(cls, return_sequences=True)(inputs)
        # A plain Dense head: Keras' TimeDistributed alone fails to serve a
        # length-1 sequence from a SavedModel with unknown time (see the
        # docs), which is not what this test is about.
        outputs[name] = keras.layers.Dense(2, name=f"{name}_head")(y)
    model = keras.Model(inputs, outputs)
    model.export(str(folder / "model"), format="tf_saved_model", verbose=False)
    rng = np.random.default_rng(1)
    batches = {
        length: rng.normal(size=(2, length, FEATURES)).astype("float32")
        for length in (1, 5, 9)
    }
    for length, x in batches.items():
        np.save(folder / f"x{length}.npy", x)
    script = textwrap.dedent(
        f"""
        import pathlib, sys, numpy as np
        import tensorflow as tf
        folder = pathlib.Path({str(folder)!r})
        served = tf.saved_model.load(str(folder / "model"))
        for length in (1, 5, 9):
            x = np.load(folder / f"x{{length}}.npy")
            out = served.serve(tf.constant(x))
            for name, value in out.items():
                np.save(folder / f"{{name}}.{{length}}.npy", value.numpy())
        assert "kerasweights" not in sys.modules
        """
    )
    _run_fresh(script)
    expected = {
        length: {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}
        for length, x in batches.items()
    }
    return folder, expected


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("length", [1, 5, 9])
def test_saved_model_serves_unknown_length(saved_model_outputs, name, length):
    # Case C14: the time length differs from the batch size (2).
    folder, expected = saved_model_outputs
    got = np.load(folder / f"{name}.{length}.npy")
    assert got.shape == (2, length, 2)
    np.testing.assert_allclose(got, expected[length][name], atol=1e-5)
