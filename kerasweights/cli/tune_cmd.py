"""``kerasweights tune``: the main job, a Keras Tuner search on digits."""

import json
import sys
import warnings

__all__ = ["add_parser", "run"]

_TUNERS = ("random", "hyperband", "bayesian", "grid")
_MODELS = {"conv": ("conv",), "recurrent": ("recurrent",), "both": None}


def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "tune",
        help="search initializers, cells, depth and width on digits",
        description=(
            "Run a Keras Tuner search on scikit-learn's handwritten digits "
            "over every installed initializer and recurrent plugin (and "
            "Keras' own baselines), with gradient-health checks per trial; "
            "write the best model as .keras and as a verified SavedModel."
        ),
    )
    parser.add_argument(
        "--tuner",
        default="random",
        metavar="NAME",
        help="random (default), hyperband, bayesian or grid",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="number of trials (default 6; not for hyperband)",
    )
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs per trial (default 4)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of data, tuner and Keras"
    )
    parser.add_argument(
        "--output",
        default="kerasweights-output",
        metavar="DIR",
        help="output folder (default ./kerasweights-output)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous kerasweights run in the output folder "
        "(folders holding other files are always refused)",
    )
    parser.add_argument(
        "--model",
        default="both",
        choices=sorted(_MODELS),
        help="model kinds to search: conv, recurrent or both (default)",
    )
    parser.add_argument(
        "--initializers",
        metavar="A,B",
        help="comma-separated initializer names to search (default: all "
        "installed plus glorot_uniform, he_normal, orthogonal)",
    )
    parser.add_argument(
        "--cells",
        metavar="A,B",
        help="comma-separated recurrent layer names (default: all installed "
        "plus lstm, gru)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="use only N digits examples (quick runs)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON summary on stdout"
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument(
        "-q", "--quiet", action="store_true", help="no progress output"
    )
    level.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show hyperparameters, every epoch and health warnings",
    )
    return parser


def _print_summary(result):
    best = result.best
    export = result.export
    verification = export["verification"]
    from kerasweights.export.verification import format_signature

    signature = format_signature(
        verification["inputs"], verification["outputs"]
    )

    failed = sum(1 for r in result.trials if not r.finite)
    print(
        f"Best: trial {best.number} of {len(result.trials)} "
        f"({failed} failed), val_accuracy {best.score:.4f}, test accuracy "
        f"{result.test_accuracy:.4f}, gradient health {best.health}"
    )
    lines = [
        f"Wrote {result.files['keras']}",
        f"Wrote {result.files['saved_model']}",
        f"  serving signature: {signature}",
        "  verified in a fresh process without kerasweights on "
        f"{len(verification['cases'])} test "
        f"{'batch' if len(verification['cases']) == 1 else 'batches'} "
        f"{[list(c.values())[0] for c in verification['cases']]}, max "
        f"difference {verification['max_abs_diff']:.2g}",
        f"Wrote {result.files['trials_csv']}, {result.files['trials_json']} "
        f"and {result.files['summary']}",
        f"Finished in {result.seconds:.0f}s",
    ]
    for line in lines:
        print(line)


def run(args):
    from rich.console import Console

    from kerasweights.errors import InvalidArgumentError
    from kerasweights.tuning import SearchSpace
    from kerasweights.tuning.display import Display
    from kerasweights.tuning.search import tune

    if args.tuner not in _TUNERS:
        import difflib

        close = difflib.get_close_matches(args.tuner, _TUNERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidArgumentError(
            f"--tuner must be one of {', '.join(_TUNERS)}. Received: "
            f"--tuner {args.tuner!r}{hint}"
        )
    for flag, value, low in (
        ("--trials", args.trials, 1),
        ("--epochs", args.epochs, 1),
        ("--seed", args.seed, 0),
    ):
        if value is not None and value < low:
            what = "a positive" if low else "a non-negative"
            raise InvalidArgumentError(
                f"{flag} must be {what} integer. Received: {flag} {value}"
            )
    if args.seed > 2**32 - 2:
        raise InvalidArgumentError(
            f"--seed must be an integer from 0 to {2**32 - 2}. "
            f"Received: --seed {args.seed}"
        )
    if args.limit is not None and args.limit < 50:
        raise InvalidArgumentError(
            "--limit must be an integer of at least 50. "
            f"Received: --limit {args.limit}"
        )

    verbose = 0 if args.quiet else (2 if args.verbose else 1)
    space = SearchSpace(
        models=_MODELS[args.model] or ("conv", "recurrent"),
        initializers=_names(args.initializers) if args.initializers else None,
        cells=_names(args.cells) if args.cells else None,
    )
    out = Console(highlight=False)
    if not out.is_terminal:
        # Piped or redirected: a wider table instead of 80 columns.
        out = Console(highlight=False, width=110)
    with warnings.catch_warnings():
        if verbose < 2:
            # Each trial's health verdict is in the results table.
            from kerasweights.health import GradientHealthWarning

            warnings.simplefilter("ignore", GradientHealthWarning)
        result = tune(
            space,
            tuner=args.tuner,
            trials=args.trials,
            epochs=args.epochs,
            seed=args.seed,
            output=args.output,
            overwrite=args.overwrite,
            limit=args.limit,
            display=Display(verbose),
        )
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if verbose >= 1:
        out.print(result.table())
    sys.stdout.flush()
    _print_summary(result)
    return 0
