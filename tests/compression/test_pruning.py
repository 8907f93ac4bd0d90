"""Pruning schedules fitted to the real run; sparsity checked (case C16)."""

import numpy as np
import pytest
from conftest import dense_model

from kerasweights.compression import SparsityNotReachedError
from kerasweights.compression import compress
from kerasweights.compression import fit_schedule
from kerasweights.compression.pruning import schedule_updates
from kerasweights.errors import InvalidArgumentError


@pytest.mark.parametrize("steps", [2, 3, 8, 17, 100, 513])
@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_fitted_schedule_reaches_the_target_on_a_step_that_runs(
    steps, sparsity
):
    schedule = fit_schedule(sparsity, steps)
    updates = schedule_updates(schedule, steps)
    last_step, last_sparsity = updates[-1]
    assert last_step == schedule.end_step < steps
    assert last_sparsity == pytest.approx(sparsity)
    # Half the run or more is left to recover at the final sparsity.
    assert last_step <= max(1, steps // 2)


def test_fit_schedule_refuses_a_run_too_short_to_prune():
    with pytest.raises(InvalidArgumentError, match="at least 2 training"):
        fit_schedule(0.5, 1)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, "0.5", True, None])
def test_sparsity_outside_the_open_unit_interval_is_refused(bad, blobs):
    x, y = blobs
    with pytest.raises(InvalidArgumentError, match="prune"):
        compress(dense_model(), x, y, prune=bad, measure=False)


def test_two_epochs_of_four_steps_reach_half_sparsity_per_kernel(blobs):
    # Case C16: tfmot's defaults never update a mask in 8 steps; the fitted
    # schedule does, and the measured sparsity says so.
    x, y = blobs
    model = dense_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    result = compress(
        model, x, y, prune=0.5, epochs=2, batch_size=16, measure=False
    )
    report = result.report
    assert report["settings"]["steps"] == 8
    assert report["schedule"]["fitted"]
    assert report["schedule"]["mask_updates"][-1][1] == pytest.approx(0.5)
    assert set(report["sparsity"]) == {"hidden/kernel", "label/kernel"}
    for layer in ("hidden", "label"):
        kernel = result.model.get_layer(layer).kernel.numpy()
        assert np.mean(kernel == 0) == pytest.approx(0.5, abs=1 / 48)
        assert report["sparsity"][f"{layer}/kernel"] >= 0.49
        # Biases are not pruned.
        assert np.all(result.model.get_layer(layer).bias.numpy() != 0)
    # No optimizer state travels with the compressed model.
    assert not result.model.compiled
    # The caller's model is untouched.
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_schedule_that_cannot_finish_fails_with_the_reason(blobs):
    from tensorflow_model_optimization.sparsity import keras as sparsity

    x, y = blobs
    tfmot_default = sparsity.PolynomialDecay(0.0, 0.5, 0, 1000)
    with pytest.raises(SparsityNotReachedError) as caught:
        compress(
            dense_model(),
            x,
            y,
            prune=0.5,
            schedule=tfmot_default,
            epochs=2,
            batch_size=16,
            measure=False,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert "the target is 50%" in message
    assert "0% zeros" in message
    assert "training ran 8 steps" in message
    assert "schedule ends at step 1000" in message
