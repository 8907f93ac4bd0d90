"""examples/compress_model.py compresses, verifies and serves a model."""

import os
import runpy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_compress_model_example(tmp_path, capsys):
    example = runpy.run_path(
        os.path.join(REPO, "examples", "compress_model.py"), run_name="example"
    )
    out = tmp_path / "compressed"
    accuracy, report = example["main"](
        ["--output", str(out), "--epochs", "3", "--units", "32"]
    )
    printed = capsys.readouterr().out
    assert "served TFLite test accuracy" in printed
    assert sorted(os.listdir(out)) == [
        "compression-report.json",
        "kerasweights-manifest.json",
        "model.keras",
        "model.tflite",
        "saved_model",
    ]
    assert min(report["sparsity"].values()) >= 0.49
    assert report["tflite"]["same_class"] >= 0.98
    # The TFLite file run here agrees with what compress measured (int8
    # kernels quantize activations per batch, so batching may move a few).
    assert abs(accuracy - report["after"]["tflite_accuracy"]) < 0.02
    assert accuracy > 0.3
