"""Searches stay honest about non-finite trials (case C07)."""

import csv
import json
import os

import keras
import pytest

from kerasweights.tuning import SearchSpace
from kerasweights.tuning import tune
from kerasweights.tuning.search import SearchFailedError

# Everything but the conv initializer is fixed, so the grid has two points.
_SMALL = {
    "models": ["conv"],
    "initializers": ["glorot_uniform"],
    "conv_blocks": [1],
    "filters": [4],
    "dense_units": [8],
    "dropout": [0.0],
    "learning_rate": [0.01],
}


def test_grid_search_fails_the_nan_trial_and_never_picks_it(
    tmp_path, nan_initializer
):
    space = SearchSpace(
        extra_initializers={"nan_init": nan_initializer}, **_SMALL
    )
    result = tune(
        space,
        tuner="grid",
        trials=4,
        epochs=1,
        limit=100,
        output=tmp_path / "run",
        export=False,
    )
    by_init = {r.hyperparameters["conv_init"]: r for r in result.trials}
    assert set(by_init) == {"glorot_uniform", "nan_init"}
    bad, good = by_init["nan_init"], by_init["glorot_uniform"]

    assert bad.status == "failed" and bad.score is None
    # The reason names the symptom and the first step it showed at.
    assert "non-finite" in bad.reason or "nan" in bad.reason
    assert "step 0" in bad.reason or "step 1" in bad.reason
    assert bad.health == "nan"
    assert good.finite and result.best is good
    assert result.trials == [good, bad]

    # The files say the same, failed trials last with their reason.
    with open(tmp_path / "run" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["conv_init"] for r in rows] == ["glorot_uniform", "nan_init"]
    assert rows[1]["status"] == "failed"
    assert rows[1]["reason"] == bad.reason
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["hyperparameters"]["conv_init"] == "glorot_uniform"


@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_a_search_where_every_trial_fails_finishes_and_says_so(
    tmp_path, nan_initializer, tuner
):
    class DenseOnly(keras.initializers.GlorotUniform):
        plugin_targets = ("dense_kernel",)

    space = SearchSpace(
        **{
            **_SMALL,
            "initializers": [],
            "learning_rate": [0.01, 0.02, 0.03, 0.04],
        },
        extra_initializers={"nan_init": nan_initializer, "dense": DenseOnly},
    )
    trials = None if tuner == "hyperband" else 4
    with pytest.raises(SearchFailedError, match="trials failed"):
        tune(
            space,
            tuner=tuner,
            trials=trials,
            epochs=2 if tuner == "hyperband" else 1,
            limit=100,
            output=tmp_path / "run",
        )
    with open(tmp_path / "run" / "trials.json") as f:
        records = json.load(f)
    # More than Keras Tuner's default limit of 3 consecutive failures ran.
    assert len(records) == 4 if tuner != "hyperband" else len(records) >= 1
    assert all(r["status"] == "failed" for r in records)
    assert all("non-finite" in r["reason"] for r in records)
    assert not os.path.exists(tmp_path / "run" / "best_model.keras")
