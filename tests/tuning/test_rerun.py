"""A finished search run again resumes with nothing to run and exits 0."""

import json

from kerasweights.tuning import SearchSpace
from kerasweights.tuning import tune
from kerasweights.tuning.display import Display


def _space():
    return SearchSpace(
        models=["conv"],
        initializers=["glorot_uniform"],
        conv_blocks=[1],
        filters=[4],
        dense_units=[8],
    )


class _Said(Display):
    def __init__(self):
        super().__init__(verbose=0)
        self.lines = []

    def message(self, text, level=1):
        self.lines.append(text)


def test_a_rerun_keeps_a_current_export_and_replaces_a_stale_one(tmp_path):
    out = tmp_path / "run"
    settings = {"trials": 1, "epochs": 1, "limit": 100, "output": out}
    first = tune(_space(), **settings)
    model = (out / "best_model.keras").read_bytes()

    said = _Said()
    again = tune(_space(), display=said, **settings)
    text = "\n".join(said.lines)
    assert "reloaded 1 finished trials" in text
    assert "is current (best trial 1 unchanged)" in text
    assert (out / "best_model.keras").read_bytes() == model
    assert again.best.trial_id == first.best.trial_id
    # The previous report, as summary.json stored it.
    assert again.export == json.loads(json.dumps(first.export, default=str))
    assert again.test_accuracy == first.test_accuracy

    # A summary that names another best trial (as after a resume with more
    # trials): the export is replaced by the best trial's and verified.
    summary = json.loads((out / "summary.json").read_text())
    summary["best"]["trial_id"] = "other"
    (out / "summary.json").write_text(json.dumps(summary))
    said = _Said()
    third = tune(_space(), display=said, **settings)
    assert any("Exporting the best model" in s for s in said.lines)
    assert third.export["verification"]["cases"]
    assert third.test_accuracy == first.test_accuracy
    assert json.loads((out / "summary.json").read_text())["best"][
        "trial_id"
    ] == (first.best.trial_id)
