"""Resume: the same output folder continues a search (cases C11 and C08).

A second run without ``overwrite`` reloads Keras Tuner's oracle and the
trial records, never runs a finished trial again, and refuses a changed
setting with a line naming it.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kerasweights.cli import main
from kerasweights.errors import InvalidArgumentError
from kerasweights.tuning import SearchSpace
from kerasweights.tuning import tune

_SMALL = {
    "models": ["conv"],
    "initializers": ["glorot_uniform"],
    "conv_blocks": [1],
    "filters": [4],
    "dense_units": [8, 16],
    "dropout": [0.0, 0.1],
    "learning_rate": [0.01, 0.003],
}


def _space():
    return SearchSpace(**_SMALL)


def _run(out, **kwargs):
    settings = {"trials": 2, "epochs": 1, "limit": 100, "export": False}
    settings.update(kwargs)
    return tune(_space(), output=out, **settings)


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run"
    first = _run(out)
    return out, first


def test_resume_runs_only_new_trials_and_says_what_it_reloaded(
    two_trials, tmp_path, capsys
):
    import shutil

    src, first = two_trials
    out = tmp_path / "run"
    shutil.copytree(src, out)
    from kerasweights.tuning.display import Display

    second = _run(out, trials=3, display=Display(1))
    err = capsys.readouterr().err
    assert "Resumed the search" in err
    assert "reloaded 2 finished trials" in err
    ids = [r.trial_id for r in second.trials]
    assert sorted(ids) == ["0", "1", "2"]
    # The two finished trials were reloaded, not run again: same records.
    before = {r.trial_id: r.to_dict() for r in first.trials}
    after = {r.trial_id: r.to_dict() for r in second.trials}
    for trial_id, record in before.items():
        assert after[trial_id] == record
    assert second.settings["resumed"]["finished_trials"] == 2
    stored = json.loads((out / "trials.json").read_text())
    assert sorted(r["trial_id"] for r in stored) == ["0", "1", "2"]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"objective": "val_loss"}, "objective 'val_accuracy' -> 'val_loss'"),
        ({"epochs": 2}, "epochs 1 -> 2"),
        ({"seed": 3}, "seed 0 -> 3"),
        ({"tuner": "bayesian"}, "tuner 'random' -> 'bayesian'"),
        ({"prune": False}, "prune_steps 40 -> None"),
    ],
)
def test_a_changed_setting_is_refused_naming_it(two_trials, change, words):
    out, _ = two_trials
    before = sorted(os.listdir(out / "tuner"))
    with pytest.raises(InvalidArgumentError) as info:
        _run(out, **change)
    message = str(info.value)
    assert words in message and "--overwrite" in message
    assert "\n" not in message
    assert sorted(os.listdir(out / "tuner")) == before


def test_a_changed_space_is_refused_naming_it(two_trials):
    out, _ = two_trials
    space = SearchSpace(**{**_SMALL, "dropout": [0.0, 0.3]})
    with pytest.raises(InvalidArgumentError, match="space.dropout"):
        tune(space, output=out, trials=2, epochs=1, limit=100)


_CHILD = """
import sys
from kerasweights.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_search_resumes_without_losing_or_repeating_a_trial(
    tmp_path, capsys
):
    out = tmp_path / "run"
    argv = ["tune", "--model", "conv", "--initializers", "glorot_uniform"]
    argv += ["--trials", "3", "--epochs", "2", "--limit", "100"]
    argv += ["--output", str(out), "-q"]
    records = out / "tuner" / "kerasweights-trials-tuner0.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *argv[0:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        done = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = json.loads(records.read_text())
            except (OSError, ValueError):
                done = []
            if done:
                break
            time.sleep(0.2)
        assert done, "the first trial never finished"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    first = {r["trial_id"]: r for r in json.loads(records.read_text())}
    assert proc.returncode != 0 and len(first) < 3

    code = main([*argv[:-1], "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Resumed the search" in captured.err
    summary = json.loads(captured.out)
    ids = [t["trial_id"] for t in summary["trials"]]
    assert sorted(ids) == ["0", "1", "2"]  # none lost, none twice
    for trial in summary["trials"]:
        if trial["trial_id"] in first:
            assert trial == first[trial["trial_id"]]
    assert summary["settings"]["resumed"]["finished_trials"] == len(first)
