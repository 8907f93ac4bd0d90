"""Rate constraints solved with a proxy-Lagrangian in the training step.

A constraint such as "the TPR of every group is within ``epsilon`` of the
overall TPR" is two inequalities per group and rate,
``r_g - r - epsilon <= 0`` and ``r - r_g - epsilon <= 0``, each with its
own multiplier. Hard rates (the fraction of scores above 0.5) have no
gradient, so the game of Cotter, Jiang and Sridharan (2019) gives each
player its own version:

* the model (theta-player) minimises
  ``L + sum_k lambda_k c~_k + damping / 2 * sum_k max(0, c~_k)^2`` where
  ``c~_k`` uses *proxy* rates (mean of ``sigmoid(logit / T)``, the scores
  themselves at ``T = 1``), which have gradients;
* the multipliers (lambda-player) ascend the *hard* violations:
  ``lambda_k <- max(0, lambda_k + eta * c_k)`` after each training batch.

So the multipliers grow exactly while the real, thresholded rates violate
the constraint. The two one-sided constraints matter on small batches:
sampling noise makes ``|r_g - r|`` positive on average even when the rates
agree, so a multiplier on the absolute gap grows from noise alone, while
the signed gaps' noise averages out. The quadratic ``damping`` term
(Platt and Barr's damped multipliers) pulls back at once when a proxy
constraint is violated and so calms the oscillation of plain
gradient-ascent multipliers. This is the non-zero-sum two-player form with
projected gradient ascent for the multipliers; the paper's swap-regret
update of a stochastic matrix and its randomised final classifier are not
implemented: training returns one deterministic model, by default the
last iterate. With ``average_after=k`` it returns instead the uniform
average of the predictor's weights over the training steps after the
first ``k`` (tail averaging): the paper's guarantees hold for the
average over iterates, and the average of the weights is the
deterministic stand-in for it (exact for a model linear in its weights,
a heuristic for a network), which damps the oscillation of the last
iterate that noisy multipliers cause.
"""

import numbers

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.group_codes import nan_unless
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


def _non_negative(value):
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 <= value < float("inf")
    )


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
    rate ``r`` give ``|r_g - r| <= epsilon`` against the batch's overall
    rate (TPR over ``y = 1``, FPR over ``y = 0``, selection over all, each
    weighted by ``sample_weight``), as two one-sided constraints with a
    multiplier each. The multipliers are non-trainable weights (saved with
    the model) and are logged as ``multiplier_sum``; the largest hard
    violation of the batch is logged as ``max_violation``. Rates are batch
    estimates: with small groups use large batches (the benchmark uses
    1024 on Adult).

    Args:
        predictor: A Keras model with one score (a probability) per sample.
        sensitive: The name of the input holding integer group codes.
        constraint: One of ``"demographic_parity"``,
            ``"equal_opportunity"``, ``"false_positive_parity"``,
            ``"equalized_odds"``, ``"parity_and_equalized_odds"`` (all
            three rates at once).
        epsilon: The allowed gap (>= 0), or a dict with one allowed gap
            per bounded rate of ``constraint`` (keys among
            ``"selection"``, ``"tpr"``, ``"fpr"``), e.g. ``{"selection":
            0.01, "tpr": 0.03, "fpr": 0.03}`` for
            ``"parity_and_equalized_odds"`` to hold the selection rates
            tighter than the error rates.
        num_groups: Number of group codes (>= 2).
        multiplier_learning_rate: ``eta`` of the multiplier ascent (> 0).
        proxy_temperature: ``T`` of the proxy rates, the mean of
            ``sigmoid(logit(s) / T)`` (> 0; 1 uses the scores, smaller
            values approach the 0/1 decision).
        damping: Weight of the quadratic term
            ``damping / 2 * sum_k max(0, c~_k)^2`` on the proxy violations
            (>= 0; 0 turns it off).
        holdout: ``None`` (default), or the name of an input holding a
            0/1 flag per row: rows flagged 1 are held out of the loss and
            the proxy terms and only estimate the hard violations that
            move the multipliers; rows flagged 0 train the model (Cotter
            et al., ICML 2019: the multipliers then follow the violation
            on rows the model does not fit, which on small data sets is
            far larger than on the rows it fits). Without it every row
            does both. The flag, like the sensitive input, never reaches
            the predictor.
        average_after: ``None`` (default: ``fit`` leaves the last
            iterate), or an integer ``k >= 0``: every training step after
            the first ``k`` (counted over all ``fit`` and
            ``train_on_batch`` calls of this model, in the saved weight
            ``steps_seen``) adds the predictor's trainable weights, as
            they are after that step's update, to a uniform running
            average kept in non-trainable weights (saved with the model),
            and each ``fit`` ends by copying that average into the
            predictor (`assign_average`). So ``k`` = steps per epoch
            times ``e`` averages over the epochs after the ``e``-th.
            Non-trainable predictor weights (e.g. BatchNormalization
            statistics) stay those of the last step; validation during
            ``fit`` sees the last iterate; a later ``fit`` starts from
            the average and keeps adding to it. The predictor must have
            its weights (be built) when the model is made; the weights
            averaged are those trainable then (a layer frozen later stays
            in the average, with the values it keeps while frozen). The
            step count is a float32 weight, exact up to 2**24 steps; a
            step that a loss-scale optimizer skipped counts as a step
            with unchanged weights; ``EarlyStopping(
            restore_best_weights=True)`` also restores the average and
            count of the best epoch, and the end of ``fit`` then copies
            that epoch's average into the predictor. The averaging
            runs in ``train_step`` and needs the TensorFlow backend.
        **kwargs: Passed to `keras.Model`.

    Raises:
        InvalidArgumentError: An argument is out of range.

    Reference:
        Cotter, Jiang and Sridharan, "Two-Player Games for Efficient
        Non-Convex Constrained Optimization", ALT 2019; Cotter et al.,
        "Optimization with Non-Differentiable Constraints with Applications
        to Fairness, Recall, Churn, and Other Goals", JMLR 2019; Platt and
        Barr, "Constrained Differential Optimization", NeurIPS 1987.
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
        proxy_temperature=1.0,
        damping=0.0,
        holdout=None,
        average_after=None,
        **kwargs,
    ):
        super().__init__(predictor, sensitive=sensitive, **kwargs)
        if average_after is not None and (
            isinstance(average_after, bool)
            or not isinstance(average_after, numbers.Integral)
            or average_after < 0
        ):
            raise InvalidArgumentError(
                "`average_after` must be None or an integer >= 0 (training "
                f"steps). Received: average_after={average_after!r}"
            )
        if holdout is not None and (
            not isinstance(holdout, str) or not holdout or holdout == sensitive
        ):
            raise InvalidArgumentError(
                "`holdout` must be None or the name of an input other than "
                f"`sensitive` ({sensitive!r}). Received: holdout={holdout!r}"
            )
        self.holdout = holdout
        if constraint not in CONSTRAINTS:
            raise InvalidArgumentError(
                f"`constraint` must be one of {list(CONSTRAINTS)}. Received: "
                f"constraint={constraint!r}"
            )
        rates = CONSTRAINTS[constraint]
        if isinstance(epsilon, dict):
            if set(epsilon) != set(rates) or not all(
                _non_negative(v) for v in epsilon.values()
            ):
                raise InvalidArgumentError(
                    "`epsilon` as a dict must map each rate of "
                    f"{constraint!r}, {list(rates)}, to a non-negative "
                    f"number. Received: epsilon={epsilon!r}"
                )
            self.epsilon = {r: float(epsilon[r]) for r in rates}
        elif _non_negative(epsilon):
            self.epsilon = float(epsilon)
        else:
            raise InvalidArgumentError(
                "`epsilon` must be a non-negative number or a dict of "
                f"them per rate. Received: epsilon={epsilon!r}"
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
        self.num_groups = num_groups
        temp = proxy_temperature
        if (
            isinstance(temp, bool)
            or not isinstance(temp, (int, float))
            or not temp > 0
            or temp == float("inf")
        ):
            raise InvalidArgumentError(
                "`proxy_temperature` must be a positive finite number. "
                f"Received: proxy_temperature={temp!r}"
            )
        if (
            isinstance(damping, bool)
            or not isinstance(damping, (int, float))
            or not 0 <= damping < float("inf")
        ):
            raise InvalidArgumentError(
                "`damping` must be a non-negative finite number. "
                f"Received: damping={damping!r}"
            )
        self.multiplier_learning_rate = float(rate)
        self.proxy_temperature = float(temp)
        self.damping = float(damping)
        count = 2 * num_groups * len(CONSTRAINTS[constraint])
        self.multipliers = self.add_weight(
            name="multipliers",
            shape=(count,),
            initializer="zeros",
            trainable=False,
        )
        self.violation_tracker = keras.metrics.Mean(name="max_violation")
        self.multiplier_tracker = keras.metrics.Mean(name="multiplier_sum")
        self.average_after = (
            None if average_after is None else int(average_after)
        )
        self._averages = []
        # Positions in `predictor.variables` (an order that freezing or
        # unfreezing a layer does not change) of the weights averaged:
        # those trainable when this model is made.
        self._average_positions = ()
        if average_after is not None:
            self._average_positions = tuple(
                i for i, v in enumerate(self.predictor.variables) if v.trainable
            )
            targets = self._average_targets()
            if not targets:
                raise InvalidArgumentError(
                    "`average_after` needs a predictor with trainable "
                    "weights when RateConstrainedModel is made (build it "
                    "first, and do not freeze all of it). Received: a "
                    "predictor without trainable weights"
                )
            self.steps_seen = self.add_weight(
                name="steps_seen",
                shape=(),
                initializer="zeros",
                trainable=False,
            )
            self._averages = [
                self.add_weight(
                    name=f"average_{i}",
                    shape=v.shape,
                    dtype=v.dtype,
                    initializer="zeros",
                    trainable=False,
                )
                for i, v in enumerate(targets)
            ]

    def _average_targets(self):
        variables = self.predictor.variables
        return [variables[i] for i in self._average_positions]

    @property
    def averaged_steps(self):
        """How many training steps the weight average holds (0 without
        ``average_after``)."""
        if self.average_after is None:
            return 0
        return max(0, int(self.steps_seen.numpy()) - self.average_after)

    def train_step(self, *args):
        logs = super().train_step(*args)
        if self.average_after is not None:
            self._accumulate_average()
        return logs

    def _accumulate_average(self):
        # Uniform running mean: a_n = a_{n-1} + (w - a_{n-1}) / n, for the
        # steps numbered above `average_after` (the first sets a_1 = w).
        steps = self.steps_seen + 1.0
        self.steps_seen.assign(steps)
        count = steps - float(self.average_after)
        share = ops.where(count > 0, 1.0 / ops.maximum(count, 1.0), 0.0)
        for average, weight in zip(
            self._averages, self._average_targets(), strict=True
        ):
            value = ops.convert_to_tensor(average)
            step = ops.cast(share, value.dtype) * (weight - value)
            average.assign(value + step)

    def assign_average(self):
        """Copy the weight average into the predictor's trainable weights.

        ``fit`` calls it at its end. Returns True when it copied, False
        when there is nothing to copy (no ``average_after``, or no step
        after the first ``average_after`` yet: the predictor keeps its
        weights).
        """
        if not self.averaged_steps:
            return False
        for average, weight in zip(
            self._averages, self._average_targets(), strict=True
        ):
            weight.assign(average)
        return True

    def fit(self, x=None, y=None, *args, **kwargs):
        """`SensitiveInputModel.fit`; with ``average_after``, the predictor
        then holds the weight average (`assign_average`)."""
        history = super().fit(x, y, *args, **kwargs)
        self.assign_average()
        return history

    def constraint_values(self, groups, scores, labels, weights):
        """(soft, hard, present) constraint values, two per group and rate.

        For each bounded rate, the first ``num_groups`` values are
        ``r_g - r - epsilon`` and the next ``num_groups`` are
        ``r - r_g - epsilon`` (both sides of ``|r_g - r| <= epsilon``).
        ``soft`` uses the proxy scores (`proxy_scores`), ``hard`` the
        fraction above 0.5; ``present`` marks the constraints whose group
        has weight in the batch (the others are reported as satisfied,
        ``-epsilon``).
        """
        one_hot = ops.one_hot(groups, self.num_groups, dtype="float32")
        hard_scores = ops.cast(scores > 0.5, "float32")
        proxy = self.proxy_scores(scores)
        soft, hard, present = [], [], []
        for rate in CONSTRAINTS[self.constraint]:
            eps = self.rate_epsilon(rate)
            cell = _cells(rate, labels) * weights
            group_w = ops.sum(one_hot * cell[:, None], axis=0)
            total_w = ops.sum(cell)
            has = group_w > 0
            safe_g = ops.where(has, group_w, 1.0)
            safe_t = ops.where(total_w > 0, total_w, 1.0)
            for values, out in ((proxy, soft), (hard_scores, hard)):
                group_rate = (
                    ops.sum(one_hot * (cell * values)[:, None], axis=0) / safe_g
                )
                overall = ops.sum(cell * values) / safe_t
                gap = group_rate - overall
                for signed in (gap, -gap):
                    out.append(ops.where(has, signed - eps, -eps))
            present.extend([has, has])
        return (
            ops.concatenate(soft),
            ops.concatenate(hard),
            ops.concatenate(present),
        )

    def features(self, inputs):
        if self.holdout is not None and isinstance(inputs, dict):
            inputs = {k: v for k, v in inputs.items() if k != self.holdout}
        return super().features(inputs)

    def holdout_flags(self, inputs):
        """Flat float32 0/1 flags of the ``holdout`` input; raises if it
        is missing."""
        if not isinstance(inputs, dict) or self.holdout not in inputs:
            raise InvalidArgumentError(
                f"RateConstrainedModel(holdout={self.holdout!r}) needs the "
                f"input {self.holdout!r} (0/1 per row) in the dict of "
                "inputs"
            )
        flags = ops.reshape(ops.cast(inputs[self.holdout], "float32"), (-1,))
        return ops.cast(flags > 0.5, "float32")

    def rate_epsilon(self, rate):
        """The allowed gap of ``rate`` (``"selection"``, ``"tpr"``,
        ``"fpr"``)."""
        if isinstance(self.epsilon, dict):
            return self.epsilon[rate]
        return self.epsilon

    def proxy_scores(self, scores):
        """The differentiable stand-in for the 0/1 decision ``s > 0.5``.

        ``sigmoid(logit(s) / proxy_temperature)``: the score itself at the
        default temperature 1, a steeper step around 0.5 below 1.
        """
        if self.proxy_temperature == 1.0:
            return scores
        p = ops.clip(scores, 1e-6, 1.0 - 1e-6)
        logit = ops.log(p) - ops.log(1.0 - p)
        return ops.sigmoid(logit / self.proxy_temperature)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        scores = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        labels = ops.reshape(ops.cast(y, "float32"), (-1,))
        groups, valid = self.checked_groups(x)
        if sample_weight is None:
            weights = ops.ones_like(scores)
        else:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        fit_weights = held_weights = weights
        if self.holdout is not None:
            held = self.holdout_flags(x)
            fit_weights = weights * (1.0 - held)
            held_weights = weights * held
            sample_weight = fit_weights
        loss = super().compute_loss(
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )
        soft, hard, _ = self.constraint_values(
            groups, scores, labels, fit_weights
        )
        if self.holdout is not None:
            _, hard, _ = self.constraint_values(
                groups, scores, labels, held_weights
            )
        lam = ops.convert_to_tensor(self.multipliers)
        if training:
            step = self.multiplier_learning_rate * ops.stop_gradient(hard)
            self.multipliers.assign(ops.relu(lam + step))
        self.violation_tracker.update_state(ops.max(hard))
        self.multiplier_tracker.update_state(ops.sum(lam))
        proxy = ops.sum(ops.stop_gradient(lam) * soft)
        if self.damping:
            proxy = proxy + 0.5 * self.damping * ops.sum(
                ops.square(ops.relu(soft))
            )
        # Under XLA a bad group code cannot raise: make it visible.
        proxy = nan_unless(valid, proxy)
        return loss + ops.cast(proxy, loss.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            constraint=self.constraint,
            epsilon=self.epsilon,
            num_groups=self.num_groups,
            multiplier_learning_rate=self.multiplier_learning_rate,
            proxy_temperature=self.proxy_temperature,
            damping=self.damping,
            holdout=self.holdout,
            average_after=self.average_after,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["predictor"] = _as_model(config["predictor"])
        return cls(**config)
