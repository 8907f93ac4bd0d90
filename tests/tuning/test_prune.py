"""Pruning: trials whose gradients explode or vanish early stop there."""

import warnings

import keras
import pytest

from kerasweights.health import Diagnosis
from kerasweights.health import GradientHealthWarning
from kerasweights.tuning import SearchSpace
from kerasweights.tuning import tune
from kerasweights.tuning.watch import PruneWatch


class Huge(keras.initializers.RandomNormal):
    """Kernels of standard deviation 30: gradients explode at once."""

    plugin_targets = ("conv_kernel",)

    def __init__(self):
        super().__init__(stddev=30.0, seed=1)

    def get_config(self):
        return {}


_SMALL = {
    "models": ["conv"],
    "initializers": ["glorot_uniform"],
    "conv_blocks": [2],
    "filters": [8],
    "dense_units": [32],
    "dropout": [0.0],
    "learning_rate": [0.003],
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    space = SearchSpace(extra_initializers={"huge": Huge}, **_SMALL)
    out = tmp_path_factory.mktemp("prune") / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tune(
            space,
            tuner="grid",
            trials=2,
            epochs=3,
            limit=400,
            output=out,
            export=False,
            prune_steps=40,
        )
    _SHOWN[:] = [w for w in caught if w.category is GradientHealthWarning]
    return result


_SHOWN = []  # gradient-health warnings that reached the user


def test_a_quiet_search_shows_no_health_warning(searched):
    # verbose=0 (the default) is silent; the verdict is in the records.
    assert searched.trials[-1].health == "exploding"
    assert _SHOWN == []


def test_an_exploding_trial_is_pruned_with_its_reason(searched):
    by_init = {r.hyperparameters["conv_init"]: r for r in searched.trials}
    bad, good = by_init["huge"], by_init["glorot_uniform"]
    assert bad.status == "pruned" and bad.score is None
    assert bad.reason.startswith("exploding gradients")
    assert "optimizer step" in bad.reason
    assert "within the first 40" in bad.reason
    assert bad.health == "exploding"
    # 400 examples, 60% for training: 8 steps an epoch; the healthy trial
    # runs 3 epochs, the pruned one stops within the window.
    assert good.epochs == 3 and bad.epochs < 3
    assert good.status == "completed"
    assert searched.trials == [good, bad]  # pruned ranks last
    assert searched.best is good


def test_the_files_say_pruned(searched):
    import csv
    import json

    with open(searched.files["trials_csv"]) as f:
        rows = {r["conv_init"]: r for r in csv.DictReader(f)}
    assert rows["huge"]["status"] == "pruned"
    assert rows["huge"]["reason"].startswith("exploding gradients")
    with open(searched.files["trials_json"]) as f:
        stored = {r["hyperparameters"]["conv_init"]: r for r in json.load(f)}
    assert stored["huge"]["health"] == "exploding"


class _Health:
    def __init__(self, problems):
        self.problems = problems


class _Model:
    stop_training = False


@pytest.mark.parametrize(
    "name, step, prunes",
    [
        ("exploding", 3, True),
        ("vanishing", 39, True),
        ("exploding", 40, False),  # after the window
        ("dead_relu", 0, False),  # not a reason to prune
    ],
)
def test_prune_watch_acts_only_on_its_diagnoses_in_its_window(
    name, step, prunes
):
    problem = Diagnosis(name, "dense", step, "evidence", "fix")
    watch = PruneWatch(_Health([problem]), steps=40)
    watch.set_model(_Model())
    watch.on_train_batch_end(0)
    assert (watch.reason is not None) == prunes
    assert watch.model.stop_training == prunes
    if prunes:
        assert f"{name} gradients in dense at optimizer step {step}" in (
            watch.reason
        )
