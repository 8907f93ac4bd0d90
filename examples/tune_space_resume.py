"""A search space from a YAML file, a search stopped and resumed.

Reads ``examples/tune_space.yaml`` (recurrent models: GRU, LSTM and JANET,
every installed initializer, the chrono gate-bias slot, one class added by
import path), runs a random search of a few trials, then runs the same
search again on the same folder with a larger budget: the second call
reloads the finished trials, runs only the new ones, and ranks them all
together. Trials whose gradients explode or vanish early are pruned; the
results are in ``trials.csv``, ``trials.json`` and ``trials.png``.

Run (from the repository root)::

    python examples/tune_space_resume.py
    python examples/tune_space_resume.py --first 2 --then 4 --epochs 2

The same with the command line::

    kerasweights tune --space examples/tune_space.yaml --trials 3
    kerasweights tune --space examples/tune_space.yaml --trials 6  # resumes
"""

import argparse
import os

from kerasweights.tuning import tune
from kerasweights.tuning.display import Display
from kerasweights.tuning.spacefile import load_space_file

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--space", default=os.path.join(HERE, "tune_space.yaml")
    )
    parser.add_argument("--first", type=int, default=3)
    parser.add_argument("--then", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", default="tune-space-output")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    space = load_space_file(args.space)
    print("cells:", ", ".join(space.cell_names))
    print("gate biases:", ", ".join(space.bias_names))
    settings = {
        "epochs": args.epochs,
        "limit": args.limit,
        "output": args.output,
        "display": Display(1),
    }

    first = tune(
        space,
        trials=args.first,
        overwrite=args.overwrite,
        export=False,
        **settings,
    )
    print(f"first run: {len(first.trials)} trials")

    # Same folder, same settings, a larger budget: the search resumes.
    second = tune(space, trials=args.then, **settings)
    resumed = second.settings["resumed"]
    print(
        f"second run: reloaded {resumed['finished_trials']} finished trials, "
        f"{len(second.trials)} trials in all"
    )
    for rank, trial in enumerate(second.trials, start=1):
        score = "-" if trial.score is None else f"{trial.score:.4f}"
        extra = f" ({trial.reason})" if trial.reason else ""
        print(
            f"{rank}. trial {trial.trial_id} {trial.status} {score} "
            f"health {trial.health}{extra}"
        )
    print(f"plot: {second.files['trials_png']}")
    print(f"test accuracy of the best model: {second.test_accuracy:.4f}")
    return first, second


if __name__ == "__main__":
    main()
