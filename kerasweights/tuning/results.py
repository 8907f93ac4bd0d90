"""Trial records, their honest ranking, and the CSV / JSON files."""

import csv
import dataclasses
import json
import math

__all__ = [
    "TrialRecord",
    "plot_trials",
    "rank_trials",
    "write_trials_csv",
    "write_json",
]

COMPLETED = "completed"
FAILED = "failed"
PRUNED = "pruned"


@dataclasses.dataclass
class TrialRecord:
    """What happened in one trial.

    Attributes:
        trial_id: Keras Tuner's trial id.
        number: 1-based order in which the trial ran.
        hyperparameters: The active hyperparameter values.
        status: ``"completed"``, ``"failed"`` (non-finite or raised) or
            ``"pruned"`` (stopped early for exploding or vanishing
            gradients).
        score: The best value of the objective (validation accuracy by
            default), or ``None`` when failed or pruned.
        reason: Why the trial failed or was pruned (symptom and step),
            else ``None``.
        health: The gradient-health verdict (``"healthy"``, a problem name,
            ``"unavailable"`` when no health plugin is installed).
        health_problems: The problems the health callback listed.
        epochs: Epochs actually run.
        seconds: Wall time of the trial.
    """

    trial_id: str
    number: int
    hyperparameters: dict
    status: str = COMPLETED
    score: float = None
    reason: str = None
    health: str = "unavailable"
    health_problems: list = dataclasses.field(default_factory=list)
    epochs: int = 0
    seconds: float = 0.0
    worker: str = None

    @property
    def finite(self):
        """Whether the trial completed with a finite score."""
        return (
            self.status == COMPLETED
            and self.score is not None
            and math.isfinite(self.score)
        )

    def to_dict(self):
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        """The record `to_dict` wrote (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def rank_trials(records, direction="max"):
    """Order trials best first; non-finite, failed and pruned trials last.

    Completed trials with a finite score are sorted by score, best first
    (highest for ``direction="max"``, lowest for ``"min"``; ties by run
    order); every other trial follows in run order.

    Args:
        records: `TrialRecord` objects.
        direction: ``"max"`` or ``"min"``: which way the objective improves.

    Returns:
        A new sorted list.
    """
    sign = -1.0 if direction == "max" else 1.0
    good = sorted(
        (r for r in records if r.finite),
        key=lambda r: (sign * r.score, r.number),
    )
    bad = sorted((r for r in records if not r.finite), key=lambda r: r.number)
    return good + bad


_COLUMNS = (
    "rank",
    "trial_id",
    "number",
    "status",
    "val_accuracy",
    "health",
    "reason",
    "epochs",
    "seconds",
    "worker",
)


def write_trials_csv(path, ranked, objective="val_accuracy"):
    """Write one row per trial, with one column per hyperparameter.

    The score column is named after the objective (``val_accuracy`` by
    default).
    """
    hp_names = sorted({k for r in ranked for k in r.hyperparameters})
    columns = [objective if c == "val_accuracy" else c for c in _COLUMNS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*columns, *hp_names])
        for rank, r in enumerate(ranked, start=1):
            writer.writerow(
                [
                    rank,
                    r.trial_id,
                    r.number,
                    r.status,
                    "" if r.score is None else f"{r.score:.6f}",
                    r.health,
                    r.reason or "",
                    r.epochs,
                    f"{r.seconds:.2f}",
                    r.worker or "",
                    *(r.hyperparameters.get(n, "") for n in hp_names),
                ]
            )


def write_json(path, payload):
    """Write ``payload`` as indented JSON with a final newline."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, default=str)
        f.write("\n")


def _hp_columns(ranked, limit):
    """Top-level hyperparameters that vary across trials, most common first."""
    counts = {}
    for r in ranked:
        for key, value in r.hyperparameters.items():
            if key.startswith("tuner/"):
                continue
            counts.setdefault(key, set()).add(str(value))
    varied = [k for k, v in counts.items() if len(v) > 1]
    seen = {k: sum(k in r.hyperparameters for r in ranked) for k in varied}
    varied.sort(key=lambda k: (-seen[k], k))
    return varied[:limit]


def plot_trials(path, ranked, objective="val_accuracy", max_panels=8):
    """A PNG of the score by trial and by hyperparameter.

    The first panel shows every trial's score in run order (failed and
    pruned trials as red crosses on the bottom edge); each further panel
    shows the scores against one hyperparameter that varied in the search.

    Args:
        path: The ``.png`` file to write.
        ranked: `TrialRecord` objects.
        objective: The name of the score, for the axis labels.
        max_panels: At most this many hyperparameter panels.
    """
    # A bare Figure on the Agg canvas: no pyplot state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = _hp_columns(ranked, max_panels)
    panels = 1 + len(columns)
    ncols = min(3, panels)
    nrows = -(-panels // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    good = [r for r in ranked if r.finite]
    bad = [r for r in ranked if not r.finite]
    low = min((r.score for r in good), default=0.0)
    ax = axes[0]
    order = sorted(good, key=lambda r: r.number)
    ax.plot([r.number for r in order], [r.score for r in order], "o-", ms=4)
    if bad:
        ax.plot(
            [r.number for r in bad],
            [low] * len(bad),
            "x",
            color="tab:red",
            label="failed / pruned",
        )
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("trial (run order)")
    ax.set_ylabel(objective)
    ax.set_title("score by trial", fontsize=9)
    for ax, key in zip(axes[1:], columns, strict=False):
        values = sorted(
            {
                str(r.hyperparameters[key])
                for r in ranked
                if key in r.hyperparameters
            }
        )
        index = {v: i for i, v in enumerate(values)}
        xs = [
            index[str(r.hyperparameters[key])]
            for r in good
            if key in r.hyperparameters
        ]
        ys = [r.score for r in good if key in r.hyperparameters]
        ax.plot(xs, ys, "o", ms=4, alpha=0.7)
        bx = [
            index[str(r.hyperparameters[key])]
            for r in bad
            if key in r.hyperparameters
        ]
        ax.plot(bx, [low] * len(bx), "x", color="tab:red")
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(values, rotation=40, ha="right", fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.set_ylabel(objective, fontsize=8)
    for ax in axes[panels:]:
        ax.axis("off")
    # Fixed margins instead of tight_layout, which draws the figure an
    # extra time to measure it (most of the plot's cost).
    fig.subplots_adjust(
        left=0.08 if ncols > 1 else 0.18,
        right=0.98,
        bottom=0.32 / nrows if nrows > 1 else 0.3,
        top=1 - 0.08 / nrows,
        wspace=0.35,
        hspace=0.9,
    )
    fig.savefig(path, dpi=80)
