"""One-line CLI messages that name the flag the user typed.

Every case here fails before a search, an export or a compression starts,
so the file runs in seconds.
"""

import pytest

from kerasweights.cli import main


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in err
    return err


def test_trials_with_hyperband_names_the_flag(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["tune", "--tuner", "hyperband", "--trials", "3"]
    assert main([*argv, "--output", str(out)]) == 2
    err = _error(capsys)
    assert "--trials does not apply to --tuner hyperband" in err
    assert "leave it out" in err and "--trials 3" in err
    assert "trials=None" not in err and "`trials`" not in err
    assert not out.exists()


def test_a_misspelt_plugin_kind_gets_a_suggestion(capsys):
    assert main(["plugins", "--kind", "initalizer"]) == 2
    err = _error(capsys)
    assert "--kind 'initalizer'" in err
    assert "did you mean 'initializer'?" in err
    assert "kind=" not in err


def test_a_known_plugin_kind_still_lists(capsys):
    assert main(["plugins", "--kind", "initializer", "--json"]) == 0
    assert '"kind": "initializer"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "command", "extra"),
    [
        (["plugins", "--jsn"], "plugins", "--jsn"),
        (["tune", "--tunr", "random"], "tune", "--tunr random"),
    ],
)
def test_an_unknown_flag_names_the_subcommand(argv, command, extra, capsys):
    assert main(argv) == 2
    err = _error(capsys)
    assert f"kerasweights {command}: unrecognized arguments: {extra}" in err
    assert f"kerasweights {command} --help" in err


@pytest.mark.parametrize("command", ["export", "compress"])
def test_an_outdir_that_is_the_model_file(command, tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"stand-in; refused before it is read")
    argv = [command, str(model), str(model)]
    if command == "compress":
        argv += ["--prune", "0.5"]
    assert main(argv) == 2
    err = _error(capsys)
    assert f"OUTDIR {str(model)!r} is the model file itself" in err
    assert "expected a folder" in err and "lies inside" not in err
    assert model.read_bytes() == b"stand-in; refused before it is read"


def test_an_outdir_that_is_another_file(tmp_path, capsys):
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    note = tmp_path / "notes.txt"
    note.write_text("mine")
    assert main(["export", str(model), str(note)]) == 2
    err = _error(capsys)
    assert f"OUTDIR {str(note)!r} is a file; expected a folder" in err
    assert note.read_text() == "mine"


def test_tune_help_lists_every_objective(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in (
        "val_accuracy",
        "val_loss",
        "val_fair_accuracy",
        "val_dp_difference",
    ):
        assert name in text
    assert "--task adult" in text
