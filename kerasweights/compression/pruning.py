"""Pruning schedules fitted to the real run, and the sparsity they reach.

Case C16: tensorflow-model-optimization's schedules update the masks every
``frequency`` steps (100 by default) between ``begin_step`` and
``end_step``. Fine-tuning on a small data set for a few epochs may run
fewer steps than that, and then no mask update ever happens: the "pruned"
model has no zero at all, and nothing says so. Here

* `fit_schedule` builds tfmot's ``PolynomialDecay`` from the number of
  steps the fine-tuning will really run: the last mask update falls on a
  step that runs, about halfway, so the rest of the steps recover the
  accuracy at the final sparsity;
* `check_sparsity` measures, after compressing, the share of zeros in
  every pruned weight and raises `SparsityNotReachedError` naming the
  weight, the sparsity reached, the target, and why (the schedule's last
  update against the steps that ran).

The schedules are tfmot's own objects: they compute with TensorFlow ops
only and never touch a tf_keras model, so they work unchanged with Keras 3.
"""

import numpy as np

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import KerasWeightsError

__all__ = [
    "SparsityNotReachedError",
    "check_sparsity",
    "check_sparsity_target",
    "fit_schedule",
    "measure_sparsity",
    "schedule_updates",
]


class SparsityNotReachedError(KerasWeightsError, RuntimeError):
    """Pruning ended with a weight less sparse than the target."""


def check_sparsity_target(sparsity, name="sparsity"):
    """Validate a target sparsity: a number in (0, 1).

    Raises:
        InvalidArgumentError: It is not a number strictly between 0 and 1.
    """
    if (
        isinstance(sparsity, bool)
        or not isinstance(sparsity, (int, float, np.integer, np.floating))
        or not 0.0 < float(sparsity) < 1.0
    ):
        raise InvalidArgumentError(
            f"`{name}` must be a number strictly between 0 and 1 (the share "
            f"of each kernel's weights set to zero). Received: "
            f"{name}={sparsity!r}"
        )
    return float(sparsity)


def fit_schedule(sparsity, total_steps, end_fraction=0.5, updates=8):
    """tfmot's ``PolynomialDecay`` fitted to ``total_steps`` training steps.

    Args:
        sparsity: The final sparsity, in (0, 1).
        total_steps: The number of training steps the fine-tuning runs.
        end_fraction: Share of the steps spent raising the sparsity; the
            rest fine-tune at the final sparsity.
        updates: About how many mask updates to spread over that share.

    Returns:
        A ``tfmot.sparsity.keras.PolynomialDecay`` whose ``end_step`` is a
        step that runs and is a mask-update step.

    Raises:
        InvalidArgumentError: ``sparsity`` is out of range, or fewer than
            two steps run (one to prune, one to recover).
    """
    from tensorflow_model_optimization.sparsity import keras as sparsity_api

    sparsity = check_sparsity_target(sparsity)
    if isinstance(total_steps, bool) or not isinstance(total_steps, int):
        raise InvalidArgumentError(
            "`total_steps` must be an integer. "
            f"Received: total_steps={total_steps!r}"
        )
    if total_steps < 2:
        raise InvalidArgumentError(
            "Pruning needs at least 2 training steps (one to prune, one to "
            f"recover); the fine-tuning runs {total_steps}. Give more data, "
            "more epochs or a smaller batch size."
        )
    end = min(max(1, int(total_steps * end_fraction)), total_steps - 1)
    frequency = max(1, end // max(1, updates))
    end = max(frequency, (end // frequency) * frequency)
    return sparsity_api.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=end,
        frequency=frequency,
    )


def schedule_updates(schedule, steps):
    """``[(step, sparsity)]`` of the mask updates among ``range(steps)``."""
    updates = []
    for step in range(steps):
        should, sparsity = schedule(step)
        if bool(should):
            updates.append((step, float(sparsity)))
    return updates


def measure_sparsity(targets):
    """Share of exact zeros in each weight: ``{path: fraction}``."""
    result = {}
    for target in targets:
        value = np.asarray(target.variable.numpy())
        result[target.path] = float(np.mean(value == 0))
    return result


def check_sparsity(measured, sizes, target, updates, steps_run, schedule):
    """Raise when a pruned weight is less sparse than ``target``.

    Args:
        measured: ``{path: fraction of zeros}`` after compressing.
        sizes: ``{path: number of entries}``.
        target: The sparsity asked for.
        updates: ``[(step, sparsity)]`` mask updates that ran.
        steps_run: Training steps that ran.
        schedule: The schedule used (for the explanation).

    Raises:
        SparsityNotReachedError: Some weight is below ``target`` by more
            than one entry's share.
    """
    short = {
        path: reached
        for path, reached in measured.items()
        if reached < target - max(1.0 / sizes[path], 1e-6)
    }
    if not short:
        return
    path = min(short, key=short.get)
    others = len(short) - 1
    more = f" ({others} other weights too)" if others else ""
    if not updates:
        why = (
            f"no mask update ran: the schedule's updates start at step "
            f"{_first_update(schedule)} but training ran {steps_run} steps"
        )
    else:
        step, last = updates[-1]
        why = (
            f"the last mask update ran at step {step} with sparsity "
            f"{last:.0%} (training ran {steps_run} steps; the schedule "
            f"ends at step {getattr(schedule, 'end_step', '?')})"
        )
    raise SparsityNotReachedError(
        f"Pruning did not reach the target: weight {path!r} is "
        f"{short[path]:.0%} zeros, the target is {target:.0%}{more}; {why}. "
        "Let kerasweights fit the schedule (schedule=None), or run more "
        "steps."
    )


def _first_update(schedule):
    begin = int(getattr(schedule, "begin_step", 0))
    frequency = int(getattr(schedule, "frequency", 1))
    return begin if begin % max(frequency, 1) == 0 else begin + frequency
