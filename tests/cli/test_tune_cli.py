"""`kerasweights tune`: end to end on digits, and every bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kerasweights.cli import main


def _snapshot(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tiny recurrent search through the CLI, shared by the tests."""
    out = tmp_path_factory.mktemp("tune") / "run"
    space = out.parent / "space.yaml"
    # The file sets models and units; --cells on the command line replaces
    # the file's cells.
    space.write_text("models: [recurrent]\ncells: [lstm]\nunits: [12]\n")
    argv = [
        "tune",
        "--space",
        str(space),
        "--model",
        "recurrent",
        "--cells",
        "gru,mgu",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--limit",
        "150",
        "--output",
        str(out),
        "--json",
        "-q",
    ]
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    return code, stdout.getvalue(), out


def test_tune_writes_a_verified_export_and_its_trials(tuned):
    code, stdout, out = tuned
    assert code == 0
    summary = json.loads(stdout)
    assert summary["best"]["status"] == "completed"
    assert summary["best"]["health"] != "unavailable"
    assert len(summary["trials"]) == 2
    assert summary["settings"]["space"]["units"] == [12]
    assert summary["settings"]["space"]["cells"] == ["gru", "mgu"]
    for name in (
        "best_model.keras",
        "saved_model",
        "trials.csv",
        "trials.json",
        "trials.png",
        "summary.json",
        "kerasweights-manifest.json",
    ):
        assert os.path.exists(out / name), name
    verification = summary["export"]["verification"]
    assert verification["inputs"] == {
        "sequence": {"dtype": "float32", "shape": [None, None, 8]}
    }
    assert list(verification["outputs"]) == ["digit"]
    lengths = [case["sequence"][1] for case in verification["cases"]]
    assert len(set(lengths)) == 2


# A saved_model_cli-like look at the signature, and serving, with
# TensorFlow alone.
_CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
_, specs = serve.structured_input_signature
x = np.load(sys.argv[2])
y = serve(sequence=tf.constant(x))["digit"].numpy()
np.save(sys.argv[3], y)
print(json.dumps({
    "inputs": {k: [s.dtype.name, s.shape.as_list()] for k, s in specs.items()},
    "outputs": {k: [s.dtype.name, s.shape.as_list()]
                for k, s in serve.structured_outputs.items()},
    "kerasweights": [m for m in sys.modules if m.startswith("kerasweights")],
}))
"""


def test_the_saved_model_serves_any_length_without_kerasweights(
    tuned, tmp_path
):
    _, _, out = tuned
    from kerasweights.datasets.digits import load_digits
    from kerasweights.export import load_keras_model

    # 3 sequences of 5 rows: batch and time differ from the training 8.
    x = load_digits("sequence", limit=150).x_test[:3, :5]
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(out / "saved_model"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {
        "inputs": {"sequence": ["float32", [None, None, 8]]},
        "outputs": {"digit": ["float32", [None, 10]]},
        "kerasweights": [],
    }
    model = load_keras_model(out / "best_model.keras")
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model(x), atol=1e-5)


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_a_previous_run_is_kept_without_overwrite(tuned, capsys):
    _, _, out = tuned
    before = _snapshot(out)
    code = main(["tune", "--output", str(out), "--trials", "1", "-q"])
    line = _one_error_line(capsys)
    assert code == 2
    assert str(out) in line and "--overwrite" in line
    assert _snapshot(out) == before


def test_overwrite_still_refuses_a_folder_with_foreign_files(tuned, capsys):
    _, _, out = tuned
    (out / "my-notes.txt").write_text("keep me")
    try:
        before = _snapshot(out)
        code = main(["tune", "--output", str(out), "--overwrite", "-q"])
        line = _one_error_line(capsys)
        assert code == 2 and "my-notes.txt" in line
        assert _snapshot(out) == before
    finally:
        (out / "my-notes.txt").unlink()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--initializers", "gain_varianse_scaling"], "gain_variance_scaling"),
        (["--initializers", "foo"], "'foo'"),
        (["--cells", "lstn"], "'lstn'"),
        (["--tuner", "randm"], "'randm'"),
        (["--trials", "-3"], "--trials -3"),
        (["--epochs", "0"], "--epochs 0"),
        (["--seed", "-1"], "from 0 to 4294967294. Received: --seed -1"),
        (["--seed", "4294967295"], "from 0 to 4294967294"),
        (["--model", "conv", "--cells", "mgu"], "--cells applies to recurrent"),
        (["--task", "adult", "--cells", "gru"], "--cells applies to recurrent"),
        (["--tuner", "hyperband", "--trials", "3"], "--trials does not apply"),
        (["--limit", "5"], "--limit 5"),
        (["--trials", "two"], "'two'"),
        (["--space", "nowhere.yaml"], "nowhere.yaml: no such file"),
        (["--objective", "accuracy"], "--objective 'accuracy'"),
        (["--prune-steps", "0"], "--prune-steps 0"),
        (["--strategy", "gpu"], "--strategy 'gpu'"),
        (["--strategy", "tpu"], "found no TPU"),
        (["--oracle", "127.0.0.1:1"], "--oracle needs --chief"),
        (["--chief"], "--chief needs the chief's address"),
        (["--worker", "tuner1"], "--worker tuner1 needs"),
        (["--chief", "--oracle", "127.0.0.1"], "HOST:PORT"),
        (["--worker", "chief2", "--oracle", "127.0.0.1:1"], "'chief2'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path, capsys, monkeypatch, argv, words
):
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "TPU_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    code = main(["tune", "--output", str(out), *argv])
    line = _one_error_line(capsys)
    assert code == 2
    assert words in line
    assert not out.exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "results"
    path.write_text("mine")
    code = main(["tune", "--output", str(path), "--trials", "1"])
    line = _one_error_line(capsys)
    assert code == 2 and "existing file" in line
    assert path.read_text() == "mine"


def test_overwrite_replaces_exactly_a_previous_run(tuned, tmp_path, capsys):
    import shutil

    _, _, run = tuned
    out = tmp_path / "copy"
    shutil.copytree(run, out)
    argv = ["tune", "--output", str(out), "--overwrite", "-q"]
    tiny = ["--model", "conv", "--trials", "1", "--epochs", "1"]
    tiny += ["--limit", "100"]

    # A file the user added inside one of our folders is never deleted.
    notes = out / "tuner" / "my_notes.txt"
    notes.write_text("keep me")
    before = _snapshot(out)
    code = main(argv + tiny)
    line = _one_error_line(capsys)
    assert code == 2 and "my_notes.txt" in line
    assert _snapshot(out) == before

    notes.unlink()
    old = json.loads((out / "summary.json").read_text())
    assert main(argv + tiny) == 0
    capsys.readouterr()
    new = json.loads((out / "summary.json").read_text())
    assert new["settings"]["limit"] == 100
    assert old["settings"]["limit"] != 100


def test_a_bad_space_file_is_one_line_naming_its_line(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("models: [conv\nunits: 3\n")
    out = tmp_path / "out"
    code = main(["tune", "--space", str(space), "--output", str(out)])
    line = _one_error_line(capsys)
    assert code == 2
    assert str(space) in line and "not valid YAML at line" in line
    assert not out.exists()


def test_resume_with_a_changed_objective_exits_2_naming_it(tuned, capsys):
    _, _, out = tuned
    before = _snapshot(out)
    argv = ["tune", "--space", str(out.parent / "space.yaml")]
    argv += ["--model", "recurrent", "--cells", "gru,mgu", "--trials", "2"]
    argv += ["--epochs", "1", "--limit", "150", "--output", str(out), "-q"]
    code = main([*argv, "--objective", "val_loss"])
    line = _one_error_line(capsys)
    assert code == 2
    assert "objective 'val_accuracy' -> 'val_loss'" in line
    assert _snapshot(out) == before


def test_an_empty_output_is_refused_not_read_as_the_current_folder(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code = main(["tune", "--output", "", "--trials", "1"])
    line = _one_error_line(capsys)
    assert code == 2 and "--output ''" in line
    assert os.listdir(tmp_path) == []


def test_the_same_command_again_resumes_and_exits_0(tuned, capsys):
    # Run last: it rewrites the shared run's results (not its export).
    _, _, out = tuned
    exported = {
        k: v
        for k, v in _snapshot(out).items()
        if k == "best_model.keras" or k.startswith("saved_model")
    }
    assert exported
    argv = ["tune", "--space", str(out.parent / "space.yaml")]
    argv += ["--model", "recurrent", "--cells", "gru,mgu", "--trials", "2"]
    argv += ["--epochs", "1", "--limit", "150", "--output", str(out)]
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 0, text
    assert "reloaded 2 finished trials" in text
    assert "is current (best trial" in text and "not exported again" in text
    # The summary says the export was kept, not written again.
    lines = captured.out.splitlines()
    for name in ("best_model.keras", "saved_model"):
        assert f"Wrote {out / name}" not in lines, captured.out
        assert any(
            line.startswith(f"Kept {out / name}, current (best trial ")
            for line in lines
        ), captured.out
    assert (
        "  verified in a fresh process without kerasweights when it was "
        "written, on " in captured.out
    ), captured.out
    after = _snapshot(out)
    assert {k: after[k] for k in exported} == exported
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["resumed"]["finished_trials"] == 2
    assert summary["export"]["verification"]["cases"]
    assert summary["export_kept"] is True

    # A summary naming another best trial: the export is stale, replaced,
    # and the summary says it wrote it.
    summary["best"]["trial_id"] = "other"
    (out / "summary.json").write_text(json.dumps(summary))
    code = main(argv + ["-q"])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"Wrote {out / 'saved_model'}" in printed.splitlines(), printed
    assert "Kept " not in printed and "when it was written" not in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["export_kept"] is False
