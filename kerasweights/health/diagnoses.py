"""Diagnoses: what went wrong in training, where, when, and what to do.

Each detector reads the list of `StepRecord` objects recorded so far and
returns the `Diagnosis` objects it finds. Detectors need evidence that
persists over a window of recorded steps (``patience``) before they fire,
so one noisy mini-batch does not raise an alarm, and none of them looks at
accuracy: a healthy run passes on its own gradients and loss.
"""

import dataclasses
import math
import statistics

import numpy as np

__all__ = ["Diagnosis", "Thresholds", "diagnose", "DIAGNOSES", "FIXES"]

# Every diagnosis name, in the order the detectors run.
DIAGNOSES = (
    "nan",
    "exploding",
    "vanishing",
    "dead_relu",
    "saturated",
    "update_ratio_high",
    "update_ratio_low",
    "loss_not_decreasing",
    "oscillating",
)

FIXES = {
    "nan": (
        "lower the learning rate, clip gradients (clipnorm=1.0), check the "
        "data for NaN/Inf and the loss for log(0) or division by zero"
    ),
    "exploding": (
        "lower the learning rate, clip gradients (clipnorm or "
        "global_clipnorm), normalise the inputs, or use a variance-"
        "preserving initializer"
    ),
    "vanishing": (
        "use ReLU-family activations or residual connections, a variance-"
        "preserving initializer (He/Glorot/orthogonal), or normalisation "
        "layers"
    ),
    "dead_relu": (
        "lower the learning rate, initialise biases at zero or slightly "
        "positive, or use LeakyReLU/GELU"
    ),
    "saturated": (
        "normalise the inputs, use a smaller-variance initializer "
        "(Glorot), or switch to ReLU-family activations"
    ),
    "update_ratio_high": (
        "the learning rate is too high for this model: lower it by 10x or more"
    ),
    "update_ratio_low": (
        "the learning rate is too low (or the gradients vanish): raise it, "
        "or check for vanishing gradients"
    ),
    "loss_not_decreasing": (
        "check the learning rate (too low or too high), the labels and the "
        "loss function, and that the model can represent the task"
    ),
    "oscillating": (
        "lower the learning rate or add a decay schedule; a larger batch "
        "also helps"
    ),
}


@dataclasses.dataclass
class Diagnosis:
    """One problem found in training.

    Attributes:
        name: The problem, one of `DIAGNOSES`.
        layer: The layer key where it shows first (None for the loss).
        step: The recorded optimizer step where it was established.
        evidence: The numbers behind it, in words.
        fix: What usually cures it.
    """

    name: str
    layer: str | None
    step: int
    evidence: str
    fix: str

    def to_dict(self):
        return dataclasses.asdict(self)

    def __str__(self):
        where = f" in {self.layer}" if self.layer else ""
        return (
            f"{self.name}{where} at step {self.step}: {self.evidence}. "
            f"Fix: {self.fix}"
        )


@dataclasses.dataclass
class Thresholds:
    """The numbers the detectors compare against (see docs/health.md).

    Attributes:
        patience: Recorded steps in a row a symptom must persist.
        explode_norm: Global gradient norm above which gradients explode.
        explode_growth: Growth of the global norm over the patience window
            (last / first) that also counts as exploding.
        vanish_norm: Gradient norm of the first layer below which it
            receives no signal.
        vanish_ratio: First-layer / last-layer gradient norm ratio below
            which gradients vanish on the way down.
        dead_fraction: Fraction of a ReLU layer's units dead (zero on the
            whole batch for ``dead_steps`` recorded steps in a row).
        saturation_fraction: Fraction of a tanh/sigmoid layer's outputs
            within 0.01 of their bounds.
        update_ratio_high: Median ||update|| / ||weights|| over the
            patience window above which the learning rate is too high.
        update_ratio_low: ||update|| / ||weights|| below which (on every
            step of the window) the learning rate is too low.
        loss_window: Recorded steps compared by the loss detectors.
    """

    patience: int = 5
    explode_norm: float = 1e4
    explode_growth: float = 1e3
    vanish_norm: float = 1e-7
    vanish_ratio: float = 1e-4
    dead_fraction: float = 0.5
    saturation_fraction: float = 0.9
    update_ratio_high: float = 0.1
    update_ratio_low: float = 1e-6
    loss_window: int = 20


def _first(seq, predicate):
    for item in seq:
        if predicate(item):
            return item
    return None


def _detect_nan(records, t, first_bad_loss_step):
    for rec in records:
        if rec.skipped:
            continue
        where = None
        for layer in rec.layers:
            if layer.nonfinite:
                where = (layer.name, "gradients", layer.nonfinite)
                break
        if where is None:
            for layer in rec.layers:
                if layer.weight_nonfinite:
                    where = (layer.name, "weights", layer.weight_nonfinite)
                    break
        if where is None and not math.isfinite(rec.loss):
            where = (None, "loss", 1)
        if where is not None:
            name, what, count = where
            return [
                Diagnosis(
                    "nan",
                    name,
                    rec.step,
                    f"{count} non-finite value(s) in the {what} "
                    f"(loss={rec.loss:.4g})",
                    FIXES["nan"],
                )
            ]
    if first_bad_loss_step is not None:
        return [
            Diagnosis(
                "nan",
                None,
                first_bad_loss_step,
                "the training loss became non-finite",
                FIXES["nan"],
            )
        ]
    return []


def _usable(records):
    return [r for r in records if not r.skipped and r.grad_nonfinite == 0]


def _windows(records, length):
    """Every run of ``length`` consecutive usable records."""
    for end in range(length, len(records) + 1):
        yield records[end - length : end]


def _detect_exploding(records, t):
    recs = _usable(records)
    for win in _windows(recs, t.patience):
        norms = [r.global_norm for r in win]
        if min(norms) > t.explode_norm:
            return [
                Diagnosis(
                    "exploding",
                    _largest_layer(win[-1]),
                    win[-1].step,
                    f"global gradient norm above {t.explode_norm:g} for "
                    f"{t.patience} recorded steps (last {norms[-1]:.3g})",
                    FIXES["exploding"],
                )
            ]
        if (
            norms[0] > 0
            and all(b >= a for a, b in zip(norms, norms[1:], strict=False))
            and norms[-1] / norms[0] > t.explode_growth
            and norms[-1] > 1.0
        ):
            return [
                Diagnosis(
                    "exploding",
                    _largest_layer(win[-1]),
                    win[-1].step,
                    f"global gradient norm grew {norms[-1] / norms[0]:.3g}x "
                    f"over {t.patience} recorded steps, to {norms[-1]:.3g}",
                    FIXES["exploding"],
                )
            ]
    return []


def _largest_layer(rec):
    best = max(rec.layers, key=lambda layer: layer.norm, default=None)
    return best.name if best else None


def _detect_vanishing(records, t):
    recs = _usable(records)
    if not recs or len(recs[0].layers) < 2:
        return []
    for win in _windows(recs, t.patience):
        ratios, firsts = [], []
        for r in win:
            first, last = r.layers[0].norm, r.layers[-1].norm
            firsts.append(first)
            ratios.append(first / last if last > 0 else math.inf)
        loss_alive = all(r.loss > 1e-3 for r in win)
        if not loss_alive:
            continue
        if max(ratios) < t.vanish_ratio:
            return [
                Diagnosis(
                    "vanishing",
                    win[-1].layers[0].name,
                    win[-1].step,
                    f"first/last layer gradient norm ratio below "
                    f"{t.vanish_ratio:g} for {t.patience} recorded steps "
                    f"(last {ratios[-1]:.3g})",
                    FIXES["vanishing"],
                )
            ]
        if max(firsts) < t.vanish_norm:
            return [
                Diagnosis(
                    "vanishing",
                    win[-1].layers[0].name,
                    win[-1].step,
                    f"first layer gradient norm below {t.vanish_norm:g} for "
                    f"{t.patience} recorded steps (last {firsts[-1]:.3g})",
                    FIXES["vanishing"],
                )
            ]
    return []


def _detect_dead_relu(records, t):
    for rec in _usable(records):
        for layer in rec.layers:
            if (
                layer.units
                and layer.dead_units / layer.units >= t.dead_fraction
            ):
                return [
                    Diagnosis(
                        "dead_relu",
                        layer.name,
                        rec.step,
                        f"{layer.dead_units} of {layer.units} units output "
                        "zero for the whole batch on consecutive recorded "
                        "steps",
                        FIXES["dead_relu"],
                    )
                ]
    return []


def _detect_saturated(records, t):
    recs = _usable(records)
    for win in _windows(recs, t.patience):
        for i, layer in enumerate(win[-1].layers):
            values = [r.layers[i].saturation for r in win]
            if any(v is None for v in values):
                continue
            if min(values) >= t.saturation_fraction:
                return [
                    Diagnosis(
                        "saturated",
                        layer.name,
                        win[-1].step,
                        f"{100 * min(values):.0f}% or more of the outputs "
                        f"at their bounds for {t.patience} recorded steps",
                        FIXES["saturated"],
                    )
                ]
    return []


def _detect_update_ratio(records, t):
    recs = _usable(records)
    for win in _windows(recs, t.patience):
        ratios = [r.update_ratio for r in win]
        if any(not math.isfinite(x) for x in ratios):
            continue
        median = statistics.median(ratios)
        if median > t.update_ratio_high:
            return [
                Diagnosis(
                    "update_ratio_high",
                    None,
                    win[-1].step,
                    f"update/weight norm ratio {median:.3g} (about 1e-3 is "
                    f"typical) for {t.patience} recorded steps",
                    FIXES["update_ratio_high"],
                )
            ]
        if max(ratios) < t.update_ratio_low:
            return [
                Diagnosis(
                    "update_ratio_low",
                    None,
                    win[-1].step,
                    f"update/weight norm ratio {median:.3g} (about 1e-3 is "
                    f"typical) for {t.patience} recorded steps",
                    FIXES["update_ratio_low"],
                )
            ]
    return []


def _smoothed(losses, width):
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) < width:
        return losses
    kernel = np.ones(width) / width
    return np.convolve(losses, kernel, mode="valid")


def _detect_loss_not_decreasing(records, t):
    recs = [r for r in _usable(records) if math.isfinite(r.loss)]
    if len(recs) < 2 * t.loss_window:
        return []
    losses = [r.loss for r in recs]
    smooth = _smoothed(losses, t.loss_window)
    start, best = smooth[0], float(np.min(smooth))
    if best >= start * 0.99 - 1e-12:
        return [
            Diagnosis(
                "loss_not_decreasing",
                None,
                recs[-1].step,
                f"smoothed loss never fell below {start:.4g} in "
                f"{len(recs)} recorded steps",
                FIXES["loss_not_decreasing"],
            )
        ]
    return []


def _detect_oscillating(records, t, start_loss):
    recs = [r for r in _usable(records) if math.isfinite(r.loss)]
    window = t.loss_window
    if len(recs) < 2 * window or start_loss is None:
        return []
    losses = np.asarray([r.loss for r in recs[-2 * window :]])
    level = float(np.median(losses))
    jumps = float(np.median(np.abs(np.diff(losses))))
    early = float(np.mean(losses[:window]))
    late = float(np.mean(losses[window:]))
    # Jumps as large as the loss itself, no downward trend, and the loss
    # still far from where a converged run's noise would sit.
    if (
        level > 0
        and jumps > level
        and late > 0.9 * early
        and level > 0.5 * start_loss
    ):
        return [
            Diagnosis(
                "oscillating",
                None,
                recs[-1].step,
                f"median step-to-step loss change {jumps:.3g} exceeds the "
                f"median loss {level:.3g}, with no downward trend over "
                f"{2 * window} recorded steps",
                FIXES["oscillating"],
            )
        ]
    return []


def diagnose(
    records, thresholds=None, first_bad_loss_step=None, skip=(), new=None
):
    """Runs every detector over the records.

    Detectors look only at windows that end in the ``new`` latest records,
    so calling this after every read costs time proportional to what was
    read, not to the whole history.

    Args:
        records: Every `StepRecord` so far, in step order.
        thresholds: A `Thresholds`; defaults when None.
        first_bad_loss_step: The first step with a non-finite loss, as the
            tap tracks it on every step, or None.
        skip: Names of diagnoses not to run (already reported).
        new: How many of the records are new since the last call (None:
            all of them).

    Returns:
        A list of `Diagnosis`, at most one per name.
    """
    t = thresholds or Thresholds()
    records = list(records)
    new = len(records) if new is None else min(int(new), len(records))
    fresh = records[len(records) - new :]
    tail = records[max(0, len(records) - new - t.patience + 1) :]
    loss_tail = records[max(0, len(records) - new - 2 * t.loss_window) :]
    # The not-decreasing check is made once, when the run first has
    # enough recorded steps: a loss that fell once has decreased.
    enough = 2 * t.loss_window
    check_trend = len(records) - new < enough <= len(records)
    start = [r.loss for r in _usable(records[: t.loss_window])]
    start = [x for x in start if math.isfinite(x)]
    start_loss = float(np.mean(start)) if start else None
    ratio_cache = []

    def ratio_found():
        # One pass finds both update-ratio diagnoses.
        if not ratio_cache:
            ratio_cache.append(_detect_update_ratio(tail, t))
        return ratio_cache[0]

    detectors = {
        "nan": lambda: _detect_nan(fresh, t, first_bad_loss_step),
        "exploding": lambda: _detect_exploding(tail, t),
        "vanishing": lambda: _detect_vanishing(tail, t),
        "dead_relu": lambda: _detect_dead_relu(fresh, t),
        "saturated": lambda: _detect_saturated(tail, t),
        "update_ratio_high": lambda: ratio_found(),
        "update_ratio_low": lambda: ratio_found(),
        "loss_not_decreasing": lambda: (
            _detect_loss_not_decreasing(records, t) if check_trend else []
        ),
        "oscillating": lambda: _detect_oscillating(loss_tail, t, start_loss),
    }
    found = []
    for name in DIAGNOSES:
        if name in skip:
            continue
        for diagnosis in detectors[name]():
            if diagnosis.name == name and diagnosis.name not in skip:
                found.append(diagnosis)
    return found
