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
    out = []
    for cell in cells:
        cw = cell * weights
        overall = (cw * values).sum() / cw.sum()
        for g in range(n_groups):
            m = (groups == g) * cw
            out.append(
                abs((m * values).sum() / m.sum() - overall) - eps
                if m.sum() > 0
                else -eps
            )
    return np.array(out)


@pytest.mark.parametrize("constraint", ["equalized_odds", "demographic_parity"])
def test_multiplier_step_and_proxy_loss(constraint):
    x, groups, y = toy_data(40)
    w = np.linspace(0.2, 1.0, 40).astype("float32")
    eps, eta = 0.01, 0.3
    model = RateConstrainedModel(
        small_predictor(),
        constraint=constraint,
        epsilon=eps,
        multiplier_learning_rate=eta,
    )
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy")
    feed = {"features": x, "group": groups}
    start = np.array([0.5, 0.0, 1.0, 0.2])[: model.multipliers.shape[0]]
    model.multipliers.assign(start)
    scores = model.predict(feed, verbose=0)[:, 0]
    if constraint == "equalized_odds":
        cells = [y, 1 - y]
    else:
        cells = [np.ones_like(y)]
    hard = _gaps(groups, (scores > 0.5).astype(float), cells, w, eps)
    soft = _gaps(groups, scores, cells, w, eps)

    loss = model.compute_loss(
        feed, y, model(feed), sample_weight=w, training=False
    )
    plain = keras.losses.BinaryCrossentropy()(
        y, scores[:, None], sample_weight=w
    )
    assert float(loss) == pytest.approx(
        float(plain) + start @ soft, rel=1e-4, abs=1e-5
    )
    np.testing.assert_allclose(model.multipliers.numpy(), start)

    model.train_on_batch(feed, y, sample_weight=w)
    np.testing.assert_allclose(
        model.multipliers.numpy(),
        np.maximum(0.0, start + eta * hard),
        atol=1e-6,
    )


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
