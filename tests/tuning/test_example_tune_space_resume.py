"""examples/tune_space_resume.py runs: a YAML space, then a resumed search."""

import os
import runpy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_tune_space_resume_example(tmp_path, capsys):
    example = runpy.run_path(
        os.path.join(REPO, "examples", "tune_space_resume.py"),
        run_name="example",
    )
    first, second = example["main"](
        [
            "--first",
            "1",
            "--then",
            "2",
            "--epochs",
            "1",
            "--limit",
            "100",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    printed = capsys.readouterr()
    assert "cells: gru, lstm, janet" in printed.out
    assert "reloaded 1 finished trials" in printed.out
    assert "Resumed the search" in printed.err
    assert len(first.trials) == 1 and len(second.trials) == 2
    (kept,) = first.trials
    assert kept.to_dict() in [t.to_dict() for t in second.trials]
    assert os.path.getsize(second.files["trials_png"]) > 0
    assert os.path.exists(second.files["saved_model"])
