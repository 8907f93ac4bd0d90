"""How much ``import kerasweights`` adds to ``import keras``, and what
the command line costs before it does anything.

Each sample is a fresh interpreter. The cases alternate, so a burst of
load on a shared machine hits all alike; we report medians and ratios.

    python -m benchmarks.import_time --repeats 15
    python -m benchmarks.import_time --cli --repeats 5

``--cli`` times ``kerasweights --help`` and an argument error
(``kerasweights tune --seed -1``, exit 2) two ways: as the console script
starts today (``import kerasweights.cli`` runs the package's start-up:
Keras, TensorFlow, plugin discovery), and with that start-up deferred as a
launcher would (the package's module put in ``sys.modules`` unexecuted;
``kerasweights.cli.main`` runs the start-up only before a command's
``run``, see kerasweights/cli/__init__.py). The deferred case is what the
CLI answers in once the console script points at such a launcher; until
then it is a measurement of a launcher that is not installed.

Measured on a shared 2-core machine (other jobs running), Python 3.11.7,
5 alternating runs, ``python -m benchmarks.import_time --cli --repeats 5``
(medians):

| command | start-up as today (s) | start-up deferred (s) | ratio |
|---|---|---|---|
| ``kerasweights --help`` | 9.584 | 0.116 | 0.012 |
| ``kerasweights tune --seed -1`` | 11.256 | 0.114 | 0.010 |

The console script itself, before the CLI was made lazy, took a median
of 7.06 s for ``kerasweights --help`` (5 runs of ``/usr/bin/time``
``kerasweights --help`` on the same machine, at a quieter moment); the
CLI's own modules take about 5 ms of it (``python -X importtime -c
"import kerasweights.cli"``), the rest is ``import keras``/TensorFlow and
plugin discovery in the package's ``__init__``.
"""

import argparse
import statistics
import subprocess
import sys
import time

_CASES = {
    "keras": "import keras",
    "kerasweights": "import kerasweights",
}


def _once(code):
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True
    )
    return time.perf_counter() - start


def measure(repeats):
    """Median wall time of each import in seconds, and their ratio."""
    _once("pass")  # warm the file-system cache for both
    _once(_CASES["kerasweights"])
    samples = {name: [] for name in _CASES}
    for _ in range(repeats):
        for name, code in _CASES.items():
            samples[name].append(_once(code))
    medians = {name: statistics.median(s) for name, s in samples.items()}
    baseline = _once("pass")
    return medians, baseline, samples


# The package's module, unexecuted, as a launcher would leave it.
_DEFERRED = (
    "import importlib.util, sys; "
    "spec = importlib.util.find_spec('kerasweights'); "
    "sys.modules['kerasweights'] = importlib.util.module_from_spec(spec); "
    "from kerasweights.cli import main; "
)
_TODAY = "import sys; from kerasweights.cli import main; "
_CLI_CASES = {
    "kerasweights --help": "['--help']",
    "kerasweights tune --seed -1": "['tune', '--seed', '-1']",
}


def _cli_once(prefix, argv):
    code = f"{prefix}sys.exit(main({argv}))"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 2) or "Traceback" in done.stderr:
        raise RuntimeError(f"{argv} failed: {done.stderr[-500:]}")
    return seconds


def measure_cli(repeats):
    """Median wall time of each CLI case, start-up as today and deferred."""
    ways = {"today": _TODAY, "deferred": _DEFERRED}
    samples = {(c, w): [] for c in _CLI_CASES for w in ways}
    _cli_once(_TODAY, "['--help']")  # warm the file-system cache
    for _ in range(repeats):
        for case, argv in _CLI_CASES.items():
            for way, prefix in ways.items():
                samples[case, way].append(_cli_once(prefix, argv))
    return {key: statistics.median(s) for key, s in samples.items()}


def main_cli(repeats):
    medians = measure_cli(repeats)
    print(f"python {sys.version.split()[0]}, {repeats} alternating runs")
    print("| command | start-up as today (s) | start-up deferred (s) | ratio |")
    print("|---|---|---|---|")
    for case in _CLI_CASES:
        today, deferred = medians[case, "today"], medians[case, "deferred"]
        print(
            f"| `{case}` | {today:.3f} | {deferred:.3f} | "
            f"{deferred / today:.3f} |"
        )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--cli",
        action="store_true",
        help="time `kerasweights --help` and an argument error, with the "
        "package's start-up as today and deferred",
    )
    args = parser.parse_args(argv)
    if args.cli:
        return main_cli(args.repeats)
    medians, empty, _ = measure(args.repeats)
    ratio = medians["kerasweights"] / medians["keras"]
    added = medians["kerasweights"] - medians["keras"]
    print(f"python {sys.version.split()[0]}, {args.repeats} alternating runs")
    print("| import | median wall time (s) |")
    print("|---|---|")
    print(f"| keras | {medians['keras']:.3f} |")
    print(f"| kerasweights (all plugins) | {medians['kerasweights']:.3f} |")
    print(f"| empty interpreter | {empty:.3f} |")
    print()
    print(
        f"kerasweights / keras = {ratio:.3f} "
        f"(+{added * 1000:.0f} ms, {100 * (ratio - 1):+.1f}%); goal <= 1.10"
    )
    return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
