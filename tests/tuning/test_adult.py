"""The adult task: the fairness penalty and its weight are hyperparameters."""

import keras_tuner as kt
import numpy as np
import pytest

from kerasweights.errors import PluginNotFoundError
from kerasweights.fairness import FairnessModel
from kerasweights.tuning import SearchSpace
from kerasweights.tuning import tune
from kerasweights.tuning.adult import AdultHyperModel
from kerasweights.tuning.adult import fairness_penalty_names

PENALTIES = fairness_penalty_names()


@pytest.fixture(scope="module")
def hypermodel():
    return AdultHyperModel(limit=400, epochs=1)


def test_every_installed_penalty_is_in_the_space(hypermodel):
    assert PENALTIES  # the built-in penalties are registered
    assert hypermodel.describe()["penalties"] == ["none", *PENALTIES]


@pytest.mark.parametrize("name", PENALTIES)
def test_a_chosen_penalty_trains_with_its_weight(hypermodel, name):
    import kerasweights

    hp = kt.HyperParameters()
    hp.values["penalty"] = name
    hp.values["penalty_weight"] = 2.0
    model = hypermodel.build(hp)
    assert isinstance(model, FairnessModel)
    record = kerasweights.get_plugin(name, kind="regularizer")
    assert isinstance(model.penalty, record.obj)
    assert model.penalty_weight == 2.0
    assert hp.is_active("penalty_weight")


def test_no_penalty_has_no_weight(hypermodel):
    hp = kt.HyperParameters()
    hp.values["penalty"] = "none"
    model = hypermodel.build(hp)
    assert model.penalty_weight == 0.0
    assert not hp.is_active("penalty_weight")


def test_an_unknown_penalty_is_refused():
    with pytest.raises(PluginNotFoundError, match="'mmd'"):
        AdultHyperModel(penalties=["mmd"], limit=400)


def test_a_search_on_adult_exports_the_predictor(tmp_path):
    space = SearchSpace(
        models=["conv"],
        initializers=["glorot_uniform"],
        dense_units=[16],
        dropout=[0.0],
        learning_rate=[0.01],
    )
    result = tune(
        space,
        task="adult",
        trials=1,
        epochs=1,
        limit=600,
        objective="val_fair_accuracy",
        output=tmp_path / "run",
        task_options={
            "penalties": ["demographic_parity_penalty"],
            "penalty_weights": [1.0],
            "hidden_layers": [1],
        },
    )
    (trial,) = result.trials
    assert trial.status == "completed"
    assert trial.hyperparameters["penalty"] in (
        "none",
        "demographic_parity_penalty",
    )
    assert -1.0 <= trial.score <= 1.0
    assert result.settings["task"] == "adult"
    # The served model needs no sensitive input.
    assert list(result.export["signature"]["inputs"]) == ["features"]
    assert 0.0 <= result.test_accuracy <= 1.0
    assert np.isfinite(result.test_accuracy)
