"""Per-trial watchers: non-finite values and gradient health.

`NonFiniteWatch` looks at the loss and metrics Keras reports after every
training step and every epoch; the first non-finite value stops training
and is remembered with its step (case C07). `gradient_health_callback`
returns the registry's gradient-health callback (the plugin of kind
``"callback"`` named ``gradient_health``), whose verdict each trial
reports.
"""

import math

import keras

__all__ = [
    "PRUNE_ON",
    "NonFiniteWatch",
    "PruneWatch",
    "gradient_health_callback",
    "health_summary",
]

# The gradient-health diagnoses that make a trial hopeless when they show
# in its first steps. Non-finite values fail the trial instead (C07).
PRUNE_ON = ("exploding", "vanishing")


class NonFiniteWatch(keras.callbacks.Callback):
    """Stop training at the first non-finite loss or metric.

    After training, ``reason`` is ``None`` or a sentence naming the symptom
    and where it appeared, e.g. ``"loss became nan at epoch 1, step 3"``.
    """

    def __init__(self):
        super().__init__()
        self.reason = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, where):
        if self.reason is not None:
            return
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(number):
                self.reason = f"{key} became {number} {where}"
                self.model.stop_training = True
                return

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"at epoch {self._epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"at the end of epoch {epoch + 1}")


class PruneWatch(keras.callbacks.Callback):
    """Stop a trial whose gradients explode or vanish in its first steps.

    Reads the problems a gradient-health callback has found (the health
    callback must come before this one in the callback list). When one of
    ``on`` was established before optimizer step ``steps``, training stops
    and ``reason`` names the diagnosis, the layer, the step and the
    evidence. The health callback reads its records every 15 steps and at
    each epoch end, so a trial stops at most about 15 steps after the
    problem shows.

    Args:
        health: The gradient-health callback (``None`` disables pruning).
        steps: The window, in optimizer steps from the start of training.
        on: Diagnosis names that prune.
    """

    def __init__(self, health, steps, on=PRUNE_ON):
        super().__init__()
        self.health = health
        self.steps = int(steps)
        self.on = tuple(on)
        self.reason = None

    def _check(self):
        if self.reason is not None or self.health is None:
            return
        for p in list(getattr(self.health, "problems", None) or []):
            if p.name in self.on and p.step < self.steps:
                where = f" in {p.layer}" if p.layer else ""
                self.reason = (
                    f"{p.name} gradients{where} at optimizer step {p.step} "
                    f"(within the first {self.steps}): {p.evidence}"
                )
                self.model.stop_training = True
                return

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


def gradient_health_callback():
    """A new gradient-health callback from the registry, or ``None``.

    Returns:
        An instance of the installed ``callback`` plugin named
        ``gradient_health`` (``kerasweights.health.GradientHealth``), or
        ``None`` when no such plugin is installed; trials then report the
        verdict ``"unavailable"``.
    """
    import kerasweights

    try:
        record = kerasweights.get_plugin("gradient_health", kind="callback")
    except (ValueError, LookupError):
        return None
    return record.obj()


def health_summary(callback):
    """``(verdict, nonfinite, problems)`` read from a health callback.

    Each problem is one line: its name, layer, optimizer step (counted
    from 0) and evidence, without the fix advice.
    """
    if callback is None:
        return "unavailable", False, []
    verdict = str(getattr(callback, "verdict", None) or "unknown")
    nonfinite = bool(getattr(callback, "nonfinite", False))
    problems = []
    for p in getattr(callback, "problems", None) or []:
        name, step = getattr(p, "name", None), getattr(p, "step", None)
        if name is None:
            problems.append(str(p))
            continue
        layer = getattr(p, "layer", None)
        where = f" in {layer}" if layer else ""
        evidence = getattr(p, "evidence", "")
        problems.append(
            f"{name}{where} at optimizer step {step}"
            + (f": {evidence}" if evidence else "")
        )
    return verdict, nonfinite, problems
