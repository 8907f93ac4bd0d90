"""A non-finite loss on a step that is not recorded (every_n_steps > 1).

With "stop" and "raise" the callback acts on fit's batch logs at once: the
diagnosis names the step whose loss went non-finite, not the next recorded
step, and the weights go back to the last vouched recorded step.
"""

import warnings

import keras
import numpy as np
import pytest

from kerasweights.health import GradientHealth
from kerasweights.health import GradientHealthError

BAD_STEP = 3


def _fit(health, steps_per_execution=1, epochs=1):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((640, 4), dtype=np.float32)
    y = rng.random((640, 1), dtype=np.float32)
    y[BAD_STEP * 32 + 5] = np.nan  # the loss of step 3 (batch 32) is NaN
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse", steps_per_execution=steps_per_execution)
    ran = []

    class Steps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ran.append(batch)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x,
            y,
            batch_size=32,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[health, Steps()],
        )
    messages = [str(w.message) for w in caught]
    return model, ran, messages


def test_stop_acts_at_the_unrecorded_step(tmp_path):
    path = str(tmp_path / "point.weights.h5")
    health = GradientHealth(
        every_n_steps=10, on_problem="stop", recovery_path=path
    )
    model, ran, messages = _fit(health)
    assert ran[-1] == BAD_STEP  # not the next recorded step, 10
    (problem,) = health.problems
    assert (problem.name, problem.step, problem.layer) == ("nan", 3, None)
    assert "loss became non-finite" in problem.evidence
    assert health.recovery_step == 0
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert any("at step 3" in m for m in messages)
    # No layer is blamed: no NaN was recorded.
    assert [r.step for r in health.records] == [0]


def test_raise_acts_at_the_unrecorded_step(tmp_path):
    path = str(tmp_path / "point.weights.h5")
    health = GradientHealth(
        every_n_steps=10, on_problem="raise", recovery_path=path
    )
    with pytest.raises(GradientHealthError) as info:
        _fit(health)
    assert info.value.diagnosis.step == BAD_STEP
    assert info.value.recovery_path == path


def test_several_steps_per_call_name_the_range(tmp_path):
    path = str(tmp_path / "point.weights.h5")
    health = GradientHealth(
        every_n_steps=10, on_problem="stop", recovery_path=path
    )
    _, ran, _ = _fit(health, steps_per_execution=4)
    (problem,) = health.problems
    # The call that ran steps 0-3 ended with a NaN running loss.
    assert ran[-1] == 3
    assert (problem.name, problem.step) == ("nan", 3)
    assert "one of the steps 0-3" in problem.evidence


def test_warn_reports_at_the_next_recorded_step():
    # "warn" does not inspect the batch logs (its hook may run in Keras's
    # worker thread): the NaN shows in the gradients of recorded step 10.
    health = GradientHealth(every_n_steps=10)
    _, ran, _ = _fit(health)
    assert len(ran) == 20  # training went on
    problem = health.problems[0]
    assert (problem.name, problem.step) == ("nan", 10)
    assert problem.layer is not None


def test_loss_scaled_skip_is_not_a_problem():
    # Under mixed_float16 the loss-scale optimizer skips the NaN step (its
    # gradients are not finite) and the weights stay finite: fit's running
    # loss is NaN for the rest of the epoch, but that is no reason to stop.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        health = GradientHealth(every_n_steps=10, on_problem="stop")
        model, ran, _ = _fit(health)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert len(ran) == 20
    assert [p.name for p in health.problems if p.name == "nan"] == []
    assert all(np.isfinite(w).all() for w in model.get_weights())
