"""Adversarial debiasing (Zhang, Lemoine and Mitchell, 2018) in plain fit.

An adversary tries to recover the sensitive group from the predictor's
output (and, for equalized odds, from the output together with the true
label). Each training step:

1. the adversary's weights ``U`` take a step down its own loss ``L_A``;
2. the predictor's weights ``W`` take a step along
   ``g_P - proj_{g_A} g_P - alpha * g_A`` with ``g_P = grad_W L_P`` the
   gradient of the compiled loss and ``g_A = grad_W L_A``. The projection
   removes the part of the predictor's update that would help the
   adversary, and ``- alpha * g_A`` moves against it.

The projection is taken over all of the predictor's trainable weights as
one vector, as in the paper. The step is one compiled function (it runs
under ``jit_compile``) and needs the TensorFlow backend.
"""

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.group_codes import nan_unless
from kerasweights.fairness.training import SensitiveInputModel
from kerasweights.fairness.training import _as_model

__all__ = ["AdversarialDebiasingModel"]

_TINY = 1e-12


@keras.saving.register_keras_serializable(package="kerasweights")
class AdversarialDebiasingModel(SensitiveInputModel):
    """Train any one-score Keras model against a group adversary.

    The adversary sees ``z``, the predictor's logit (the score turned into
    a logit when ``from_logits=False``). With ``condition_on_label=True``
    (equalized odds) it sees ``[z, z * y, z * (1 - y)]``, so it can only
    learn the group from what the score says beyond the label. The default
    adversary is one dense layer (logistic regression, as in the paper);
    for more than two groups it predicts ``num_groups`` classes with a
    softmax.

    Compile with the predictor's optimizer and loss; the adversary has its
    own ``adversary_optimizer``. The adversary's batch loss is logged as
    ``adversary_loss``.

    Args:
        predictor: A Keras model with one score per sample.
        sensitive: The name of the input holding integer group codes.
        num_groups: Number of group codes (>= 2).
        alpha: Weight of the push against the adversary (>= 0).
        condition_on_label: Equalized odds (True) or demographic parity.
        from_logits: Whether the predictor outputs logits.
        adversary: Optional Keras model from the adversary input (1 or 3
            features) to 1 logit (two groups) or ``num_groups`` logits.
        adversary_optimizer: Optimizer of the adversary (name or object).
        **kwargs: Passed to `keras.Model`.

    Raises:
        InvalidArgumentError: An argument is out of range, or training
            data lacks the sensitive input.

    Reference:
        Zhang, Lemoine and Mitchell, "Mitigating Unwanted Biases with
        Adversarial Learning", AIES 2018.
    """

    plugin_kind = "regularizer"
    plugin_name = "adversarial_debiasing"

    def __init__(
        self,
        predictor,
        sensitive="group",
        num_groups=2,
        alpha=1.0,
        condition_on_label=False,
        from_logits=False,
        adversary=None,
        adversary_optimizer="adam",
        **kwargs,
    ):
        super().__init__(predictor, sensitive=sensitive, **kwargs)
        if isinstance(num_groups, bool) or not isinstance(num_groups, int):
            num_groups = -1
        if num_groups < 2:
            raise InvalidArgumentError(
                "`num_groups` must be an integer >= 2. Received: "
                f"num_groups={num_groups!r}"
            )
        if not isinstance(alpha, (int, float)) or alpha < 0:
            raise InvalidArgumentError(
                f"`alpha` must be a non-negative number. Received: "
                f"alpha={alpha!r}"
            )
        self.num_groups = num_groups
        self.alpha = float(alpha)
        self.condition_on_label = bool(condition_on_label)
        self.from_logits = bool(from_logits)
        width = 3 if self.condition_on_label else 1
        if adversary is None:
            adversary = keras.Sequential(
                [
                    keras.Input((width,)),
                    keras.layers.Dense(1 if num_groups == 2 else num_groups),
                ],
                name="adversary",
            )
        self.adversary = _as_model(adversary)
        if not self.adversary.built:
            self.adversary.build((None, width))
        self.adversary_optimizer = keras.optimizers.get(adversary_optimizer)
        self.adversary_loss_tracker = keras.metrics.Mean(name="adversary_loss")

    def _logit(self, y_pred):
        y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1, 1))
        if self.from_logits:
            return y_pred
        p = ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
        return ops.log(p) - ops.log(1.0 - p)

    def adversary_inputs(self, y_pred, y):
        """What the adversary sees for predictions ``y_pred``."""
        z = self._logit(y_pred)
        if not self.condition_on_label:
            return z
        y = ops.reshape(ops.cast(y, "float32"), (-1, 1))
        return ops.concatenate([z, z * y, z * (1.0 - y)], axis=1)

    def adversary_loss(self, groups, logits, sample_weight=None):
        """Weighted mean cross-entropy of the adversary's group guess."""
        groups = ops.reshape(ops.cast(groups, "int32"), (-1,))
        if self.num_groups == 2:
            target = ops.cast(groups, "float32")[:, None]
            per = keras.losses.binary_crossentropy(
                target, logits, from_logits=True
            )
        else:
            per = keras.losses.sparse_categorical_crossentropy(
                groups, logits, from_logits=True
            )
        per = ops.reshape(per, (-1,))
        if sample_weight is None:
            return ops.mean(per)
        w = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        total = ops.sum(w)
        return ops.sum(w * per) / ops.where(total > 0, total, 1.0)

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        self.adversary_optimizer.build(self.adversary.trainable_variables)

    def train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        groups, valid = self.checked_groups(x)
        predictor_vars = self.predictor.trainable_variables
        adversary_vars = self.adversary.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight
            )
            logits = self.adversary(
                self.adversary_inputs(y_pred, y), training=True
            )
            adv_loss = self.adversary_loss(groups, logits, sample_weight)
            # Under XLA a bad group code cannot raise: make it visible.
            adv_loss = nan_unless(valid, adv_loss)
        g_pred = tape.gradient(loss, predictor_vars)
        g_adv = tape.gradient(adv_loss, predictor_vars)
        g_own = tape.gradient(adv_loss, adversary_vars)
        del tape

        g_pred = [
            ops.zeros_like(v) if g is None else g
            for g, v in zip(g_pred, predictor_vars, strict=True)
        ]
        g_adv = [
            ops.zeros_like(v) if g is None else g
            for g, v in zip(g_adv, predictor_vars, strict=True)
        ]
        dot = sum(ops.sum(a * b) for a, b in zip(g_pred, g_adv, strict=True))
        norm = sum(ops.sum(ops.square(a)) for a in g_adv)
        scale = dot / (norm + _TINY)
        update = [
            p - scale * a - self.alpha * a
            for p, a in zip(g_pred, g_adv, strict=True)
        ]
        self.optimizer.apply(update, predictor_vars)
        g_own = [
            ops.zeros_like(v) if g is None else g
            for g, v in zip(g_own, adversary_vars, strict=True)
        ]
        self.adversary_optimizer.apply(g_own, adversary_vars)
        self.adversary_loss_tracker.update_state(adv_loss)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_groups=self.num_groups,
            alpha=self.alpha,
            condition_on_label=self.condition_on_label,
            from_logits=self.from_logits,
            adversary=keras.saving.serialize_keras_object(self.adversary),
            adversary_optimizer=keras.saving.serialize_keras_object(
                self.adversary_optimizer
            ),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["predictor"] = _as_model(config["predictor"])
        config["adversary"] = _as_model(config["adversary"])
        config["adversary_optimizer"] = keras.optimizers.deserialize(
            config["adversary_optimizer"]
        )
        return cls(**config)
