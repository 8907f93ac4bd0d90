"""Rate constraints solved with a proxy-Lagrangian in the training step.

A constraint such as "the TPR of every group is within ``epsilon`` of the
overall TPR" is one inequality per group and rate,
``c_k = |r_g - r| - epsilon <= 0``. Hard rates (the fraction of scores
above 0.5) have no gradient, so the game of Cotter, Jiang and Sridharan
(2019) gives each player its own version:

* the model (theta-player) minimises ``L + sum_k lambda_k c~_k`` where
  ``c~_k`` uses *soft* rates (mean scores), which have gradients;
* the multipliers (lambda-player) ascend the *hard* violations:
  ``lambda_k <- max(0, lambda_k + eta * c_k)`` after each training batch.

So the multipliers grow exactly while the real, thresholded rates violate
the constraint. This is the non-zero-sum two-player form with projected
gradient ascent for the multipliers; the paper's swap-regret update of a
stochastic matrix and its randomised final classifier are not implemented:
training returns the last iterate, one deterministic model.
"""

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.training import SensitiveInputModel
from kerasweights.fairness.training import _as_model

__all__ = ["RateConstrainedModel", "CONSTRAINTS"]

# Which rates each constraint bounds, per group, against the overall rate.
CONSTRAINTS = {
    "demographic_parity": ("selection",),
    "equal_opportunity": ("tpr",),
    "false_positive_parity": ("fpr",),
    "equalized_odds": ("tpr", "fpr"),
    "parity_and_equalized_odds": ("selection", "tpr", "fpr"),
}


def _cells(rate, labels):
    if rate == "selection":
        return ops.ones_like(labels)
    if rate == "tpr":
        return labels
    return 1.0 - labels


@keras.saving.register_keras_serializable(package="kerasweights")
class RateConstrainedModel(SensitiveInputModel):
    """Train with per-group rate constraints and Lagrange multipliers.

    For ``constraint`` in ``CONSTRAINTS``, every group ``g`` and bounded
    rate ``r`` give one constraint ``|r_g - r| <= epsilon`` against the
    batch's overall rate (TPR over ``y = 1``, FPR over ``y = 0``, selection
    over all, each weighted by ``sample_weight``). The multipliers are
    non-trainable weights (saved with the model) and are logged as
    ``multiplier_sum``; the largest hard violation of the batch is logged
    as ``max_violation``.

    Args:
        predictor: A Keras model with one score (a probability) per sample.
        sensitive: The name of the input holding integer group codes.
        constraint: One of ``"demographic_parity"``,
            ``"equal_opportunity"``, ``"false_positive_parity"``,
            ``"equalized_odds"``, ``"parity_and_equalized_odds"`` (all
            three rates at once).
        epsilon: The allowed gap (>= 0).
        num_groups: Number of group codes (>= 2).
        multiplier_learning_rate: ``eta`` of the multiplier ascent (> 0).
        **kwargs: Passed to `keras.Model`.

    Raises:
        InvalidArgumentError: An argument is out of range.

    Reference:
        Cotter, Jiang and Sridharan, "Two-Player Games for Efficient
        Non-Convex Constrained Optimization", ALT 2019; Cotter et al.,
        "Optimization with Non-Differentiable Constraints with Applications
        to Fairness, Recall, Churn, and Other Goals", JMLR 2019.
    """

    plugin_kind = "regularizer"
    plugin_name = "rate_constrained_model"

    def __init__(
        self,
        predictor,
        sensitive="group",
        constraint="equalized_odds",
        epsilon=0.02,
        num_groups=2,
        multiplier_learning_rate=0.05,
        **kwargs,
    ):
        super().__init__(predictor, sensitive=sensitive, **kwargs)
        if constraint not in CONSTRAINTS:
            raise InvalidArgumentError(
                f"`constraint` must be one of {list(CONSTRAINTS)}. Received: "
                f"constraint={constraint!r}"
            )
        if not isinstance(epsilon, (int, float)) or epsilon < 0:
            raise InvalidArgumentError(
                f"`epsilon` must be a non-negative number. Received: "
                f"epsilon={epsilon!r}"
            )
        if (
            isinstance(num_groups, bool)
            or not isinstance(num_groups, int)
            or num_groups < 2
        ):
            raise InvalidArgumentError(
                "`num_groups` must be an integer >= 2. Received: "
                f"num_groups={num_groups!r}"
            )
        rate = multiplier_learning_rate
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise InvalidArgumentError(
                "`multiplier_learning_rate` must be a positive number. "
                f"Received: multiplier_learning_rate={rate!r}"
            )
        self.constraint = constraint
        self.epsilon = float(epsilon)
        self.num_groups = num_groups
        self.multiplier_learning_rate = float(rate)
        count = num_groups * len(CONSTRAINTS[constraint])
        self.multipliers = self.add_weight(
            name="multipliers",
            shape=(count,),
            initializer="zeros",
            trainable=False,
        )
        self.violation_tracker = keras.metrics.Mean(name="max_violation")
        self.multiplier_tracker = keras.metrics.Mean(name="multiplier_sum")

    def constraint_values(self, groups, scores, labels, weights):
        """(soft, hard, present) constraint values, one per group and rate.

        ``soft`` uses mean scores, ``hard`` the fraction above 0.5;
        ``present`` marks the constraints whose group has weight in the
        batch (the others are reported as satisfied).
        """
        one_hot = ops.one_hot(groups, self.num_groups, dtype="float32")
        hard_scores = ops.cast(scores > 0.5, "float32")
        soft, hard, present = [], [], []
        for rate in CONSTRAINTS[self.constraint]:
            cell = _cells(rate, labels) * weights
            group_w = ops.sum(one_hot * cell[:, None], axis=0)
            total_w = ops.sum(cell)
            has = group_w > 0
            safe_g = ops.where(has, group_w, 1.0)
            safe_t = ops.where(total_w > 0, total_w, 1.0)
            for values, out in ((scores, soft), (hard_scores, hard)):
                group_rate = (
                    ops.sum(one_hot * (cell * values)[:, None], axis=0) / safe_g
                )
                overall = ops.sum(cell * values) / safe_t
                gap = ops.abs(group_rate - overall) - self.epsilon
                out.append(ops.where(has, gap, -self.epsilon))
            present.append(has)
        return (
            ops.concatenate(soft),
            ops.concatenate(hard),
            ops.concatenate(present),
        )

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = super().compute_loss(
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )
        scores = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        labels = ops.reshape(ops.cast(y, "float32"), (-1,))
        groups = ops.reshape(ops.cast(self.groups(x), "int32"), (-1,))
        if sample_weight is None:
            weights = ops.ones_like(scores)
        else:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        soft, hard, _ = self.constraint_values(groups, scores, labels, weights)
        lam = ops.convert_to_tensor(self.multipliers)
        if training:
            step = self.multiplier_learning_rate * ops.stop_gradient(hard)
            self.multipliers.assign(ops.relu(lam + step))
        self.violation_tracker.update_state(ops.max(hard))
        self.multiplier_tracker.update_state(ops.sum(lam))
        proxy = ops.sum(ops.stop_gradient(lam) * soft)
        return loss + ops.cast(proxy, loss.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            constraint=self.constraint,
            epsilon=self.epsilon,
            num_groups=self.num_groups,
            multiplier_learning_rate=self.multiplier_learning_rate,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["predictor"] = _as_model(config["predictor"])
        return cls(**config)
