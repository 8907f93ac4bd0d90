"""examples/tune_digits.py runs and its best model is a real classifier."""

import os
import runpy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_tune_digits_example(tmp_path, capsys):
    example = runpy.run_path(
        os.path.join(REPO, "examples", "tune_digits.py"), run_name="example"
    )
    result = example["main"](
        [
            "--trials",
            "2",
            "--epochs",
            "2",
            "--limit",
            "200",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    printed = capsys.readouterr().out
    assert "recurrent cells: lstm, gru" in printed
    assert result.best.score > 0.2  # ten classes: chance is 0.1
    assert result.export["signature"]["outputs"] == ["digit"]
    assert os.path.exists(result.files["keras"])
