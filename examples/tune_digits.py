"""Search initializers and recurrent cells on digits with the Python API.

Builds a `SearchSpace` from the installed plugins (every initializer and
recurrent plugin, plus Keras' own baselines), restricted here to recurrent
models over every installed cell, runs a Keras Tuner search with the
gradient-health check on every trial, and prints the ranked trials. The
best model is written as ``.keras`` and as a SavedModel that was verified
in a fresh process that never imported kerasweights.

Run (from the repository root)::

    python examples/tune_digits.py
    python examples/tune_digits.py --tuner bayesian --trials 6 --epochs 3
"""

import argparse

from kerasweights.tuning import SearchSpace
from kerasweights.tuning import tune


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuner", default="random")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", default="tune-digits-output")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    # Every installed recurrent plugin competes with Keras' GRU; the
    # initializer slots hold every plugin whose plugin_targets fit them.
    space = SearchSpace(
        models=["recurrent"],
        cells=None,
        units=(16, 32),
        recurrent_layers=(1,),
    )
    print("recurrent cells:", ", ".join(space.cell_names))
    print(
        "recurrent-kernel initializers:",
        ", ".join(space.initializer_names("recurrent_kernel")),
    )

    result = tune(
        space,
        tuner=args.tuner,
        trials=args.trials,
        epochs=args.epochs,
        limit=args.limit,
        output=args.output,
        overwrite=args.overwrite,
        verbose=1,
    )

    for rank, trial in enumerate(result.trials, start=1):
        score = "failed" if trial.score is None else f"{trial.score:.4f}"
        print(
            f"{rank}. trial {trial.number}: {score} "
            f"(health {trial.health}) cell={trial.hyperparameters['cell']}"
        )
    signature = result.export["signature"]
    print(f"test accuracy of the best model: {result.test_accuracy:.4f}")
    print(
        f"SavedModel inputs {signature['inputs']} outputs "
        f"{signature['outputs']} in {result.files['saved_model']}"
    )
    return result


if __name__ == "__main__":
    main()
