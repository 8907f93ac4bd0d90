"""The non-finite watch: what it reads, and when."""

import math

import keras
import numpy as np

from kerasweights.health.diagnoses import Diagnosis
from kerasweights.tuning.watch import TRIAL_READ_EVERY
from kerasweights.tuning.watch import NonFiniteWatch
from kerasweights.tuning.watch import PruneWatch


class _Health:
    def __init__(self, problems=(), nonfinite=False):
        self.problems = list(problems)
        self.nonfinite = nonfinite


class _Model:
    stop_training = False


def _watch(health):
    watch = NonFiniteWatch(health)
    watch.set_model(_Model())
    return watch


def test_with_health_the_batch_hook_never_reads_the_logs():
    watch = _watch(_Health())
    # Keras may dispatch its batch hooks asynchronously: both watches say so.
    assert watch.async_safe and PruneWatch(_Health(), 40).async_safe
    watch.on_epoch_begin(0)
    watch.on_train_batch_end(2, {"loss": math.nan})
    assert watch.reason is None and not watch.model.stop_training


def test_the_health_nan_diagnosis_names_its_step_and_where_it_was_seen():
    nan = Diagnosis("nan", "dense", 3, "7 non-finite value(s)", "fix")
    health = _Health([nan], nonfinite=True)
    watch = _watch(health)
    watch.on_epoch_begin(1)
    watch.on_train_batch_end(14)
    assert watch.model.stop_training
    assert watch.reason.startswith(
        "non-finite values in dense at optimizer step 3 (counted from 0; "
        "seen at epoch 2, step 15): 7 non-finite value(s)"
    )


def test_an_epoch_end_reads_the_loss_and_metrics():
    watch = _watch(_Health())
    watch.on_epoch_end(0, {"loss": 0.3, "val_accuracy": math.inf})
    assert watch.reason == "val_accuracy became inf at the end of epoch 1"
    assert watch.model.stop_training


def test_without_health_every_step_is_read():
    watch = _watch(None)
    assert not watch.async_safe
    watch.on_epoch_begin(0)
    watch.on_train_batch_end(2, {"loss": math.nan})
    assert watch.reason == "loss became nan at epoch 1, step 3"


def test_a_real_nan_stops_fit_within_one_health_read():
    from kerasweights.health import GradientHealth

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e30), "mse")
    health = GradientHealth(read_every=TRIAL_READ_EVERY)
    watch = NonFiniteWatch(health)
    x = np.full((40 * 8, 4), 1e3, "float32")
    model.fit(
        x,
        np.ones((len(x), 1)),
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[health, watch],
    )
    assert watch.reason and "at optimizer step" in watch.reason
    # Stopped in the first epoch, about one health read (15 steps) late,
    # with the read cadence a trial uses.
    assert "seen at epoch 1" in watch.reason
    assert len(health.records) < 40


def test_trials_read_health_every_15_steps():
    from kerasweights.health import GradientHealth
    from kerasweights.tuning.watch import gradient_health_callback

    health = gradient_health_callback()
    assert isinstance(health, GradientHealth)
    assert health.read_every == TRIAL_READ_EVERY == 15
    assert health._read_batch() == 15
    # The user default is unchanged ("warn": every 50 recorded steps).
    assert GradientHealth()._read_batch() == 50
