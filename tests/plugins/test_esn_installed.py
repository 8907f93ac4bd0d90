"""kerasweights-esn installed with pip, found by discovery alone.

Nothing in kerasweights names the ESN: these tests install the plugin's
distribution into a temporary folder and check, in fresh interpreters that
have that folder on their path, that the CLI lists it, the registry finds
it, the tuner's search space offers it, and a ``.keras`` file that uses it
loads in a process that imports only ``kerasweights`` (case C04).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# Process A: runs the example (trains an ESN readout on digits), saves the
# model and a probe of its predictions, and builds and fits a model through
# the tuner's search space with the ESN chosen as the recurrent layer.
SAVE_AND_TUNE = r"""
import json, runpy, sys
import numpy as np
import keras

out = sys.argv[1]
example = runpy.run_path("examples/esn_digits.py", run_name="esn_digits")
result = example["main"](
    ["--units", "48", "--epochs", "2", "--output", out + "/esn.keras"]
)
probe = result["x_test"][:64]
np.save(out + "/probe.npy", probe)
np.save(out + "/expected.npy", result["model"].predict(probe, verbose=0))

import keras_tuner
from kerasweights.tuning.search import build_hypermodel
from kerasweights.tuning.space import SearchSpace

space = SearchSpace(models=["recurrent"], recurrent_layers=(2,), units=(16,))
hp = keras_tuner.HyperParameters()
hp.Fixed("model", "recurrent")
hp.Fixed("cell", "esn")
hypermodel = build_hypermodel(space, limit=240, epochs=1)
model = hypermodel.build(hp)
split = hypermodel.data["recurrent"]
history = model.fit(
    split.x_train, split.y_train, epochs=1, verbose=0,
    validation_data=(split.x_val, split.y_val),
)
try:
    hypermodel.fit(hp, model)
    tuner_fit_error = None
except Exception as exc:
    tuner_fit_error = f"{type(exc).__name__}: {exc}"
esn_layers = [l for l in model.layers if type(l).__name__ == "ESN"]
print(json.dumps({
    "example_accuracy": result["esn_test_accuracy"],
    "cell_names": space.cell_names,
    "cell_sources": {c.name: c.source for c in space.cells},
    "esn_hyperparameters": {
        k: v for k, v in hp.values.items() if "esn_" in k
    },
    "tuned_radius": [l.spectral_radius for l in esn_layers],
    "tuned_leaky": [l.leaky for l in esn_layers],
    "esn_modules": [type(l).__module__ for l in esn_layers],
    "esn_trainable": [len(l.trainable_weights) for l in esn_layers],
    "val_accuracy": history.history["val_accuracy"],
    "tuner_fit_error": tuner_fit_error,
}))
"""

# Process B (C04): imports only kerasweights and keras, then loads the file.
LOAD_FRESH = r"""
import json, sys
import numpy as np
import keras
import kerasweights

out = sys.argv[1]
imported_by_kerasweights = "kerasweights_esn" in sys.modules
model = keras.saving.load_model(out + "/esn.keras")
got = model.predict(np.load(out + "/probe.npy"), verbose=0)
expected = np.load(out + "/expected.npy")

lookups = {}
for name in ("ESN", "esn", "Esn", "kerasweights_esn>ESN"):
    record = kerasweights.get_plugin(name)
    lookups[name] = [record.kind, record.name, record.registered_name,
                     record.distribution, record.obj.__name__]
recurrent = [r.name for r in kerasweights.plugins(kind="recurrent")]
print(json.dumps({
    "imported_by_kerasweights": imported_by_kerasweights,
    "layer_classes": [type(l).__name__ for l in model.layers],
    "max_abs_diff": float(np.max(np.abs(got - expected))),
    "lookups": lookups,
    "recurrent": recurrent,
}))
"""


@pytest.fixture(scope="module")
def saved(esn_site, run_checks, tmp_path_factory):
    out = tmp_path_factory.mktemp("esn_saved")
    code = SAVE_AND_TUNE.replace("sys.argv[1]", repr(str(out)))
    result, _ = run_checks(code, [esn_site])
    return out, result


def _env_with(site):
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return env


def test_cli_lists_the_installed_plugin(esn_site):
    completed = subprocess.run(
        [sys.executable, "-m", "kerasweights.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=_env_with(esn_site),
    )
    assert completed.returncode == 0, completed.stderr
    records = json.loads(completed.stdout)
    esn = [r for r in records if r["name"] == "esn"]

    assert len(esn) == 1, records
    assert esn[0]["kind"] == "recurrent"
    assert esn[0]["registered_name"] == "kerasweights_esn>ESN"
    assert esn[0]["distribution"] == "kerasweights-esn"
    assert esn[0]["summary"].startswith("Echo state network layer")
    assert esn[0]["entry_point"] == "esn = kerasweights_esn:ESN"
    assert "PluginLoadWarning" not in completed.stderr


def test_saved_model_loads_in_a_fresh_process_after_import_kerasweights(
    saved, esn_site, run_checks
):
    out, _ = saved
    code = LOAD_FRESH.replace("sys.argv[1]", repr(str(out)))

    result, completed = run_checks(code, [esn_site])

    assert result["imported_by_kerasweights"] is True
    assert "ESN" in result["layer_classes"]
    assert result["max_abs_diff"] <= 1e-6
    for name, record in result["lookups"].items():
        assert record == [
            "recurrent",
            "esn",
            "kerasweights_esn>ESN",
            "kerasweights-esn",
            "ESN",
        ], name
    assert "esn" in result["recurrent"]
    assert "PluginLoadWarning" not in completed.stderr


def test_example_trains_a_readout_better_than_chance(saved):
    _, result = saved
    # 10 balanced classes: chance is 0.1; two epochs of a 48-unit reservoir
    # readout must already be far above it.
    assert result["example_accuracy"] > 0.5


def test_tuner_search_space_offers_the_esn_with_its_own_arguments(saved):
    _, result = saved

    assert "esn" in result["cell_names"]
    assert result["cell_sources"]["esn"] == "plugin"
    names = set(result["esn_hyperparameters"])
    assert any(n.endswith("esn_spectral_radius") for n in names), names
    assert any(n.endswith("esn_leaky") for n in names), names
    radius = [
        v for k, v in result["esn_hyperparameters"].items() if "radius" in k
    ]
    leaky = [
        v for k, v in result["esn_hyperparameters"].items() if "leaky" in k
    ]
    # Two stacked ESN layers, both built from the trial's drawn values.
    assert result["tuned_radius"] == radius * 2
    assert result["tuned_leaky"] == leaky * 2
    assert result["esn_modules"] == ["kerasweights_esn.reservoir"] * 2
    assert result["esn_trainable"] == [0, 0]
    assert len(result["val_accuracy"]) == 1


def test_tuner_fit_with_gradient_health_runs_an_esn_trial(saved):
    _, result = saved
    # The trial's fit runs the registry's gradient-health callback, which
    # must leave alone the read-only `activation` property of RNN layers.
    error = result["tuner_fit_error"]
    assert error is None


# Process C (C04, second half): the plugin is not installed.
LOAD_WITHOUT_PLUGIN = r"""
import importlib.util, json, sys
import kerasweights
from kerasweights.errors import ModelFileError
from kerasweights.saving import load_model

installed = importlib.util.find_spec("kerasweights_esn") is not None
try:
    load_model(sys.argv[1] + "/esn.keras")
    error = None
except ModelFileError as exc:
    error = str(exc)
print(json.dumps({"installed": installed, "error": error}))
"""


def test_without_the_plugin_the_error_names_what_to_install(saved, run_checks):
    out, _ = saved
    code = LOAD_WITHOUT_PLUGIN.replace("sys.argv[1]", repr(str(out)))

    result, _ = run_checks(code, [])

    if result["installed"]:
        pytest.skip("kerasweights-esn is installed in this environment")
    assert "'kerasweights_esn>ESN'" in result["error"]
    assert (
        "package 'kerasweights_esn', which is not installed"
        in (result["error"])
    )
    # No guessed distribution name to pip install.
    assert "pip install" not in result["error"]
