"""examples/tune_digits.py runs and its best model is a real classifier."""

import os
import runpy

import numpy as np

from kerasweights.datasets.digits import load_digits
from kerasweights.export import load_keras_model

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
    finite = [t.score for t in result.trials if t.finite]
    assert result.best.score == max(finite)
    # The exported model is the one scored: its test accuracy, recomputed
    # from the .keras file, is the one reported.
    split = load_digits("sequence", seed=0, limit=200)
    model = load_keras_model(result.files["keras"])
    predicted = np.asarray(model(split.x_test)).argmax(axis=1)
    accuracy = float(np.mean(predicted == split.y_test))
    assert abs(accuracy - result.test_accuracy) < 1e-6
    assert result.export["signature"]["outputs"] == ["digit"]
    assert os.path.exists(result.files["keras"])
