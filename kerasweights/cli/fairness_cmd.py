"""``kerasweights fairness``: train a baseline and fairness-mitigated models
on a tabular data set and show the accuracy / fairness trade-off."""

import math
import os

__all__ = [
    "add_parser",
    "run",
    "METHOD_ALIASES",
    "DEFAULT_METHODS",
    "DEFAULT_OUT",
]

# Short names for the command line; any regularizer plugin name also works.
METHOD_ALIASES = {
    "dp": "demographic_parity_penalty",
    "eo": "equalized_odds_penalty",
    "mmd": "mmd_penalty",
    "adjusted_mmd": "adjusted_mmd_penalty",
    "correlation": "absolute_correlation_penalty",
    "zafar": "zafar_covariance_penalty",
    "prejudice": "prejudice_index_penalty",
    "adversarial": "adversarial_debiasing",
    "constrained": "rate_constrained_model",
}
DEFAULT_METHODS = "dp,eo,adversarial"
DEFAULT_EPOCHS = 5
DEFAULT_BATCH_SIZE = 256
# `constrained`: the setting `python -m benchmarks.fairness_adult --parts
# select` chose on a validation split of Adult for the joint demographic
# parity and equalized odds goal (`constrained_dp_eo` there). Rates are
# batch estimates, hence the larger batch.
CONSTRAINED_SETTINGS = {
    "constraint": "parity_and_equalized_odds",
    "epsilon": 0.025,
    "damping": 10.0,
    "proxy_temperature": 0.2,
    "multiplier_learning_rate": 0.2,
}
CONSTRAINED_TRAINING = {"epochs": 30, "batch_size": 1024}
# Not inside tune's default ``kerasweights-output``: a folder holding
# another command's files is refused by the output-folder claim.
DEFAULT_OUT = "kerasweights-fairness"
# What a run writes into --out (besides the manifest).
OUTPUT_ENTRIES = ("results.json", "fairness_tradeoff.png")
MAX_SEED = 2**32 - 1


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "fairness",
        help="train baseline and fairness-mitigated models, show trade-offs",
        description=(
            "Train a baseline classifier and one model per fairness method "
            "on a 70/30 split, then print accuracy, demographic parity and "
            "equalized odds differences (and per-group rates) and write a "
            "PNG of accuracy against each gap. Without --csv it uses the "
            "embedded UCI Adult data (label income, sensitive sex). The "
            "output folder must be new or empty, or hold only a previous "
            "fairness run (replaced with --overwrite); a folder holding "
            "other files is refused."
        ),
    )
    parser.add_argument("--csv", metavar="FILE", help="a CSV with a header")
    parser.add_argument("--label", metavar="COL", help="the binary label")
    parser.add_argument(
        "--sensitive", metavar="COL", help="the sensitive-attribute column"
    )
    parser.add_argument(
        "--positive-label",
        metavar="VALUE",
        help="the label value coded 1 (default: the larger value)",
    )
    parser.add_argument(
        "--method",
        default=DEFAULT_METHODS,
        help="comma-separated methods (any case): "
        + ", ".join(METHOD_ALIASES)
        + " or any regularizer plugin name (default: %(default)s)",
    )
    parser.add_argument(
        "--weight",
        type=float,
        default=1.0,
        help="penalty weight, or adversary alpha; positive, finite "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs of every method (default: {DEFAULT_EPOCHS}; "
        f"{CONSTRAINED_TRAINING['epochs']} for constrained)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"batch size of every method (default: {DEFAULT_BATCH_SIZE}; "
        f"{CONSTRAINED_TRAINING['batch_size']} for constrained)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help=f"seed of the split and the models, 0..{MAX_SEED} "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help="output folder for results.json and the PNG "
        "(default: ./%(default)s)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous fairness run in --out (never other files)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _check_args(args):
    from kerasweights.cli import UsageError

    if args.epochs is not None and args.epochs <= 0:
        raise UsageError(
            f"--epochs must be a positive integer. Received: {args.epochs}"
        )
    if args.batch_size is not None and args.batch_size <= 0:
        raise UsageError(
            "--batch-size must be a positive integer. Received: "
            f"{args.batch_size}"
        )
    if not (math.isfinite(args.weight) and args.weight > 0):
        raise UsageError(
            "--weight must be a positive finite number. Received: "
            f"{args.weight}"
        )
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(
            f"--seed must be an integer in 0..{MAX_SEED}. Received: {args.seed}"
        )
    if args.csv and not (args.label and args.sensitive):
        raise UsageError(
            "--csv needs --label COL and --sensitive COL. Received: "
            f"label={args.label!r}, sensitive={args.sensitive!r}"
        )
    if not args.csv and (args.label or args.sensitive):
        if args.label not in (
            None,
            "income-per-year",
        ) or args.sensitive not in (
            None,
            "sex",
            "race",
        ):
            raise UsageError(
                "--label/--sensitive without --csv apply to the embedded "
                "Adult data (label income-per-year, sensitive sex or race). "
                f"Received: label={args.label!r}, "
                f"sensitive={args.sensitive!r}"
            )


def _resolve_methods(text):
    from kerasweights.cli import UsageError
    from kerasweights.errors import PluginNotFoundError
    from kerasweights.registry import get_plugin

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--method must name a method. Received: {text!r}")
    resolved = []
    for name in names:
        try:
            record = get_plugin(METHOD_ALIASES.get(name, name), "regularizer")
        except PluginNotFoundError as exc:
            raise UsageError(
                f"--method {name!r} is not a fairness method; expected one "
                f"of {', '.join(METHOD_ALIASES)} or a regularizer plugin "
                f"name ({exc})"
            ) from exc
        if record.name == "fairness_model":
            raise UsageError(
                "--method must name a penalty, not the FairnessModel wrapper. "
                f"Received: {name!r}"
            )
        resolved.append((name, record))
    return resolved


def _claim_out(args):
    """Claim --out before training, so a refused or unwritable folder
    costs no training time and a user's files are never replaced."""
    from kerasweights.cli import UsageError
    from kerasweights.errors import OutputExistsError
    from kerasweights.export import claim_output_folder
    from kerasweights.export import read_manifest

    previous = read_manifest(args.out) if os.path.isdir(args.out) else None
    if previous is not None and previous.get("command") != "fairness":
        raise OutputExistsError(
            f"--out {args.out!r} holds a kerasweights "
            f"{previous.get('command', 'other')} run, not a fairness run; "
            "--overwrite replaces only a previous fairness run. Choose "
            "another folder. Nothing was changed."
        )
    try:
        claim_output_folder(
            args.out,
            OUTPUT_ENTRIES,
            "fairness",
            overwrite=args.overwrite,
            overwrite_option="--overwrite",
        )
    except OutputExistsError:
        raise
    except OSError as exc:
        raise UsageError(
            f"--out must be a folder kerasweights can create and write. "
            f"Received: {args.out!r} ({type(exc).__name__}: "
            f"{exc.strerror or exc})"
        ) from exc


def _load(args):
    from kerasweights.errors import InputDataError
    from kerasweights.fairness.data import load_csv
    from kerasweights.fairness.data import train_test_split

    if args.csv:
        data = load_csv(
            args.csv,
            label=args.label,
            sensitive=args.sensitive,
            positive_label=args.positive_label,
            min_group_rows=2,
        )
        source = args.csv
    else:
        from kerasweights.datasets.adult import load_adult

        data = load_adult(sensitive=args.sensitive or "sex")
        source = "UCI Adult (embedded)"
    train, test = train_test_split(data, 0.3, seed=args.seed)
    for part, name in ((train, "training"), (test, "test")):
        counts = [
            int((part.groups == g).sum()) for g in range(len(data.group_names))
        ]
        if min(counts) == 0:
            empty = data.group_names[counts.index(0)]
            raise InputDataError(
                f"Every group of the sensitive column `{data.sensitive_name}` "
                f"needs rows in the 70/30 {name} split. Received: group "
                f"{empty!r} with 0 rows there"
            )
    return data, train, test, source


def _predictor(n_features, seed):
    import keras

    init = keras.initializers.GlorotUniform
    inputs = keras.Input((n_features,), name="features")
    hidden = keras.layers.Dense(32, "relu", kernel_initializer=init(seed=seed))(
        inputs
    )
    out = keras.layers.Dense(
        1, "sigmoid", kernel_initializer=init(seed=seed + 1)
    )(hidden)
    return keras.Model(inputs, out, name="predictor")


def build_model(record, n_features, n_groups, weight, seed):
    """The Keras model that trains one method (None for the baseline)."""
    import keras

    from kerasweights.fairness import FairnessModel
    from kerasweights.fairness import FairnessPenalty

    predictor = _predictor(n_features, seed)
    if record is None:
        return predictor
    cls = record.obj
    if issubclass(cls, FairnessPenalty):
        import inspect

        kwargs = {}
        if "num_groups" in inspect.signature(cls.__init__).parameters:
            kwargs["num_groups"] = n_groups
        return FairnessModel(predictor, cls(**kwargs), penalty_weight=weight)
    if record.name == "adversarial_debiasing":
        return cls(
            predictor,
            num_groups=n_groups,
            alpha=weight,
            condition_on_label=True,
            adversary_optimizer=keras.optimizers.Adam(1e-2),
        )
    if record.name == "rate_constrained_model":
        return cls(predictor, num_groups=n_groups, **CONSTRAINED_SETTINGS)
    return cls(predictor, num_groups=n_groups)


def training_settings(record, args):
    """(epochs, batch size) of one method: the command line's if given,
    else the method's default."""
    constrained = record is not None and record.name == "rate_constrained_model"
    epochs = CONSTRAINED_TRAINING["epochs"] if constrained else DEFAULT_EPOCHS
    batch = (
        CONSTRAINED_TRAINING["batch_size"]
        if constrained
        else DEFAULT_BATCH_SIZE
    )
    return (
        epochs if args.epochs is None else args.epochs,
        batch if args.batch_size is None else args.batch_size,
    )


def evaluate(model, data):
    """Accuracy, gaps and per-group rates of ``model`` on ``data``."""
    from kerasweights.fairness import metrics as fm
    from kerasweights.fairness import prediction_model

    scores = prediction_model(model).predict(
        data.features, verbose=0, batch_size=4096
    )
    hard = (scores[:, 0] > 0.5).astype(int)
    report = fm.group_report(data.labels, hard, sensitive_features=data.groups)
    return {
        "accuracy": report.overall["accuracy"],
        "dp_difference": fm.demographic_parity_difference(
            data.labels, hard, sensitive_features=data.groups
        ),
        "eo_difference": fm.equalized_odds_difference(
            data.labels, hard, sensitive_features=data.groups
        ),
        "by_group": {
            data.group_names[g]: {
                k: report.by_group[g][k]
                for k in (
                    "selection_rate",
                    "true_positive_rate",
                    "false_positive_rate",
                    "accuracy",
                )
            }
            for g in report.groups
        },
    }


def train_and_evaluate(record, train, test, n_groups, args):
    import keras

    keras.utils.set_random_seed(args.seed)
    model = build_model(
        record, train.features.shape[1], n_groups, args.weight, args.seed
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy"
    )
    if record is None:
        x = train.features
    else:
        x = {"features": train.features, "group": train.groups}
    epochs, batch_size = training_settings(record, args)
    model.fit(
        x,
        train.labels.astype("float32"),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
    )
    row = evaluate(model, test)
    row["epochs"], row["batch_size"] = epochs, batch_size
    return row


def write_plot(results, path, title):
    """Accuracy against the DP and EO gaps, one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, key, label in (
        (axes[0], "dp_difference", "demographic parity difference"),
        (axes[1], "eo_difference", "equalized odds difference"),
    ):
        for row in results:
            ax.scatter(row[key], row["accuracy"])
            ax.annotate(
                row["method"],
                (row[key], row["accuracy"]),
                fontsize=8,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xlabel(label + " (lower is fairer)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args):
    import json

    _check_args(args)
    import tensorflow as tf

    # Each method is a new model, so Keras traces a new predict function;
    # TensorFlow's retracing advice is noise here.
    tf.get_logger().setLevel("ERROR")
    methods = _resolve_methods(args.method)
    data, train, test, source = _load(args)
    _claim_out(args)
    n_groups = len(data.group_names)
    results = []
    for name, record in [("baseline", None), *methods]:
        row = train_and_evaluate(record, train, test, n_groups, args)
        row["method"] = name
        results.append(row)

    title = (
        f"{os.path.basename(source)}: label {data.label_name}, "
        f"sensitive {data.sensitive_name}"
    )
    png = os.path.join(args.out, "fairness_tradeoff.png")
    write_plot(results, png, title)
    summary = {
        "data": source,
        "label": data.label_name,
        "positive_label": data.positive_label,
        "sensitive": data.sensitive_name,
        "groups": data.group_names,
        "train_rows": len(train),
        "test_rows": len(test),
        "epochs": DEFAULT_EPOCHS if args.epochs is None else args.epochs,
        "weight": args.weight,
        "seed": args.seed,
        "results": results,
        "plot": png,
    }
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    _print_table(summary)
    return 0


def _print_table(summary):
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"{summary['data']}: {summary['label']} by "
        f"{summary['sensitive']} (test rows {summary['test_rows']})"
    )
    table.add_column("method")
    for column in ("accuracy", "DP diff", "EO diff"):
        table.add_column(column, justify="right")
    for row in summary["results"]:
        table.add_row(
            row["method"],
            f"{row['accuracy']:.4f}",
            f"{row['dp_difference']:.4f}",
            f"{row['eo_difference']:.4f}",
        )
    console.print(table)

    groups = Table(title="per group (test split)")
    groups.add_column("method")
    groups.add_column("group")
    for column in ("selection rate", "TPR", "FPR", "accuracy"):
        groups.add_column(column, justify="right")
    for row in summary["results"]:
        for name in summary["groups"]:
            r = row["by_group"].get(name)
            if r is None:
                continue
            groups.add_row(
                row["method"],
                str(name),
                f"{r['selection_rate']:.3f}",
                f"{r['true_positive_rate']:.3f}",
                f"{r['false_positive_rate']:.3f}",
                f"{r['accuracy']:.3f}",
            )
    console.print(groups)
    console.print(f"plot: {summary['plot']}")
