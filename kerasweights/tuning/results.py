"""Trial records, their honest ranking, and the CSV / JSON files."""

import csv
import dataclasses
import json
import math

__all__ = ["TrialRecord", "rank_trials", "write_trials_csv", "write_json"]

COMPLETED = "completed"
FAILED = "failed"


@dataclasses.dataclass
class TrialRecord:
    """What happened in one trial.

    Attributes:
        trial_id: Keras Tuner's trial id.
        number: 1-based order in which the trial ran.
        hyperparameters: The active hyperparameter values.
        status: ``"completed"`` or ``"failed"``.
        score: The best validation accuracy, or ``None`` when failed.
        reason: Why the trial failed (symptom and step), else ``None``.
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


def rank_trials(records):
    """Order trials best first; non-finite and failed trials come last.

    Completed trials with a finite score are sorted by score, highest
    first (ties by run order); every other trial follows in run order.

    Args:
        records: `TrialRecord` objects.

    Returns:
        A new sorted list.
    """
    good = sorted(
        (r for r in records if r.finite), key=lambda r: (-r.score, r.number)
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
)


def write_trials_csv(path, ranked):
    """Write one row per trial, with one column per hyperparameter."""
    hp_names = sorted({k for r in ranked for k in r.hyperparameters})
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*_COLUMNS, *hp_names])
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
                    *(r.hyperparameters.get(n, "") for n in hp_names),
                ]
            )


def write_json(path, payload):
    """Write ``payload`` as indented JSON with a final newline."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, default=str)
        f.write("\n")
