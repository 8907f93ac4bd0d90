"""Time saved by pruning hopeless trials, at equal best result.

A grid search on digits conv models over a space that holds two bad
choices next to good ones: ``huge`` (kernels with standard deviation 30:
gradients explode) and ``tiny`` (standard deviation 1e-6: gradients
vanish), for the conv and the dense kernels. The same grid runs with
pruning on and off (same seed, so the same trials), the two alternating
``--repeats`` times; the table gives the median search time, the best
validation accuracy and the number of pruned trials of each.

Usage:
    python -m benchmarks.tuning_pruning [--repeats 2] [--epochs 4]
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402


class Huge(keras.initializers.RandomNormal):
    """Standard deviation 30: activations and gradients blow up."""

    plugin_targets = ("conv_kernel", "dense_kernel")

    def __init__(self):
        super().__init__(stddev=30.0, seed=1)

    def get_config(self):
        return {}


class Tiny(keras.initializers.RandomNormal):
    """Standard deviation 1e-6: the first layers get no gradient."""

    plugin_targets = ("conv_kernel", "dense_kernel")

    def __init__(self):
        super().__init__(stddev=1e-6, seed=1)

    def get_config(self):
        return {}


def _space():
    from kerasweights.tuning import SearchSpace

    return SearchSpace(
        models=["conv"],
        initializers=["glorot_uniform", "he_normal"],
        extra_initializers={"huge": Huge, "tiny": Tiny},
        conv_blocks=(2,),
        filters=(8,),
        dense_units=(32,),
        dropout=(0.0,),
        learning_rate=(0.003,),
    )


def _search(prune, root, tag, epochs):
    from kerasweights.tuning import tune

    start = time.perf_counter()
    result = tune(
        _space(),
        tuner="grid",
        trials=16,
        epochs=epochs,
        seed=0,
        output=os.path.join(root, tag),
        export=False,
        prune=prune,
    )
    seconds = time.perf_counter() - start
    pruned = sum(r.status == "pruned" for r in result.trials)
    return seconds, result.best.score, pruned, len(result.trials), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    runs = {True: [], False: []}
    with tempfile.TemporaryDirectory() as root:
        for rep in range(args.repeats):
            order = (True, False) if rep % 2 == 0 else (False, True)
            for prune in order:
                tag = f"{'on' if prune else 'off'}-{rep}"
                got = _search(prune, root, tag, args.epochs)
                runs[prune].append(got)
                print(
                    f"repeat {rep} pruning {'on' if prune else 'off'}: "
                    f"{got[0]:.1f}s, best {got[1]:.4f}, pruned {got[2]} of "
                    f"{got[3]}",
                    flush=True,
                )
    print()
    print(
        f"digits conv, grid of 16 trials x {args.epochs} epochs, "
        f"{args.repeats} alternating repeats"
    )
    print("| pruning | median search (s) | best val acc | trials pruned |")
    print("|---|---|---|---|")
    med = {}
    for prune in (False, True):
        times = [r[0] for r in runs[prune]]
        med[prune] = statistics.median(times)
        best = sorted({round(r[1], 4) for r in runs[prune]})
        pruned = sorted({r[2] for r in runs[prune]})
        print(
            f"| {'on' if prune else 'off'} | {med[prune]:.1f} | "
            f"{', '.join(f'{b:.4f}' for b in best)} | "
            f"{', '.join(map(str, pruned))} of {runs[prune][0][3]} |"
        )
    print()
    print(
        f"time with pruning / without = {med[True] / med[False]:.3f} "
        f"(saved {100 * (1 - med[True] / med[False]):.0f}%)"
    )
    result = runs[True][0][4]
    print()
    print("pruned trials and their reasons (first run with pruning):")
    for r in result.trials:
        if r.status == "pruned":
            hp = r.hyperparameters
            print(
                f"- conv_init={hp['conv_init']} dense_init={hp['dense_init']}"
                f": {r.reason}"
            )


if __name__ == "__main__":
    main()
