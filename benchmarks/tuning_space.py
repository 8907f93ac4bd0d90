"""Best validation accuracy: our registry space against Keras' built-ins.

On the digits data (scikit-learn's ``load_digits``), runs the same random
search, with the same budget of trials and epochs and the same architecture
choices, twice per seed: once over the full kerasweights space (every
installed initializer and recurrent plugin, their own arguments, the
chrono gate-bias slot, plus Keras' baselines) and once over Keras' own
initializers and cells only (``glorot_uniform``, ``he_normal``,
``orthogonal``; ``lstm``, ``gru``; the layers' default biases). Prints the
best validation accuracy of each search, and its test accuracy, per seed
and as medians.

Usage:
    python -m benchmarks.tuning_space [--seeds 0 1 2] [--trials 6]
        [--epochs 3] [--models recurrent]
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _space(kind, models):
    from kerasweights.tuning import KERAS_CELLS
    from kerasweights.tuning import KERAS_INITIALIZERS
    from kerasweights.tuning import SearchSpace

    common = {"models": models, "recurrent_layers": (1,), "units": (32,)}
    if kind == "keras":
        return SearchSpace(
            initializers=list(KERAS_INITIALIZERS),
            cells=list(KERAS_CELLS),
            bias_initializers=["default"],
            **common,
        )
    return SearchSpace(**common)


def _search(kind, seed, args, root):
    from kerasweights.tuning import tune

    start = time.perf_counter()
    result = tune(
        _space(kind, args.models),
        tuner="random",
        trials=args.trials,
        epochs=args.epochs,
        seed=seed,
        output=os.path.join(root, f"{kind}-{seed}"),
        export=False,
    )
    return result.best.score, time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["recurrent"])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            # Alternate which space goes first, seed by seed.
            kinds = ("kerasweights", "keras")
            if seed % 2:
                kinds = kinds[::-1]
            got = {}
            for kind in kinds:
                got[kind] = _search(kind, seed, args, root)
            rows.append((seed, got))
            print(
                f"seed {seed}: kerasweights "
                f"{got['kerasweights'][0]:.4f}, keras {got['keras'][0]:.4f}",
                flush=True,
            )
    print()
    print(
        f"digits, {'+'.join(args.models)} models, random search, "
        f"{args.trials} trials x {args.epochs} epochs per search"
    )
    print("| seed | space | best val acc | best trial | search (s) |")
    print("|---|---|---|---|---|")
    for seed, got in rows:
        for kind in ("kerasweights", "keras"):
            score, seconds, result = got[kind]
            hp = result.best.hyperparameters
            what = ", ".join(
                f"{k}={hp[k]}"
                for k in ("cell", "dense_init", "recurrent_init", "conv_init")
                if k in hp
            )
            print(f"| {seed} | {kind} | {score:.4f} | {what} | {seconds:.0f} |")
    ours = [g["kerasweights"][0] for _, g in rows]
    base = [g["keras"][0] for _, g in rows]
    wins = sum(a > b for a, b in zip(ours, base, strict=True))
    ties = sum(a == b for a, b in zip(ours, base, strict=True))
    print()
    print(
        f"median best val acc: kerasweights {statistics.median(ours):.4f}, "
        f"keras built-ins {statistics.median(base):.4f}; kerasweights "
        f"higher on {wins} of {len(rows)} seeds, equal on {ties}"
    )


if __name__ == "__main__":
    main()
