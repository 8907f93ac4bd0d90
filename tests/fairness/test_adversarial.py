"""Adversarial debiasing: one step equals the update of Zhang et al.
computed by hand, and the model saves and reloads."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from fairness_fixtures import small_predictor
from fairness_fixtures import toy_data

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness import AdversarialDebiasingModel
from kerasweights.fairness import DemographicParityDifference


def _bce(target, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


@pytest.mark.parametrize("condition_on_label", [False, True])
def test_one_step_is_the_projected_update(condition_on_label):
    x, groups, y = toy_data(32)
    w = np.linspace(0.5, 1.5, 32).astype("float32")
    alpha, lr, adv_lr = 0.7, 0.1, 0.05
    model = AdversarialDebiasingModel(
        small_predictor(),
        alpha=alpha,
        condition_on_label=condition_on_label,
        adversary_optimizer=keras.optimizers.SGD(adv_lr),
    )
    model.compile(keras.optimizers.SGD(lr), "binary_crossentropy")
    feed = {"features": x, "group": groups}
    model(feed)
    pv = [v.numpy() for v in model.predictor.trainable_variables]
    av = [v.numpy() for v in model.adversary.trainable_variables]

    # Independent reference: gradients by GradientTape of losses written
    # here, the update rule written from the paper.
    with tf.GradientTape(persistent=True) as tape:
        p = model.predictor(x)[:, 0]
        per = -(
            y * tf.math.log(tf.clip_by_value(p, 1e-7, 1 - 1e-7))
            + (1 - y) * tf.math.log(tf.clip_by_value(1 - p, 1e-7, 1))
        )
        pred_loss = tf.reduce_sum(w * per) / 32.0
        pc = tf.clip_by_value(p, 1e-6, 1 - 1e-6)
        z = tf.math.log(pc) - tf.math.log(1 - pc)
        feats = [z]
        if condition_on_label:
            feats += [z * y, z * (1 - y)]
        a = tf.stack(feats, axis=1)
        kernel, bias = model.adversary.trainable_variables
        q = tf.sigmoid(tf.matmul(a, kernel)[:, 0] + bias[0])
        adv_per = -(groups * tf.math.log(q) + (1 - groups) * tf.math.log(1 - q))
        adv_loss = tf.reduce_sum(w * adv_per) / tf.reduce_sum(w)
    variables = model.predictor.trainable_variables
    gp = [g.numpy() for g in tape.gradient(pred_loss, variables)]
    ga = [g.numpy() for g in tape.gradient(adv_loss, variables)]
    gu = [g.numpy() for g in tape.gradient(adv_loss, [kernel, bias])]
    flat_p = np.concatenate([g.ravel() for g in gp])
    flat_a = np.concatenate([g.ravel() for g in ga])
    scale = flat_p @ flat_a / (flat_a @ flat_a)

    model.train_on_batch(feed, y, sample_weight=w)
    for before, g_p, g_a, after in zip(
        pv, gp, ga, model.predictor.trainable_variables, strict=True
    ):
        expected = before - lr * (g_p - scale * g_a - alpha * g_a)
        np.testing.assert_allclose(after.numpy(), expected, atol=2e-5)
    for before, g, after in zip(
        av, gu, model.adversary.trainable_variables, strict=True
    ):
        np.testing.assert_allclose(
            after.numpy(), before - adv_lr * g, atol=2e-5
        )


def test_fit_jit_save_reload(tmp_path):
    x, groups, y = toy_data(64)
    model = AdversarialDebiasingModel(
        small_predictor(), alpha=2.0, num_groups=2
    )
    model.compile(
        "adam",
        "binary_crossentropy",
        metrics=["accuracy", DemographicParityDifference()],
        jit_compile=True,
    )
    feed = {"features": x, "group": groups}
    history = model.fit(feed, y, epochs=2, batch_size=16, verbose=0)
    assert {"adversary_loss", "demographic_parity_difference"} <= set(
        history.history
    )
    path = tmp_path / "adv.keras"
    model.save(path)
    back = keras.saving.load_model(path)
    assert back.alpha == 2.0
    np.testing.assert_allclose(
        back.predict(feed, verbose=0), model.predict(feed, verbose=0), atol=1e-6
    )
    assert [t.name for t in back.prediction_model().inputs] == ["features"]


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="num_groups"):
        AdversarialDebiasingModel(small_predictor(), num_groups=1)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        AdversarialDebiasingModel(small_predictor(), alpha=-1)
