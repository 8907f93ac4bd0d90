"""GroupGradientMonitor: per-group gradient norms and cosines against a
direct GradientTape computation; logs, TensorBoard and PNG outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from fairness_fixtures import small_predictor
from fairness_fixtures import toy_data

from kerasweights.errors import InputDataError
from kerasweights.fairness import FairnessModel
from kerasweights.fairness import GroupGradientMonitor
from kerasweights.fairness import MMDPenalty


def test_values_match_a_direct_computation_and_reach_the_logs(tmp_path):
    x, groups, y = toy_data(48)
    w = np.linspace(0.5, 2.0, 48).astype("float32")
    model = small_predictor()
    model.compile("sgd", "binary_crossentropy")
    monitor = GroupGradientMonitor(
        log_dir=str(tmp_path / "tb"), png_path=str(tmp_path / "g.png")
    )
    monitor.set_probe(x, y, groups=groups, sample_weight=w)
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    last_layer = model.layers[-1].name
    key = f"group_grad_cosine/{last_layer}"
    assert key in history.history
    assert (tmp_path / "g.png").stat().st_size > 1000
    assert any((tmp_path / "tb").iterdir())

    values = monitor.measure()
    kernel, bias = model.layers[-1].trainable_variables
    flat = []
    for g in (0, 1):
        with tf.GradientTape() as tape:
            p = tf.clip_by_value(model(x)[:, 0], 1e-7, 1 - 1e-7)
            per = -(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))
            loss = tf.reduce_sum((groups == g) * w * per) / w.sum()
        gk, gb = tape.gradient(loss, [kernel, bias])
        flat.append(np.concatenate([gk.numpy().ravel(), gb.numpy().ravel()]))
        assert values[f"group_grad_norm/{last_layer}/{g}"] == pytest.approx(
            np.linalg.norm(flat[-1]), rel=1e-4
        )
    cosine = (
        flat[0] @ flat[1] / np.linalg.norm(flat[0]) / np.linalg.norm(flat[1])
    )
    assert values[key] == pytest.approx(cosine, abs=1e-4)


def test_works_with_a_fairness_model_and_needs_a_probe():
    x, groups, y = toy_data(32)
    model = FairnessModel(small_predictor(), MMDPenalty())
    model.compile("adam", "binary_crossentropy")
    feed = {"features": x, "group": groups}
    monitor = GroupGradientMonitor()
    with pytest.raises(InputDataError, match="probe"):
        model.fit(feed, y, epochs=1, verbose=0, callbacks=[monitor])
    monitor.set_probe(feed, y)
    model.fit(feed, y, epochs=1, verbose=0, callbacks=[monitor])
    assert monitor.history and all(
        np.isfinite(v) for k, v in monitor.history[-1].items()
    )
    with pytest.raises(InputDataError, match="group 1"):
        monitor.set_probe(feed, y, groups=np.zeros(32, int))
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(GroupGradientMonitor(num_groups=3))
    )
    assert again.num_groups == 3
