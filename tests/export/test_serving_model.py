"""Training wrappers are exported as their prediction model, with a note.

The `kerasweights.fairness` models (`FairnessModel`,
`AdversarialDebiasingModel`, `RateConstrainedModel`) are subclassed models
without inputs of their own that read a sensitive input for their loss;
the model to serve is ``model.prediction_model()``.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasweights import fairness
from kerasweights.errors import InvalidArgumentError
from kerasweights.export import export_saved_model
from kerasweights.export import model_signature
from kerasweights.export.saved_model import ServingModelNote
from kerasweights.export.saved_model import serving_model


def _predictor():
    inputs = keras.Input((3,), name="features")
    x = keras.layers.Dense(4, activation="relu")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(inputs, outputs, name="predictor")


WRAPPERS = {
    "FairnessModel": lambda p: fairness.FairnessModel(p, fairness.MMDPenalty()),
    "AdversarialDebiasingModel": fairness.AdversarialDebiasingModel,
    "RateConstrainedModel": fairness.RateConstrainedModel,
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_a_wrapper_serves_its_prediction_model(name):
    predictor = _predictor()
    wrapper = WRAPPERS[name](predictor)
    data = {"features": np.ones((5, 3), "float32"), "group": np.zeros(5)}
    served, checked, note = serving_model(wrapper, data)
    assert served is predictor
    assert sorted(checked) == ["features"]
    assert name in note and "without the sensitive input 'group'" in note
    assert list(model_signature(wrapper)["inputs"]) == ["features"]


def test_other_models_are_served_as_they_are():
    model = _predictor()
    assert serving_model(model, "data") == (model, "data", None)


def test_a_prediction_model_that_raises_is_one_line():
    class Broken(keras.Model):
        def prediction_model(self):
            raise RuntimeError("not trained yet")

    with pytest.raises(InvalidArgumentError, match="not trained yet"):
        serving_model(Broken())


def test_a_fairness_model_exports_without_its_sensitive_input(tmp_path):
    predictor = _predictor()
    wrapper = fairness.FairnessModel(predictor, fairness.MMDPenalty())
    x = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    data = {"features": x, "group": np.arange(12) % 2}
    with pytest.warns(ServingModelNote, match="FairnessModel"):
        result = export_saved_model(wrapper, tmp_path / "sm", data=data)
    assert "predictor" in result["served_model"]["note"]
    assert list(result["signature"]["inputs"]) == ["features"]
    assert result["verification"]["inputs"] == {
        "features": {"dtype": "float32", "shape": [None, 3]}
    }
    # The served values are the predictor's, read with TensorFlow alone.
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, json, numpy as np, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "y = f(features=tf.constant(np.load(sys.argv[2])))['score']\n"
        "print(json.dumps(y.numpy().ravel().tolist()))\n"
    )
    folder, inputs = str(tmp_path / "sm"), str(tmp_path / "x.npy")
    proc = subprocess.run(
        [sys.executable, "-c", code, folder, inputs],
        capture_output=True,
        text=True,
        check=True,
    )
    served = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(
        served, predictor(x).numpy().ravel(), rtol=1e-5, atol=1e-6
    )
