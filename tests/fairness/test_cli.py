"""``kerasweights fairness``: bad input exits 2 with one line naming the
column; a small run writes the table data and the PNG."""

import json

import numpy as np
import pytest

from kerasweights.cli import main


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
    assert (out / "fairness_tradeoff.png").stat().st_size > 1000
