"""Trial records: ranking by either objective, the files and the plot."""

import csv
import json

import pytest

from kerasweights.tuning.results import TrialRecord
from kerasweights.tuning.results import plot_trials
from kerasweights.tuning.results import rank_trials
from kerasweights.tuning.results import write_json
from kerasweights.tuning.results import write_trials_csv


def _records():
    return [
        TrialRecord("0", 1, {"model": "conv", "lr": 0.01}, score=0.5),
        TrialRecord("1", 2, {"model": "conv", "lr": 0.1}, score=0.9),
        TrialRecord(
            "2",
            3,
            {"model": "rec", "lr": 0.1},
            status="pruned",
            reason="exploding gradients in dense at optimizer step 4",
            health="exploding",
        ),
        TrialRecord(
            "3",
            4,
            {"model": "rec", "lr": 0.01},
            status="failed",
            reason="loss became nan at epoch 1, step 2",
            health="nan",
        ),
        TrialRecord("4", 5, {"model": "rec", "lr": 0.01}, score=0.7),
    ]


@pytest.mark.parametrize(
    "direction, order", [("max", ["1", "4", "0"]), ("min", ["0", "4", "1"])]
)
def test_ranking_follows_the_objective_and_puts_bad_trials_last(
    direction, order
):
    ranked = rank_trials(_records(), direction)
    assert [r.trial_id for r in ranked] == [*order, "2", "3"]


def test_every_trial_is_in_the_csv_and_json_with_status_and_reason(tmp_path):
    ranked = rank_trials(_records())
    write_trials_csv(tmp_path / "t.csv", ranked, "val_loss")
    write_json(tmp_path / "t.json", [r.to_dict() for r in ranked])
    with open(tmp_path / "t.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial_id"] for r in rows] == ["1", "4", "0", "2", "3"]
    for key in ("status", "reason", "health", "seconds", "val_loss", "lr"):
        assert key in rows[0]
    assert rows[3]["status"] == "pruned" and "exploding" in rows[3]["reason"]
    stored = json.loads((tmp_path / "t.json").read_text())
    again = [TrialRecord.from_dict(d) for d in stored]
    assert again == ranked


def test_the_plot_is_a_png(tmp_path):
    path = tmp_path / "trials.png"
    plot_trials(path, rank_trials(_records()))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
