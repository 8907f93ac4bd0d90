"""Per-trial watchers: non-finite values and gradient health.

`NonFiniteWatch` fails a trial at the first non-finite loss, metric or
gradient. With a gradient-health callback
it takes the signal from the figures the health tap computes inside the
compiled train step (the health callback reads them every 15 steps and at
each epoch end), and reads Keras' loss and metrics only at epoch end: its
batch hook reads no tensor, so Keras may dispatch it asynchronously where
the backend allows (Keras 3's TensorFlow backend never does, and converts
each step's logs itself). `gradient_health_callback` returns the registry's
gradient-health callback (the plugin of kind ``"callback"`` named
``gradient_health``), whose verdict each trial reports.
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
# in its first steps. Non-finite values fail the trial instead.
PRUNE_ON = ("exploding", "vanishing")


class NonFiniteWatch(keras.callbacks.Callback):
    """Stop training at the first non-finite loss, metric or gradient.

    With ``health`` (a gradient-health callback placed before this one in
    the callback list), the watch reads the health callback's ``nan``
    diagnosis after each batch, a plain attribute read with no tensor in
    it, and Keras' loss and metrics at each epoch end. The
    health callback records every step but reads its records in batches
    (every ``read_every`` recorded steps: 15 in a trial, see
    `gradient_health_callback`) and at each epoch end, so training stops
    up to one such read after the first non-finite value; the reason names
    the optimizer step where it appeared and where it was seen.

    Without ``health`` the watch reads Keras' loss and metrics after every
    step.

    After training, ``reason`` is ``None`` or a sentence naming the symptom
    and where it appeared, e.g. ``"non-finite values at optimizer step 3
    (counted from 0; seen at epoch 1, step 15): 12 non-finite value(s) in
    the gradients of dense (loss=nan)"``.

    Args:
        health: The gradient-health callback, or ``None``.
    """

    def __init__(self, health=None):
        super().__init__()
        self.health = health
        self.reason = None
        self._epoch = 0

    @property
    def async_safe(self):
        # Reading the health callback's findings touches no tensor, so
        # Keras may run the batch hook in its worker thread.
        return self.health is not None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _stop(self, reason):
        self.reason = reason
        self.model.stop_training = True

    def _check_health(self, where):
        if self.reason is not None or self.health is None:
            return
        if not getattr(self.health, "nonfinite", False):
            return
        for p in list(getattr(self.health, "problems", None) or []):
            if getattr(p, "name", None) == "nan":
                layer = f" in {p.layer}" if getattr(p, "layer", None) else ""
                self._stop(
                    f"non-finite values{layer} at optimizer step {p.step} "
                    f"(counted from 0; seen {where}): {p.evidence}"
                )
                return
        self._stop(f"gradient health found non-finite values {where}")

    def _check_logs(self, logs, where):
        if self.reason is not None:
            return
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(number):
                self._stop(f"{key} became {number} {where}")
                return

    def on_train_batch_end(self, batch, logs=None):
        where = f"at epoch {self._epoch + 1}, step {batch + 1}"
        if self.health is None:
            self._check_logs(logs, where)
        else:
            self._check_health(where)

    def on_epoch_end(self, epoch, logs=None):
        where = f"at the end of epoch {epoch + 1}"
        # The health callback has read this epoch's records by now: its
        # diagnosis names the step, so it goes first.
        self._check_health(where)
        self._check_logs(logs, where)


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

    @property
    def async_safe(self):
        # It only reads the health callback's findings (no tensor).
        return True

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


# Recorded steps between the health callback's reads in a trial.
TRIAL_READ_EVERY = 15


def gradient_health_callback():
    """A new gradient-health callback from the registry, or ``None``.

    Returns:
        An instance of the installed ``callback`` plugin named
        ``gradient_health`` (``kerasweights.health.GradientHealth``), or
        ``None`` when no such plugin is installed; trials then report the
        verdict ``"unavailable"``.
    """
    import inspect

    import kerasweights

    try:
        record = kerasweights.get_plugin("gradient_health", kind="callback")
    except (ValueError, LookupError):
        return None
    try:
        takes = "read_every" in inspect.signature(record.obj).parameters
    except (TypeError, ValueError):
        takes = False
    # Trials read every 15 recorded steps (the callback's "warn" default
    # is 50), so a non-finite or pruned trial stops soon.
    return record.obj(read_every=TRIAL_READ_EVERY) if takes else record.obj()


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
