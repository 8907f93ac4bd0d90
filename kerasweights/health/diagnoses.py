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
        first, last = _step_range(first_bad_loss_step)
        where = (
            ""
            if first == last
            else f" at one of the steps {first}-{last} (run in one call)"
        )
        return [
            Diagnosis(
                "nan",
                None,
                last,
                f"the training loss became non-finite{where}",
                FIXES["nan"],
            )
        ]
    return []


def _step_range(step):
    """``(first, last)`` from a step or a pair of steps."""
    if isinstance(step, tuple | list):
        return int(step[0]), int(step[1])
    return int(step), int(step)


def _usable_one(rec):
    """A record whose gradients can be judged: not skipped, all finite."""
    return not rec.skipped and rec.grad_nonfinite == 0


def _usable(records):
    return [r for r in records if _usable_one(r)]


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


def _detect_update_ratio(records, t, name):
    """The first window with a too high (or, for ``update_ratio_low``, too
    low) update ratio; each name is looked for on its own, so one being
    found (or already reported) does not hide the other."""
    recs = _usable(records)
    for win in _windows(recs, t.patience):
        ratios = [r.update_ratio for r in win]
        if any(not math.isfinite(x) for x in ratios):
            continue
        median = statistics.median(ratios)
        if name == "update_ratio_high":
            fired = median > t.update_ratio_high
        else:
            fired = max(ratios) < t.update_ratio_low
        if fired:
            return [
                Diagnosis(
                    name,
                    None,
                    win[-1].step,
                    f"update/weight norm ratio {median:.3g} (about 1e-3 is "
                    f"typical) for {t.patience} recorded steps",
                    FIXES[name],
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


def _detect_oscillating(recs, t, start_loss, first_end):
    """The first window of ``2 * loss_window`` usable records with a finite
    loss (``recs``) that ends at index ``first_end`` or later and shows
    the loss bouncing; every such window is examined, all at once."""
    window = 2 * t.loss_window
    if len(recs) < window or start_loss is None:
        return []
    losses = np.asarray([r.loss for r in recs], dtype=np.float64)
    # One row per window, by the index its last record has in ``recs``.
    wins = np.lib.stride_tricks.sliding_window_view(losses, window)
    ends = np.arange(window - 1, len(recs))
    keep = ends >= first_end
    wins, ends = wins[keep], ends[keep]
    if not len(ends):
        return []
    level = np.median(wins, axis=1)
    jumps = np.median(np.abs(np.diff(wins, axis=1)), axis=1)
    early = wins[:, : t.loss_window].mean(axis=1)
    late = wins[:, t.loss_window :].mean(axis=1)
    # Jumps as large as the loss itself, no downward trend, and the loss
    # still far from where a converged run's noise would sit.
    fired = (
        (level > 0)
        & (jumps > level)
        & (late > 0.9 * early)
        & (level > 0.5 * start_loss)
    )
    if not fired.any():
        return []
    i = int(np.argmax(fired))
    return [
        Diagnosis(
            "oscillating",
            None,
            recs[ends[i]].step,
            f"median step-to-step loss change {jumps[i]:.3g} exceeds the "
            f"median loss {level[i]:.3g}, with no downward trend over "
            f"{window} recorded steps",
            FIXES["oscillating"],
        )
    ]


def _finite_loss(rec):
    return _usable_one(rec) and math.isfinite(rec.loss)


def _last(items, count):
    return items[max(0, len(items) - count) :]


def _before(records, start, count, keep):
    """The last ``count`` records before index ``start`` that ``keep``
    accepts, oldest first (walking back from ``start``)."""
    found = []
    i = start - 1
    while i >= 0 and len(found) < count:
        if keep(records[i]):
            found.append(records[i])
        i -= 1
    found.reverse()
    return found


def diagnose(
    records,
    thresholds=None,
    first_bad_loss_step=None,
    skip=(),
    new=None,
    state=None,
):
    """Runs every detector over the records.

    Detectors look only at windows that end in the ``new`` latest records,
    and at every one of those, so calling this after every read costs time
    proportional to what was read, not to the whole history, and the
    diagnoses (names and steps) do not depend on how the records were
    split into calls: one call on all of them finds what calls on every
    record, or on every 50, find.

    Args:
        records: Every `StepRecord` so far, in step order.
        thresholds: A `Thresholds`; defaults when None.
        first_bad_loss_step: The first step whose loss was non-finite, as
            fit's batch logs show it (`GradientHealth` passes it with
            ``on_problem="stop"`` or ``"raise"``), or a ``(first, last)``
            pair when it is only known to be one of those steps (several
            steps per call; the diagnosis names ``last``), or None.
            Reported as ``nan`` in the loss only when no new record shows
            a NaN.
        skip: Names of diagnoses not to run (already reported).
        new: How many of the records are new since the last call (None:
            all of them).
        state: Optional dict kept by the caller between calls on the same
            growing list (an empty dict on the first): it remembers the
            records a window needs from before the new ones, so a call
            need not look back through the history for them. Without it
            they are found by walking back from the new records.

    Returns:
        A list of `Diagnosis`, at most one per name.
    """
    t = thresholds or Thresholds()
    records = list(records)
    new = len(records) if new is None else min(int(new), len(records))
    begin = len(records) - new
    fresh = records[begin:]
    # The usable records (and those with a finite loss) just before the
    # new ones: what the windows ending at a new record reach back to.
    # Up to 2 * loss_window finite ones: fewer means that is all there
    # were, which tells whether the loss trend was checked already.
    reach = max(t.patience - 1, 0)
    finite_reach = 2 * t.loss_window
    if state is not None and state.get("upto") == begin:
        usable_before = state["usable"]
        finite_before = state["finite"]
    else:
        usable_before = _before(records, begin, reach, _usable_one)
        finite_before = _before(records, begin, finite_reach, _finite_loss)
    usable = usable_before + [r for r in fresh if _usable_one(r)]
    finite = finite_before + [r for r in fresh if _finite_loss(r)]
    if state is not None:
        state["upto"] = len(records)
        state["usable"] = _last(usable, reach)
        state["finite"] = _last(finite, finite_reach)
    # The not-decreasing check is made once, on the first 2 * loss_window
    # usable records with a finite loss: a loss that fell once has
    # decreased.
    enough = 2 * t.loss_window
    check_trend = len(finite_before) < enough <= len(finite)
    start = [r.loss for r in _usable(records[: t.loss_window])]
    start = [x for x in start if math.isfinite(x)]
    start_loss = float(np.mean(start)) if start else None

    detectors = {
        "nan": lambda: _detect_nan(fresh, t, first_bad_loss_step),
        "exploding": lambda: _detect_exploding(usable, t),
        "vanishing": lambda: _detect_vanishing(usable, t),
        "dead_relu": lambda: _detect_dead_relu(fresh, t),
        "saturated": lambda: _detect_saturated(usable, t),
        "update_ratio_high": lambda: _detect_update_ratio(
            usable, t, "update_ratio_high"
        ),
        "update_ratio_low": lambda: _detect_update_ratio(
            usable, t, "update_ratio_low"
        ),
        "loss_not_decreasing": lambda: (
            _detect_loss_not_decreasing(finite[:enough], t)
            if check_trend
            else []
        ),
        "oscillating": lambda: _detect_oscillating(
            finite, t, start_loss, len(finite_before)
        ),
    }
    found = []
    for name in DIAGNOSES:
        if name in skip:
            continue
        for diagnosis in detectors[name]():
            if diagnosis.name == name and diagnosis.name not in skip:
                found.append(diagnosis)
    return found
