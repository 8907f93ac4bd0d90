"""``kerasweights tune``: the main job, a Keras Tuner search on digits."""

import json
import sys
import warnings

__all__ = ["add_parser", "run"]

_TUNERS = ("random", "hyperband", "bayesian", "grid")
_MODELS = {"conv": ("conv",), "recurrent": ("recurrent",), "both": None}
# The library's values (kerasweights.tuning.search.MAX_SEED and
# kerasweights.tuning.devices.STRATEGIES), here so that `check` needs no
# TensorFlow; tests/cli/test_lazy_start.py pins that they agree.
_MAX_SEED = 2**32 - 2
_STRATEGIES = ("auto", "one-device", "mirrored", "tpu")


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
        "--seed",
        type=int,
        default=0,
        help="seed of data, tuner and Keras, 0 to 4294967294 (default 0)",
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
        "--space",
        metavar="FILE",
        help="a YAML (.yaml/.yml) or Python (.py) file that restricts or "
        "extends the search space (see docs/tuning.md); --model, "
        "--initializers and --cells replace the file's values",
    )
    parser.add_argument(
        "--task",
        default="digits",
        metavar="NAME",
        help="digits (default: conv and recurrent models) or adult (dense "
        "income classifiers with the fairness penalty and its weight "
        "searched)",
    )
    parser.add_argument(
        "--objective",
        default="val_accuracy",
        metavar="NAME",
        help="val_accuracy (default, higher is better) or val_loss; with "
        "--task adult also val_fair_accuracy (accuracy minus the demographic "
        "parity difference, higher is better) or val_dp_difference (lower "
        "is better)",
    )
    parser.add_argument(
        "--prune-steps",
        type=int,
        default=40,
        metavar="N",
        help="prune a trial whose gradients explode or vanish within its "
        "first N optimizer steps (default 40)",
    )
    parser.add_argument(
        "--no-prune",
        action="store_true",
        help="never prune: every trial runs all its epochs unless it goes "
        "non-finite",
    )
    parser.add_argument(
        "--strategy",
        metavar="NAME",
        help="auto (every GPU through MirroredStrategy, else the CPU), "
        "one-device, mirrored or tpu (default: Keras' own placement)",
    )
    role = parser.add_mutually_exclusive_group()
    role.add_argument(
        "--chief",
        action="store_true",
        help="run Keras Tuner's chief oracle at --oracle HOST:PORT; it "
        "hands trials to the workers, then writes the results",
    )
    role.add_argument(
        "--worker",
        metavar="ID",
        help="run trials for the chief at --oracle as worker ID (e.g. tuner1)",
    )
    parser.add_argument(
        "--oracle",
        metavar="HOST:PORT",
        help="the chief's address (default: KERASTUNER_ORACLE_IP and "
        "KERASTUNER_ORACLE_PORT)",
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


def _print_summary(result, kept=()):
    """The summary lines; ``kept`` names the files a rerun left as they
    were (``"keras"``, ``"saved_model"``)."""
    best = result.best
    export = result.export
    verification = export["verification"]
    from kerasweights.export.verification import format_signature

    signature = format_signature(
        verification["inputs"], verification["outputs"]
    )

    failed = sum(1 for r in result.trials if r.status == "failed")
    pruned = sum(1 for r in result.trials if r.status == "pruned")
    objective = result.settings.get("objective", "val_accuracy")
    print(
        f"Best: trial {best.number} of {len(result.trials)} "
        f"({failed} failed, {pruned} pruned), {objective} "
        f"{best.score:.4f}, test accuracy "
        f"{result.test_accuracy:.4f}, gradient health {best.health}"
    )
    current = f"(best trial {best.number} unchanged; not exported again)"

    def wrote(what):
        if what in kept:
            return f"Kept {result.files[what]}, current {current}"
        return f"Wrote {result.files[what]}"

    lines = [
        wrote("keras"),
        wrote("saved_model"),
        f"  serving signature: {signature}",
        "  verified in a fresh process without kerasweights "
        f"{'when it was written, ' if 'saved_model' in kept else ''}on "
        f"{len(verification['cases'])} test "
        f"{'batch' if len(verification['cases']) == 1 else 'batches'} "
        f"{[list(c.values())[0] for c in verification['cases']]}, max "
        f"difference {verification['max_abs_diff']:.2g}",
        f"Wrote {result.files['trials_csv']}, {result.files['trials_json']}, "
        f"{result.files['trials_png']} and {result.files['summary']}",
        f"Finished in {result.seconds:.0f}s",
    ]
    for line in lines:
        print(line)


def _distributed(args):
    """``None`` or the chief/worker settings from the flags or environment."""
    import os

    from kerasweights.errors import InvalidArgumentError

    env_id = os.environ.get("KERASTUNER_TUNER_ID")
    env_ip = os.environ.get("KERASTUNER_ORACLE_IP")
    env_port = os.environ.get("KERASTUNER_ORACLE_PORT")
    role = "chief" if args.chief else ("worker" if args.worker else None)
    tuner_id = args.worker
    if role is None and env_ip:
        # Keras Tuner's own variables select the role when no flag does.
        if not env_id:
            raise InvalidArgumentError(
                "KERASTUNER_ORACLE_IP is set but KERASTUNER_TUNER_ID is not; "
                "expected 'chief' or a worker id, or use --chief/--worker"
            )
        role = "chief" if "chief" in env_id else "worker"
        tuner_id = env_id
    if role is None:
        if args.oracle:
            raise InvalidArgumentError(
                "--oracle needs --chief or --worker ID. Received: --oracle "
                f"{args.oracle}"
            )
        return None
    address = args.oracle
    if address is None:
        if not env_ip or not env_port:
            flag = "--chief" if role == "chief" else f"--worker {tuner_id}"
            raise InvalidArgumentError(
                f"{flag} needs the chief's address: --oracle HOST:PORT or "
                "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT"
            )
        address = f"{env_ip}:{env_port}"
    out = {"role": role, "address": address}
    if role == "worker":
        out["tuner_id"] = tuner_id
    return out


def check(args):
    """Every flag that needs no search space, before TensorFlow is
    imported (a test pins the constants to the library's)."""
    from kerasweights.errors import InvalidArgumentError

    if args.tuner not in _TUNERS:
        from kerasweights.cli import choice_error

        raise choice_error("--tuner", args.tuner, _TUNERS)
    if args.tuner == "hyperband" and args.trials is not None:
        raise InvalidArgumentError(
            "--trials does not apply to --tuner hyperband (it sizes its own "
            "brackets from --epochs); leave it out. Received: --trials "
            f"{args.trials}"
        )
    for flag, value in (("--trials", args.trials), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            raise InvalidArgumentError(
                f"{flag} must be a positive integer. Received: {flag} {value}"
            )
    if not 0 <= args.seed <= _MAX_SEED:
        # The tuner is seeded with seed + 1 (Keras Tuner reads 0 as "no
        # seed"), and NumPy seeds stop at 2**32 - 1.
        raise InvalidArgumentError(
            f"--seed must be an integer from 0 to {_MAX_SEED}. "
            f"Received: --seed {args.seed}"
        )
    if not args.output:
        raise InvalidArgumentError(
            "--output must name a folder (an empty path would mean the "
            "current folder). Received: --output ''"
        )
    if args.limit is not None and args.limit < 50:
        raise InvalidArgumentError(
            "--limit must be an integer of at least 50. "
            f"Received: --limit {args.limit}"
        )

    if args.task not in ("digits", "adult"):
        raise InvalidArgumentError(
            f"--task must be digits or adult. Received: --task {args.task!r}"
        )
    objectives = ["val_accuracy", "val_loss"]
    if args.task == "adult":
        objectives += ["val_fair_accuracy", "val_dp_difference"]
    if args.objective not in objectives:
        raise InvalidArgumentError(
            f"--objective must be one of {', '.join(objectives)} for --task "
            f"{args.task}. Received: --objective {args.objective!r}"
        )
    if args.prune_steps < 1:
        raise InvalidArgumentError(
            "--prune-steps must be a positive integer. Received: "
            f"--prune-steps {args.prune_steps}"
        )
    if args.strategy is not None and args.strategy not in _STRATEGIES:
        raise InvalidArgumentError(
            f"--strategy must be one of {', '.join(_STRATEGIES)}. "
            f"Received: --strategy {args.strategy!r}"
        )
    _distributed(args)


def run(args):
    from rich.console import Console

    from kerasweights.errors import InvalidArgumentError
    from kerasweights.tuning import SearchSpace
    from kerasweights.tuning.display import Display
    from kerasweights.tuning.search import tune

    check(args)
    distributed = _distributed(args)

    verbose = 0 if args.quiet else (2 if args.verbose else 1)
    overrides = {
        "models": _MODELS[args.model] if args.model != "both" else None,
        "initializers": _names(args.initializers)
        if args.initializers
        else None,
        "cells": _names(args.cells) if args.cells else None,
    }
    if args.space is not None:
        from kerasweights.tuning.spacefile import load_space_file

        space = load_space_file(args.space, **overrides)
    elif args.task == "adult":
        # Adult uses the dense-kernel slot and the dense sizes only.
        space = SearchSpace(
            models=["conv"], initializers=overrides["initializers"]
        )
    else:
        space = SearchSpace(
            models=overrides["models"] or ("conv", "recurrent"),
            initializers=overrides["initializers"],
            cells=overrides["cells"],
        )
    if args.cells and "recurrent" not in space.models:
        raise InvalidArgumentError(
            "--cells applies to recurrent models, and this search has none "
            f"(models: {', '.join(space.models)}); drop --cells or search "
            f"recurrent models. Received: --cells {args.cells}"
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
            objective=args.objective,
            prune=not args.no_prune,
            prune_steps=args.prune_steps,
            strategy=args.strategy,
            distributed=distributed,
            task=args.task,
        )
    if distributed is not None and distributed["role"] == "worker":
        ran = ", ".join(r.trial_id for r in result.trials) or "none"
        print(
            f"Worker {distributed['tuner_id']} ran trials {ran}; the chief "
            f"writes the results in {result.output}"
        )
        return 0
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    if verbose >= 1:
        out.print(result.table())
    sys.stdout.flush()
    kept = ("keras", "saved_model") if result.export_kept else ()
    _print_summary(result, kept)
    return 0
