"""Proxy-Lagrangian rate constraints: the multiplier step and the proxy
term against a NumPy hand computation; save and reload keep them."""

import keras
import numpy as np
import pytest
from fairness_fixtures import small_predictor
from fairness_fixtures import toy_data

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness import RateConstrainedModel


def _gaps(groups, values, cells, weights, eps, n_groups=2):
    """Both sides of |r_g - r| <= eps, per rate: upper gaps, then lower."""
    out = []
    for cell in cells:
        cw = cell * weights
        overall = (cw * values).sum() / cw.sum()
        gaps = []
        for g in range(n_groups):
            m = (groups == g) * cw
            gaps.append(
                (m * values).sum() / m.sum() - overall if m.sum() > 0 else None
            )
        for sign in (1.0, -1.0):
            out.extend(-eps if d is None else sign * d - eps for d in gaps)
    return np.array(out)


def _proxy(scores, temperature):
    logit = np.log(scores) - np.log1p(-scores)
    return 1.0 / (1.0 + np.exp(-logit / temperature))


@pytest.mark.parametrize(
    "constraint,temperature,damping",
    [
        ("equalized_odds", 1.0, 0.0),
        ("demographic_parity", 1.0, 0.0),
        ("parity_and_equalized_odds", 0.2, 7.0),
    ],
)
def test_multiplier_step_and_proxy_loss(constraint, temperature, damping):
    x, groups, y = toy_data(40)
    w = np.linspace(0.2, 1.0, 40).astype("float32")
    eps, eta = 0.01, 0.3
    model = RateConstrainedModel(
        small_predictor(),
        constraint=constraint,
        epsilon=eps,
        multiplier_learning_rate=eta,
        proxy_temperature=temperature,
        damping=damping,
    )
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    feed = {"features": x, "group": groups}
    count = model.multipliers.shape[0]
    start = np.resize(np.array([0.5, 0.0, 1.0, 0.2, 0.0, 0.7]), count)
    model.multipliers.assign(start)
    scores = model.predict(feed, verbose=0)[:, 0].astype("float64")
    cells = {
        "equalized_odds": [y, 1 - y],
        "demographic_parity": [np.ones_like(y)],
        "parity_and_equalized_odds": [np.ones_like(y), y, 1 - y],
    }[constraint]
    assert count == 2 * 2 * len(cells)
    hard = _gaps(groups, (scores > 0.5).astype(float), cells, w, eps)
    soft = _gaps(groups, _proxy(scores, temperature), cells, w, eps)

    loss = model.compute_loss(
        feed, y, model(feed), sample_weight=w, training=False
    )
    plain = keras.losses.BinaryCrossentropy()(
        y, scores[:, None], sample_weight=w
    )
    expected = (
        float(plain)
        + start @ soft
        + 0.5 * damping * np.sum(np.maximum(soft, 0.0) ** 2)
    )
    assert float(loss) == pytest.approx(expected, rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(model.multipliers.numpy(), start)

    model.train_on_batch(feed, y, sample_weight=w)
    np.testing.assert_allclose(
        model.multipliers.numpy(),
        np.maximum(0.0, start + eta * hard),
        atol=1e-6,
    )


def test_two_sided_multipliers_cancel_noise():
    # A gap that flips sign between two batches, as sampling noise does:
    # each one-sided multiplier grows on one batch and shrinks on the
    # other, so the total stays at one batch's |gap|, where a multiplier
    # on |r_g - r| would have grown on both (2 |gap|). Equal group sizes,
    # so swapping the codes flips the sign of each group's gap.
    x, _, y = toy_data(64)
    groups = np.arange(64) % 2
    model = RateConstrainedModel(
        small_predictor(),
        constraint="demographic_parity",
        epsilon=0.0,
        multiplier_learning_rate=1.0,
    )
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    feed = {"features": x, "group": groups}
    hard = (model.predict(feed, verbose=0)[:, 0] > 0.5).astype(float)
    gap = abs(hard[groups == 1].mean() - hard[groups == 0].mean())
    assert gap > 0
    model.train_on_batch(feed, y)
    np.testing.assert_allclose(model.multipliers.numpy().sum(), gap, atol=1e-6)
    model.train_on_batch({"features": x, "group": 1 - groups}, y)
    np.testing.assert_allclose(model.multipliers.numpy().sum(), gap, atol=1e-6)


def test_fit_save_reload_keeps_multipliers(tmp_path):
    x, groups, y = toy_data(64)
    model = RateConstrainedModel(
        small_predictor(), epsilon=0.0, multiplier_learning_rate=0.5
    )
    model.compile("adam", "binary_crossentropy", jit_compile=True)
    history = model.fit(
        {"features": x, "group": groups}, y, epochs=2, batch_size=16, verbose=0
    )
    assert {"max_violation", "multiplier_sum"} <= set(history.history)
    assert model.multipliers.numpy().sum() > 0
    path = tmp_path / "c.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    np.testing.assert_allclose(
        back.multipliers.numpy(), model.multipliers.numpy()
    )
    assert back.constraint == "equalized_odds"


def test_bad_constraint_is_named():
    with pytest.raises(InvalidArgumentError, match="`constraint`"):
        RateConstrainedModel(small_predictor(), constraint="fair")
    with pytest.raises(InvalidArgumentError, match="`epsilon`"):
        RateConstrainedModel(small_predictor(), epsilon=-0.1)
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(InvalidArgumentError, match="`proxy_temperature`"):
            RateConstrainedModel(small_predictor(), proxy_temperature=bad)
    for bad in (-0.5, float("nan"), float("inf"), False):
        with pytest.raises(InvalidArgumentError, match="`damping`"):
            RateConstrainedModel(small_predictor(), damping=bad)


def test_per_rate_epsilon_shifts_each_rate_and_survives_save(tmp_path):
    x, groups, y = toy_data(40)
    w = np.ones(40, "float32")
    eps = {"selection": 0.01, "tpr": 0.03, "fpr": 0.05}
    model = RateConstrainedModel(
        small_predictor(),
        constraint="parity_and_equalized_odds",
        epsilon=eps,
        multiplier_learning_rate=1.0,
    )
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    feed = {"features": x, "group": groups}
    scores = model.predict(feed, verbose=0)[:, 0].astype("float64")
    hard = (scores > 0.5).astype(float)
    expected = np.concatenate(
        [
            _gaps(groups, hard, [cell], w, e)
            for cell, e in (
                (np.ones_like(y), 0.01),
                (y, 0.03),
                (1 - y, 0.05),
            )
        ]
    )
    model.train_on_batch(feed, y)
    np.testing.assert_allclose(
        model.multipliers.numpy(), np.maximum(0.0, expected), atol=1e-6
    )
    assert model.rate_epsilon("fpr") == 0.05
    path = tmp_path / "eps.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    assert dict(back.get_config()["epsilon"]) == eps
    assert back.rate_epsilon("selection") == 0.01


def test_per_rate_epsilon_must_cover_the_constraint_rates():
    for bad in (
        {"selection": 0.01},  # tpr and fpr missing
        {"selection": 0.01, "tpr": 0.02, "fpr": 0.02, "recall": 0.1},
        {"selection": -0.01, "tpr": 0.02, "fpr": 0.02},
        {"selection": True, "tpr": 0.02, "fpr": 0.02},
    ):
        with pytest.raises(InvalidArgumentError, match="`epsilon` as a dict"):
            RateConstrainedModel(
                small_predictor(),
                constraint="parity_and_equalized_odds",
                epsilon=bad,
            )
    with pytest.raises(InvalidArgumentError, match="`epsilon`"):
        RateConstrainedModel(small_predictor(), epsilon="0.1")


def test_holdout_rows_move_only_the_multipliers(tmp_path):
    # Rows flagged 1 estimate the hard violations; rows flagged 0 carry
    # the loss and the proxy terms (NumPy hand computation of both).
    x, groups, y = toy_data(40)
    w = np.linspace(0.2, 1.0, 40).astype("float32")
    held = (np.arange(40) % 3 == 0).astype("float32")
    eps, eta, temperature, damping = 0.01, 0.5, 0.5, 4.0
    model = RateConstrainedModel(
        small_predictor(),
        constraint="equalized_odds",
        epsilon=eps,
        multiplier_learning_rate=eta,
        proxy_temperature=temperature,
        damping=damping,
        holdout="held",
    )
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    feed = {"features": x, "group": groups, "held": held}
    start = np.array([0.5, 0.0, 1.0, 0.2, 0.0, 0.7, 0.3, 0.1])
    model.multipliers.assign(start)
    scores = model.predict(feed, verbose=0)[:, 0].astype("float64")
    cells = [y, 1 - y]
    fit_w, held_w = w * (1 - held), w * held
    soft = _gaps(groups, _proxy(scores, temperature), cells, fit_w, eps)
    hard = _gaps(groups, (scores > 0.5).astype(float), cells, held_w, eps)
    loss = model.compute_loss(
        feed, y, model(feed), sample_weight=w, training=False
    )
    plain = keras.losses.BinaryCrossentropy()(
        y, scores[:, None], sample_weight=fit_w
    )
    expected = (
        float(plain)
        + start @ soft
        + 0.5 * damping * np.sum(np.maximum(soft, 0.0) ** 2)
    )
    assert float(loss) == pytest.approx(expected, rel=1e-4, abs=1e-5)
    model.train_on_batch(feed, y, sample_weight=w)
    np.testing.assert_allclose(
        model.multipliers.numpy(),
        np.maximum(0.0, start + eta * hard),
        atol=1e-6,
    )
    # The flag never reaches the predictor, and the setting is saved.
    path = tmp_path / "holdout.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    assert back.holdout == "held"
    np.testing.assert_allclose(
        back.predict(feed, verbose=0), model.predict(feed, verbose=0)
    )


def test_holdout_name_and_missing_input_are_named():
    for bad in ("", "group", 3):
        with pytest.raises(InvalidArgumentError, match="`holdout`"):
            RateConstrainedModel(small_predictor(), holdout=bad)
    x, groups, y = toy_data(16)
    model = RateConstrainedModel(small_predictor(), holdout="held")
    model.compile("adam", "binary_crossentropy")
    with pytest.raises(InvalidArgumentError, match="'held'"):
        model.fit({"features": x, "group": groups}, y, verbose=0)


def _fit_recording(model, feed, y, **kwargs):
    """Fit, keeping the predictor's trainable weights after every step."""
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(
                [v.numpy().copy() for v in model.predictor.trainable_variables]
            )

    model.fit(feed, y, verbose=0, callbacks=[Record()], **kwargs)
    return seen


def test_average_after_leaves_the_hand_average_of_the_later_steps(tmp_path):
    # 4 steps per epoch, 3 epochs: the predictor ends as the mean of the
    # weights after steps 6..12 (average_after=5), not as the last one.
    x, groups, y = toy_data(64)
    feed = {"features": x, "group": groups}
    model = RateConstrainedModel(
        small_predictor(),
        epsilon=0.0,
        multiplier_learning_rate=0.5,
        damping=2.0,
        average_after=5,
    )
    model.compile(
        keras.optimizers.SGD(0.2), "binary_crossentropy", jit_compile=True
    )
    seen = _fit_recording(model, feed, y, epochs=3, batch_size=16)
    assert len(seen) == 12 and model.averaged_steps == 7
    after = [v.numpy() for v in model.predictor.trainable_variables]
    for i, weight in enumerate(after):
        hand = np.mean([step[i] for step in seen[5:]], axis=0)
        np.testing.assert_allclose(weight, hand, atol=1e-6)
    # ... and it is not the last step's weights.
    moved = [abs(a - b).max() for a, b in zip(after, seen[-1], strict=True)]
    assert max(moved) > 1e-3
    # Saved: the setting, the running average and its step count; a
    # later step keeps adding to the same average.
    path = tmp_path / "averaged.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    assert back.average_after == 5 and back.averaged_steps == 7
    np.testing.assert_allclose(
        back.predict(feed, verbose=0), model.predict(feed, verbose=0)
    )
    for ours, theirs in zip(model._averages, back._averages, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    more = _fit_recording(back, feed, y, epochs=1, batch_size=64)
    for i, weight in enumerate(back.predictor.trainable_variables):
        hand = np.mean([step[i] for step in seen[5:] + more], axis=0)
        np.testing.assert_allclose(weight.numpy(), hand, atol=1e-6)


def test_without_average_after_fit_leaves_the_last_step():
    x, groups, y = toy_data(64)
    model = RateConstrainedModel(small_predictor(), epsilon=0.0)
    model.compile(keras.optimizers.SGD(0.2), "binary_crossentropy")
    seen = _fit_recording(
        model, {"features": x, "group": groups}, y, epochs=2, batch_size=16
    )
    for i, weight in enumerate(model.predictor.trainable_variables):
        np.testing.assert_array_equal(weight.numpy(), seen[-1][i])
    assert model.averaged_steps == 0 and not model.assign_average()


def test_average_after_not_reached_keeps_the_last_step():
    x, groups, y = toy_data(32)
    model = RateConstrainedModel(small_predictor(), average_after=10)
    model.compile(keras.optimizers.SGD(0.2), "binary_crossentropy")
    seen = _fit_recording(
        model, {"features": x, "group": groups}, y, epochs=1, batch_size=16
    )
    assert model.averaged_steps == 0
    for i, weight in enumerate(model.predictor.trainable_variables):
        np.testing.assert_array_equal(weight.numpy(), seen[-1][i])


def test_average_after_is_checked():
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(InvalidArgumentError, match="`average_after`"):
            RateConstrainedModel(small_predictor(), average_after=bad)

    class Unbuilt(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1, "sigmoid")

        def call(self, x):
            return self.dense(x)

    with pytest.raises(InvalidArgumentError, match="build it first"):
        RateConstrainedModel(Unbuilt(), average_after=0)
