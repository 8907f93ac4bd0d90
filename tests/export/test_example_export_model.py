"""examples/export_model.py exports, verifies and serves a digits model."""

import os
import runpy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_export_model_example(tmp_path, capsys):
    example = runpy.run_path(
        os.path.join(REPO, "examples", "export_model.py"), run_name="example"
    )
    accuracy = example["main"](
        ["--output", str(tmp_path / "sm"), "--epochs", "6"]
    )
    printed = capsys.readouterr().out
    assert "'pixels'" in printed and "'digit'" in printed
    assert "TFLite: batch pinned to 1" in printed
    assert "weights verified: True" in printed
    assert os.path.exists(tmp_path / "sm" / "model.tflite")
    assert accuracy > 0.7
