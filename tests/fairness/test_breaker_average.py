"""Breaker checks of RateConstrainedModel(average_after=k)."""

import keras
import numpy as np
import pytest
from fairness_fixtures import small_predictor
from fairness_fixtures import toy_data

from kerasweights.fairness import RateConstrainedModel


def _model(average_after, **compile_kwargs):
    model = RateConstrainedModel(
        small_predictor(),
        epsilon=0.0,
        multiplier_learning_rate=0.5,
        damping=2.0,
        average_after=average_after,
    )
    model.compile(
        keras.optimizers.SGD(0.2), "binary_crossentropy", **compile_kwargs
    )
    return model


def _weights(model):
    return [v.numpy().copy() for v in model.predictor.trainable_variables]


@pytest.mark.parametrize("steps", [3, 5])
def test_steps_per_execution_averages_every_step(steps):
    # 4 steps per epoch, 3 epochs, run 3 or 5 steps per call: the same
    # average as one step per call (12 steps seen, 7 averaged).
    x, groups, y = toy_data(64)
    feed = {"features": x, "group": groups}
    one = _model(5)
    one.fit(feed, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    many = _model(5, steps_per_execution=steps, jit_compile=True)
    many.fit(feed, y, epochs=3, batch_size=16, verbose=0, shuffle=False)
    assert int(many.steps_seen.numpy()) == 12 and many.averaged_steps == 7
    for a, b in zip(_weights(one), _weights(many), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_validation_during_fit_sees_the_last_iterate():
    x, groups, y = toy_data(64)
    feed = {"features": x, "group": groups}
    model = _model(2)
    last = []

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            last[:] = _weights(model)

    history = model.fit(
        feed,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        shuffle=False,
        validation_data=(feed, y),
        callbacks=[Keep()],
    )
    average = _weights(model)
    moved = [abs(a - b).max() for a, b in zip(average, last, strict=True)]
    assert max(moved) > 1e-3
    for v, w in zip(model.predictor.trainable_variables, last, strict=True):
        v.assign(w)
    logs = model.evaluate(feed, y, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        history.history["val_loss"][-1], logs["loss"], rtol=1e-5
    )


def test_train_on_batch_then_assign_average():
    x, groups, y = toy_data(64)
    model = _model(1)
    seen = []
    for i in range(4):
        rows = slice(16 * i, 16 * i + 16)
        model.train_on_batch(
            {"features": x[rows], "group": groups[rows]}, y[rows]
        )
        seen.append(_weights(model))
    assert model.averaged_steps == 3 and model.assign_average()
    for i, weight in enumerate(_weights(model)):
        hand = np.mean([step[i] for step in seen[1:]], axis=0)
        np.testing.assert_allclose(weight, hand, atol=1e-6)


def test_freezing_a_layer_after_wrapping_is_handled():
    x, groups, y = toy_data(64)
    model = _model(0)
    model.predictor.layers[1].trainable = False
    model.compile(keras.optimizers.SGD(0.2), "binary_crossentropy")
    frozen = [v.numpy().copy() for v in model.predictor.layers[1].weights]
    model.fit({"features": x, "group": groups}, y, batch_size=16, verbose=0)
    assert model.averaged_steps == 4
    # The frozen layer's weights stay as they were; the others average.
    for v, w in zip(model.predictor.layers[1].weights, frozen, strict=True):
        np.testing.assert_array_equal(v.numpy(), w)


def test_a_numpy_integer_is_accepted():
    model = RateConstrainedModel(small_predictor(), average_after=np.int64(3))
    assert model.average_after == 3 and type(model.average_after) is int
    assert model.get_config()["average_after"] == 3
