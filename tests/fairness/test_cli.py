"""``kerasweights fairness``: bad input exits 2 with one line naming the
column; a small run writes the table data and the PNG."""

import json

import numpy as np
import pytest

from kerasweights.cli import build_parser
from kerasweights.cli import fairness_cmd
from kerasweights.cli import main
from kerasweights.export import claim_output_folder
from kerasweights.export import read_manifest


def _csv(tmp_path, n=120, label_values=("no", "yes"), groups=("F", "M")):
    rng = np.random.default_rng(0)
    lines = ["age,job,sex,y"]
    for i in range(n):
        g = groups[i % len(groups)]
        lab = label_values[int(rng.integers(0, len(label_values)))]
        job = "ab"[int(rng.integers(0, 2))]
        lines.append(f"{20 + i % 40},{job},{g},{lab}")
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "argv,pattern",
    [
        (["--label", "income", "--sensitive", "sex"], "`income`"),
        (["--label", "y", "--sensitive", "race"], "`race`"),
        (["--label", "y", "--sensitive", "sex", "--method", "nope"], "'nope'"),
        (["--label", "y", "--sensitive", "sex", "--epochs", "0"], "--epochs"),
        (["--label", "y"], "--sensitive"),
        (["--label", "y", "--sensitive", "sex", "--weight", "inf"], "--weight"),
        (["--label", "y", "--sensitive", "sex", "--weight", "0"], "--weight"),
        (["--label", "y", "--sensitive", "sex", "--seed", "-1"], "--seed"),
        (
            ["--label", "y", "--sensitive", "sex", "--seed", "99999999999"],
            "--seed",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, pattern):
    path = _csv(tmp_path)
    code = main(
        ["fairness", "--csv", str(path), "--out", str(tmp_path / "o")] + argv
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert pattern in err


def test_label_with_three_values_and_single_group(tmp_path, capsys):
    three = _csv(tmp_path, label_values=("a", "b", "c"))
    code = main(
        ["fairness", "--csv", str(three), "--label", "y", "--sensitive", "sex"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "`y` must hold exactly two values" in err
    single = _csv(tmp_path, groups=("F",))
    code = main(
        ["fairness", "--csv", str(single), "--label", "y", "--sensitive", "sex"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "`sex` must hold at least two groups" in err


def test_small_run_writes_results_and_refuses_to_overwrite(tmp_path, capsys):
    path = _csv(tmp_path)
    out = tmp_path / "out"
    argv = [
        "fairness",
        "--csv",
        str(path),
        "--label",
        "y",
        "--sensitive",
        "sex",
        "--method",
        "dp,adversarial",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in summary["results"]] == [
        "baseline",
        "dp",
        "adversarial",
    ]
    for row in summary["results"]:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert set(row["by_group"]) == {"F", "M"}
    assert (out / "fairness_tradeoff.png").stat().st_size > 1000
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert "overwrite=True" not in err[0]
    assert (out / "fairness_tradeoff.png").stat().st_size > 1000
    assert read_manifest(out)["command"] == "fairness"
    # --overwrite replaces a previous fairness run.
    assert main(argv + ["--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["epochs"] == 1
    # A file of the user's in the folder: refused even with --overwrite.
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(argv + ["--overwrite"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"


def _argv(csv, out, *extra):
    return [
        "fairness",
        "--csv",
        str(csv),
        "--label",
        "y",
        "--sensitive",
        "sex",
        "--epochs",
        "1",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def no_training(monkeypatch):
    """Every case below must stop before training starts."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(fairness_cmd, "train_and_evaluate", refuse)


@pytest.mark.parametrize("overwrite", [False, True])
def test_user_files_in_out_are_never_replaced(
    tmp_path, capsys, no_training, overwrite
):
    out = tmp_path / "userres"
    out.mkdir()
    (out / "results.json").write_text('{"mine": 1}')
    extra = ["--overwrite"] if overwrite else []
    assert main(_argv(_csv(tmp_path), out, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not write" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_text() == '{"mine": 1}'


def test_another_commands_run_is_not_replaced(tmp_path, capsys, no_training):
    out = tmp_path / "tuned"
    claim_output_folder(out, ["trials.json"], "tune")
    (out / "trials.json").write_text("[]")
    assert main(_argv(_csv(tmp_path), out, "--overwrite")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tune run" in err[0]
    assert (out / "trials.json").read_text() == "[]"
    assert read_manifest(out)["command"] == "tune"


def test_default_out_is_outside_tunes_default_folder(tmp_path):
    parser = build_parser()
    tune_out = parser.parse_args(["tune"]).output
    fair_out = parser.parse_args(["fairness"]).out
    tune_abs = (tmp_path / tune_out).resolve()
    fair_abs = (tmp_path / fair_out).resolve()
    assert tune_abs not in fair_abs.parents and tune_abs != fair_abs
    assert fair_abs not in tune_abs.parents


def test_out_that_cannot_be_written_is_refused_before_training(
    tmp_path, capsys, no_training, monkeypatch
):
    path = _csv(tmp_path)
    afile = tmp_path / "afile.txt"
    afile.write_text("mine")
    for out in (afile, afile / "sub"):
        assert main(_argv(path, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "afile.txt" in err[0]
        assert afile.read_text() == "mine"

    # Tests may run as root, where file modes do not stop writes; a
    # folder creation that fails with EACCES stands for a read-only place.
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fairness_cmd.os, "makedirs", denied)
    assert main(_argv(path, tmp_path / "locked")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Permission denied" in err[0]


def test_non_finite_feature_exits_2_naming_column_and_line(
    tmp_path, capsys, no_training
):
    path = _csv(tmp_path)
    lines = path.read_text().splitlines()
    lines[4] = "nan" + lines[4][lines[4].index(",") :]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    assert main(_argv(path, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`age`" in err[0] and "line 5" in err[0]
    assert not out.exists()


def test_csv_without_feature_column_exits_2(tmp_path, capsys, no_training):
    path = tmp_path / "two.csv"
    path.write_text("sex,y\n" + "F,no\nM,yes\n" * 10)
    assert main(_argv(path, tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "feature column" in err[0]


def test_method_names_are_case_insensitive():
    resolved = fairness_cmd._resolve_methods("DP, Eo ,Adversarial")
    assert [name for name, _ in resolved] == ["dp", "eo", "adversarial"]
    assert [r.name for _, r in resolved] == [
        fairness_cmd.METHOD_ALIASES[n] for n in ("dp", "eo", "adversarial")
    ]


def test_constrained_uses_the_benchmark_selected_setting():
    from kerasweights.registry import get_plugin

    record = get_plugin("rate_constrained_model", "regularizer")
    model = fairness_cmd.build_model(record, 4, 2, 1.0, 0)
    for key, value in fairness_cmd.CONSTRAINED_SETTINGS.items():
        assert getattr(model, key) == value
    # The values `python -m benchmarks.fairness_adult --parts select`
    # chose for the joint goal (constrained_dp_eo).
    assert fairness_cmd.CONSTRAINED_SETTINGS == {
        "constraint": "parity_and_equalized_odds",
        "epsilon": 0.025,
        "damping": 10.0,
        "proxy_temperature": 0.2,
        "multiplier_learning_rate": 0.2,
    }
    parser = build_parser()
    args = parser.parse_args(["fairness"])
    assert fairness_cmd.training_settings(record, args) == (30, 1024)
    assert fairness_cmd.training_settings(None, args) == (5, 256)
    args = parser.parse_args(
        ["fairness", "--epochs", "2", "--batch-size", "64"]
    )
    assert fairness_cmd.training_settings(record, args) == (2, 64)
    assert fairness_cmd.training_settings(None, args) == (2, 64)
