"""How much ``import kerasweights`` adds to ``import keras``.

Each sample is a fresh interpreter. The two imports alternate, so a burst of
load on a shared machine hits both alike; we report medians and their ratio.

    python -m benchmarks.import_time --repeats 15
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
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
