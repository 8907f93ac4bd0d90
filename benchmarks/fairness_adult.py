"""Fairness benchmark: Adult (sex) trade-offs, COMPAS (race) FPR gap, and
the speed of an adversarial training step against fairlearn's TensorFlow
backend.

    python -m benchmarks.fairness_adult --quick    # about 3 minutes
    python -m benchmarks.fairness_adult            # the documented run

Adult: the embedded data (30,162 rows), one fixed 70/30 split (seed 0),
``--seeds`` training seeds per method; for each method the test accuracy,
demographic parity difference and equalized odds difference (fairlearn's
definitions, our NumPy implementation), as mean and standard deviation
over seeds. COMPAS: ``compas-two-year.csv.gz`` read from ``--data-dir``
(default ``../shared/data`` relative to the repository), rows of
African-American and Caucasian defendants, label ``two_year_recid``,
``sex-race`` left out (it encodes race); the false-positive-rate gap of the
baseline and of the FPR-constrained model. Speed: median seconds per
training step (batch 256) of `AdversarialDebiasingModel` (timed over
``train_on_batch`` calls after a warm-up epoch) and of fairlearn's
``AdversarialFairnessClassifier(backend="tensorflow")`` (one epoch's ``fit``
divided by its steps) on the same rows, in the same run.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _predictor(n_features, seed, width=32):
    import keras

    init = keras.initializers.GlorotUniform
    inputs = keras.Input((n_features,), name="features")
    hidden = keras.layers.Dense(
        width, "relu", kernel_initializer=init(seed=seed)
    )(inputs)
    out = keras.layers.Dense(
        1, "sigmoid", kernel_initializer=init(seed=seed + 1)
    )(hidden)
    return keras.Model(inputs, out)


def methods():
    """name -> factory(predictor, n_groups) (None: the plain baseline)."""
    import keras

    from kerasweights import fairness as f

    return {
        "baseline": None,
        "dp_penalty": lambda p, n: f.FairnessModel(
            p, f.DemographicParityPenalty(num_groups=n), penalty_weight=1.0
        ),
        "eo_penalty": lambda p, n: f.FairnessModel(
            p, f.EqualizedOddsPenalty(num_groups=n), penalty_weight=1.0
        ),
        "mmd_penalty": lambda p, n: f.FairnessModel(
            p, f.MMDPenalty(), penalty_weight=1.0
        ),
        "adversarial_eo": lambda p, n: f.AdversarialDebiasingModel(
            p,
            num_groups=n,
            alpha=3.0,
            condition_on_label=True,
            adversary_optimizer=keras.optimizers.Adam(1e-2),
        ),
        "constrained_dp": lambda p, n: f.RateConstrainedModel(
            p,
            constraint="demographic_parity",
            epsilon=0.01,
            num_groups=n,
            multiplier_learning_rate=0.05,
        ),
        "constrained_dp_eo": lambda p, n: f.RateConstrainedModel(
            p,
            constraint="parity_and_equalized_odds",
            epsilon=0.01,
            num_groups=n,
            multiplier_learning_rate=0.05,
        ),
        "dp_penalty_x3": lambda p, n: f.FairnessModel(
            p, f.DemographicParityPenalty(num_groups=n), penalty_weight=3.0
        ),
        "constrained_dp_eo_fast": lambda p, n: f.RateConstrainedModel(
            p,
            constraint="parity_and_equalized_odds",
            epsilon=0.02,
            num_groups=n,
            multiplier_learning_rate=0.3,
        ),
        "constrained_fpr": lambda p, n: f.RateConstrainedModel(
            p,
            constraint="false_positive_parity",
            epsilon=0.01,
            num_groups=n,
            multiplier_learning_rate=0.1,
        ),
        "constrained_fpr_strong": lambda p, n: f.RateConstrainedModel(
            p,
            constraint="false_positive_parity",
            epsilon=0.0,
            num_groups=n,
            multiplier_learning_rate=1.0,
        ),
    }


def train(name, factory, train_data, n_groups, seed, epochs, batch_size):
    import keras

    from kerasweights.fairness import prediction_model

    keras.utils.set_random_seed(seed)
    predictor = _predictor(train_data.features.shape[1], seed)
    model = predictor if factory is None else factory(predictor, n_groups)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        jit_compile=True,
    )
    if factory is None:
        x = train_data.features
    else:
        x = {"features": train_data.features, "group": train_data.groups}
    model.fit(
        x,
        train_data.labels.astype("float32"),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
    )
    return prediction_model(model)


def scores(model, data):
    from kerasweights.fairness import metrics as fm

    hard = (
        model.predict(data.features, verbose=0, batch_size=8192)[:, 0] > 0.5
    ).astype(int)
    kw = dict(sensitive_features=data.groups)
    return {
        "accuracy": float((hard == data.labels).mean()),
        "dp": fm.demographic_parity_difference(data.labels, hard, **kw),
        "eo": fm.equalized_odds_difference(data.labels, hard, **kw),
        "fpr_gap": fm.group_report(data.labels, hard, **kw).difference(
            "false_positive_rate"
        ),
    }


def _summary(rows):
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        out[key] = {
            "mean": statistics.fmean(values),
            "std": statistics.pstdev(values),
            "min": min(values),
            "max": max(values),
        }
    return out


def adult(args, log):
    from kerasweights.datasets.adult import load_adult
    from kerasweights.fairness.data import train_test_split

    data = load_adult("sex")
    train_data, test_data = train_test_split(data, 0.3, seed=0)
    table = {}
    for name, factory in methods().items():
        if args.only and name not in args.only:
            continue
        if name.startswith("constrained_fpr"):
            continue
        test_rows, train_rows = [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            model = train(name, factory, train_data, 2, seed, args.epochs, 256)
            test_rows.append(scores(model, test_data))
            train_rows.append(scores(model, train_data))
            log(
                f"adult {name} seed {seed}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in test_rows[-1].items())
                + f" ({time.perf_counter() - start:.0f}s)"
            )
        table[name] = {
            "test": _summary(test_rows),
            "train": _summary(train_rows),
        }
    return table


def compas(args, log):
    from kerasweights.fairness.data import load_csv
    from kerasweights.fairness.data import train_test_split

    path = os.path.join(args.data_dir, "compas-two-year.csv.gz")
    data = load_csv(
        path,
        label="two_year_recid",
        sensitive="race",
        positive_label="1",
        drop_columns=("sex-race",),
    )
    keep = [
        data.group_names.index("African-American"),
        data.group_names.index("Caucasian"),
    ]
    mask = (data.groups == keep[0]) | (data.groups == keep[1])
    data = data.subset(mask)
    data.groups = (data.groups == keep[1]).astype(int)
    data.group_names = ["African-American", "Caucasian"]
    train_data, test_data = train_test_split(data, 0.3, seed=0)
    result = {}
    factories = methods()
    for name in args.compas_methods.split(","):
        rows = []
        for seed in range(args.seeds):
            model = train(
                name,
                factories[name],
                train_data,
                2,
                seed,
                args.compas_epochs,
                64,
            )
            rows.append(scores(model, test_data))
            log(
                f"compas {name} seed {seed}: fpr_gap {rows[-1]['fpr_gap']:.4f}"
                f", accuracy {rows[-1]['accuracy']:.4f}"
            )
        result[name] = _summary(rows)
    if "baseline" in result:
        base = result["baseline"]["fpr_gap"]["mean"]
        for name in list(result):
            if name != "baseline":
                ours = result[name]["fpr_gap"]["mean"]
                result[name]["fpr_gap_cut"] = 1.0 - ours / base
    result["rows"] = len(data)
    return result


def speed(args, log):
    """Median seconds per adversarial step, ours and fairlearn's."""
    import numpy as np

    from kerasweights.datasets.adult import load_adult
    from kerasweights.fairness import AdversarialDebiasingModel

    data = load_adult("sex")
    n = args.speed_rows
    x, y, g = data.features[:n], data.labels[:n], data.groups[:n]
    steps = int(np.ceil(n / 256))

    model = AdversarialDebiasingModel(
        _predictor(x.shape[1], 0), condition_on_label=False
    )
    model.compile("adam", "binary_crossentropy", jit_compile=True)
    feed = {"features": x, "group": g}
    model.fit(feed, y, epochs=1, batch_size=256, verbose=0)  # compile
    ours = []
    for _ in range(3):
        start = time.perf_counter()
        for first in range(0, n - 255, 256):
            batch = slice(first, first + 256)
            model.train_on_batch(
                {"features": x[batch], "group": g[batch]}, y[batch]
            )
        ours.append((time.perf_counter() - start) / (n // 256))
    result = {
        "rows": n,
        "batch_size": 256,
        "ours_s_per_step": statistics.median(ours),
    }
    try:
        from fairlearn.adversarial import AdversarialFairnessClassifier

        theirs = []
        for _ in range(2):
            clf = AdversarialFairnessClassifier(
                backend="tensorflow",
                predictor_model=[32, "relu"],
                adversary_model=[],
                batch_size=256,
                epochs=1,
                shuffle=False,
                random_state=0,
            )
            start = time.perf_counter()
            clf.fit(x, y, sensitive_features=g)
            theirs.append((time.perf_counter() - start) / steps)
        result["fairlearn_s_per_step"] = statistics.median(theirs)
        result["speedup"] = (
            result["fairlearn_s_per_step"] / result["ours_s_per_step"]
        )
    except Exception as exc:  # report, do not hide, a broken baseline
        result["fairlearn_error"] = f"{type(exc).__name__}: {exc}"
    log(f"speed: {result}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--compas-epochs", type=int, default=30)
    parser.add_argument("--speed-rows", type=int, default=8192)
    parser.add_argument(
        "--data-dir",
        default=os.path.normpath(os.path.join(REPO, "..", "shared", "data")),
    )
    parser.add_argument("--only", nargs="*", help="Adult methods to run")
    parser.add_argument("--json", metavar="FILE", help="write results here")
    parser.add_argument("--png", metavar="FILE", help="write the plot here")
    parser.add_argument(
        "--compas-methods",
        default="baseline,constrained_fpr,constrained_fpr_strong",
        help="COMPAS methods (default: %(default)s)",
    )
    parser.add_argument(
        "--parts",
        default="adult,compas,speed",
        help="comma-separated parts to run (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.compas_epochs = 1, 3, 10
        args.speed_rows = 2048

    def log(text):
        print(text, file=sys.stderr, flush=True)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    started = time.perf_counter()
    results = {
        "command": "python -m benchmarks.fairness_adult "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "seeds": args.seeds,
        "epochs": args.epochs,
    }
    parts = set(args.parts.split(","))
    for part, fn in (("adult", adult), ("compas", compas), ("speed", speed)):
        if part in parts:
            results[part] = fn(args, log)
    results["wall_s"] = time.perf_counter() - started
    print_table(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    if args.png and "adult" in results:
        plot(results, args.png)
    return 0


def plot(results, path):
    """Adult test accuracy against DP and EO differences, mean ± std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, key, label in (
        (axes[0], "dp", "demographic parity difference"),
        (axes[1], "eo", "equalized odds difference"),
    ):
        for name, row in results["adult"].items():
            t = row["test"]
            ax.errorbar(
                t[key]["mean"],
                t["accuracy"]["mean"],
                xerr=t[key]["std"],
                yerr=t["accuracy"]["std"],
                fmt="o",
                capsize=3,
            )
            ax.annotate(
                name,
                (t[key]["mean"], t["accuracy"]["mean"]),
                fontsize=7,
                xytext=(4, 3),
                textcoords="offset points",
            )
        ax.axvline(0.05, color="grey", ls=":", lw=1)
        ax.set_xlabel(label + " (test)")
        ax.grid(alpha=0.3)
    axes[0].axhline(0.80, color="grey", ls=":", lw=1)
    axes[1].axhline(0.80, color="grey", ls=":", lw=1)
    axes[0].set_ylabel("test accuracy")
    fig.suptitle(
        f"Adult, sensitive sex: {results['seeds']} seeds, "
        f"{results['epochs']} epochs (mean ± std)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(results):
    if "adult" in results:
        _print_adult(results)
    if "compas" in results:
        _print_compas(results)
    if "speed" in results:
        _print_speed(results)
    print(f"wall time {results['wall_s']:.0f} s")


def _print_adult(results):
    print(
        f"Adult, sensitive sex, 70/30 split, {results['seeds']} seeds, "
        f"{results['epochs']} epochs (test split; mean ± std)"
    )
    print(
        "| method | accuracy | DP difference | EO difference |"
        " DP difference (train) |"
    )
    print("|---|---|---|---|---|")
    for name, row in results["adult"].items():
        t, tr = row["test"], row["train"]
        print(
            f"| {name} | {t['accuracy']['mean']:.4f} ± "
            f"{t['accuracy']['std']:.4f} | {t['dp']['mean']:.4f} ± "
            f"{t['dp']['std']:.4f} | {t['eo']['mean']:.4f} ± "
            f"{t['eo']['std']:.4f} | {tr['dp']['mean']:.4f} |"
        )


def _print_compas(results):
    c = results["compas"]
    print(
        f"\nCOMPAS (African-American vs Caucasian, {c['rows']} rows), "
        "test FPR gap:"
    )
    for name, row in c.items():
        if not isinstance(row, dict):
            continue
        cut = row.get("fpr_gap_cut")
        print(
            f"  {name}: {row['fpr_gap']['mean']:.4f} ± "
            f"{row['fpr_gap']['std']:.4f} (accuracy "
            f"{row['accuracy']['mean']:.4f})"
            + ("" if cut is None else f", gap cut {100 * cut:.1f}%")
        )


def _print_speed(results):
    s = results["speed"]
    print(
        f"\nAdversarial step (batch 256, {s['rows']} rows): ours "
        f"{1000 * s['ours_s_per_step']:.2f} ms",
        end="",
    )
    if "fairlearn_s_per_step" in s:
        print(
            f", fairlearn TF {1000 * s['fairlearn_s_per_step']:.2f} ms, "
            f"ratio {s['speedup']:.1f}x"
        )
    else:
        print(f", fairlearn failed: {s.get('fairlearn_error')}")


if __name__ == "__main__":
    sys.exit(main())
