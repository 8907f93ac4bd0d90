"""`--help`, `--version` and argument errors answer without TensorFlow
when the package's start-up is deferred (see kerasweights/cli/__init__.py),
and a command still starts the package, plugins included."""

import importlib.util
import json

# What the launcher (kerasweights_launch) does: the package's module,
# unexecuted, in sys.modules.
DEFERRED = """
import importlib.util, json, sys
spec = importlib.util.find_spec("kerasweights")
sys.modules["kerasweights"] = importlib.util.module_from_spec(spec)
from kerasweights.cli import main
"""

HEAVY = ("tensorflow", "keras", "keras_tuner", "kerasweights.registry")


def test_help_and_argument_errors_import_no_tensorflow(tmp_path, fresh_python):
    (tmp_path / "junk.npz").write_text("not numpy")
    calls = [
        ["--help"],
        ["tune", "--help"],
        ["--version"],
        [],
        ["nosuch"],
        ["export"],
        ["export", "m.keras", "out", "--tflite-batch-size", "2"],
        ["export", "m.keras", "out", "--data", "junk.npz"],
        ["tune", "--seed", "-1"],
        ["tune", "--tuner", "randon"],
        ["tune", "--strategy", "gpu"],
        ["tune", "--oracle", "127.0.0.1:1"],
        ["health", "m.keras", "--data", "missing.npz"],
        ["health", "m.keras", "--data", "junk.npz", "--epochs", "0"],
        ["compress", "m.keras", "out"],
        ["compress", "m.keras", "out", "--prune", "2"],
        ["compress", "m.keras", "out", "--prune", ".5", "--data", "junk.npz"],
        ["verify"],
        ["plugins", "--kind"],
    ]
    code = (
        DEFERRED
        + f"""
codes = []
for argv in {calls!r}:
    try:
        codes.append(main(argv))
    except SystemExit as exc:  # argparse after printing --help
        codes.append(exc.code)
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"codes": codes, "heavy": heavy}}))
"""
    )
    out = fresh_python(code, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    expected = [0, 0, 0, 2] + [2] * (len(calls) - 4)
    assert result["codes"] == expected, out.stderr
    errors = [line for line in out.stderr.splitlines() if line]
    assert len(errors) == len(calls) - 4, out.stderr  # one line each
    assert all(line.startswith("error: ") for line in errors), out.stderr
    assert "Traceback" not in out.stderr
    assert "kerasweights 0." in out.stdout


def test_a_command_starts_the_deferred_package(fresh_python):
    code = (
        DEFERRED
        + """
import contextlib, io
listed = io.StringIO()
with contextlib.redirect_stdout(listed):
    assert main(["plugins", "--json"]) == 0
import keras
import kerasweights
names = [r["registered_name"] for r in json.loads(listed.getvalue())]
found = [keras.saving.get_registered_object(n) is not None for n in names]
same = names == [r.registered_name for r in kerasweights.plugins()]
print(json.dumps({"names": names, "found": all(found), "same": same,
                  "version": kerasweights.__version__}))
"""
    )
    out = fresh_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["found"] and result["same"]
    assert "kerasweights>MGU" in result["names"]
    if importlib.util.find_spec("kerasweights_esn") is not None:
        # The third-party example plugin, when installed (not in CI).
        assert "kerasweights_esn>ESN" in result["names"]
    assert result["version"]


def test_the_tune_checks_use_the_librarys_limits():
    from kerasweights.cli import tune_cmd
    from kerasweights.tuning.devices import STRATEGIES
    from kerasweights.tuning.search import MAX_SEED
    from kerasweights.tuning.search import TUNERS

    assert tune_cmd._MAX_SEED == MAX_SEED
    assert tune_cmd._STRATEGIES == STRATEGIES
    assert tune_cmd._TUNERS == TUNERS


def test_the_console_script_is_the_launcher(fresh_python):
    """The installed `kerasweights` script answers --help without TF."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="kerasweights")
    assert script.value == "kerasweights_launch:entry_point"
    code = f"""
import json, sys
from kerasweights_launch import entry_point
sys.argv = ["kerasweights", "--help"]
try:
    entry_point()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}))
"""
    out = fresh_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}
    assert "usage: kerasweights" in out.stdout
