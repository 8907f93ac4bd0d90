"""Streaming group-fairness metrics for ``compile(metrics=...)``.

Each metric keeps, per group, weighted counts in float64 variables (all
samples, predicted positives, positives, true positives, negatives, false
positives, and the unweighted row count), so its `result` over any number of
batches equals the NumPy function of `kerasweights.fairness.metrics` on the
whole set.

How the sensitive attribute reaches the metric: Keras calls a compiled
metric as ``update_state(y_true, y_pred, sample_weight)``, with no room for
a third array. These metrics take the group codes as a keyword,
``update_state(y_true, y_pred, groups=..., sample_weight=...)``, and the
fairness training models (`FairnessModel`, `AdversarialDebiasingModel`,
`RateConstrainedModel`) route the named sensitive input to them: pass the
metrics to those models' ``compile(metrics=...)`` and they are updated with
``x[sensitive]`` in every train and test step. Outside those models, call
``update_state`` yourself.

Groups are integer codes in ``[0, num_groups)``. Any other code (groups
coded 1/2, a negative or fractional code) raises `InvalidArgumentError`
when the values are known (NumPy or eager), fails a runtime assertion in a
traced step, and under XLA, where assertions are compiled away, makes the
result NaN until `reset_state`: it is never silently left out.
Predictions are scores, thresholded as ``y_pred > threshold``.
"""

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness.group_codes import group_codes
from kerasweights.fairness.metrics import AGGREGATIONS
from kerasweights.fairness.metrics import METHODS

__all__ = [
    "GroupFairnessMetric",
    "DemographicParityDifference",
    "DemographicParityRatio",
    "EqualizedOddsDifference",
    "EqualizedOddsRatio",
    "EqualOpportunityDifference",
    "EqualOpportunityRatio",
]

_STATES = ("rows", "weight", "selected", "pos", "tp", "neg", "fp")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(
            f"`{name}` must be an integer >= {minimum}. Received: "
            f"{name}={value!r}"
        )


class GroupFairnessMetric(keras.metrics.Metric):
    """Base of the streaming fairness metrics.

    A subclass sets ``rates`` (which of ``"selection"``, ``"tpr"``,
    ``"fpr"`` it compares), ``statistic`` (``"difference"`` or ``"ratio"``)
    and, for two rates, how to combine them (``agg``).

    Args:
        num_groups: Number of group codes.
        threshold: Scores above it count as positive predictions.
        method: ``"between_groups"`` or ``"to_overall"``.
        agg: ``"worst_case"`` or ``"mean"`` (only used with two rates).
        name: Metric name.
        dtype: Ignored for the state, which is always float64.
    """

    rates = ("selection",)
    statistic = "difference"

    def __init__(
        self,
        num_groups=2,
        threshold=0.5,
        method="between_groups",
        agg="worst_case",
        name=None,
        dtype=None,
    ):
        _check_int("num_groups", num_groups, 1)
        if method not in METHODS:
            raise InvalidArgumentError(
                f"`method` must be one of {list(METHODS)}. Received: "
                f"method={method!r}"
            )
        if agg not in AGGREGATIONS:
            raise InvalidArgumentError(
                f"`agg` must be one of {list(AGGREGATIONS)}. Received: "
                f"agg={agg!r}"
            )
        super().__init__(name=name, dtype="float64")
        self.num_groups = num_groups
        self.threshold = float(threshold)
        self.method = method
        self.agg = agg
        self._state = {
            key: self.add_variable(
                shape=(num_groups,),
                initializer="zeros",
                dtype="float64",
                name=key,
            )
            for key in _STATES
        }
        self._invalid = self.add_variable(
            shape=(), initializer="zeros", dtype="float64", name="invalid"
        )

    def update_state(self, y_true, y_pred, groups=None, sample_weight=None):
        """Add one batch.

        Args:
            y_true: Binary labels, shape ``(batch,)`` or ``(batch, 1)``.
            y_pred: Scores, same shape.
            groups: Integer group codes, same length. Required.
            sample_weight: Optional non-negative weights.

        Raises:
            InvalidArgumentError: ``groups`` is missing, or a code is not
                an integer in ``[0, num_groups)``.
        """
        if groups is None:
            raise InvalidArgumentError(
                f"`{type(self).__name__}` needs the group of every sample: "
                "call update_state(y_true, y_pred, groups=...) or compile it "
                "into a FairnessModel, which passes the sensitive input. "
                "Received: groups=None"
            )
        y_true = ops.reshape(ops.cast(y_true, "float64"), (-1,))
        y_pred = ops.reshape(ops.cast(y_pred, "float64"), (-1,))
        predicted = ops.cast(y_pred > self.threshold, "float64")
        codes, valid = group_codes(groups, self.num_groups, self.name)
        self._invalid.assign_add(ops.cast(ops.logical_not(valid), "float64"))
        one_hot = ops.one_hot(codes, self.num_groups, dtype="float64")
        if sample_weight is None:
            weight = ops.ones_like(y_pred)
        else:
            weight = ops.reshape(ops.cast(sample_weight, "float64"), (-1,))
            weight = weight * ops.ones_like(y_pred)
        columns = {
            "rows": ops.ones_like(y_pred),
            "weight": weight,
            "selected": weight * predicted,
            "pos": weight * y_true,
            "tp": weight * y_true * predicted,
            "neg": weight * (1.0 - y_true),
            "fp": weight * (1.0 - y_true) * predicted,
        }
        for key, column in columns.items():
            per_group = ops.sum(one_hot * column[:, None], axis=0)
            self._state[key].assign_add(per_group)

    def _rate(self, which):
        s = {k: ops.convert_to_tensor(v) for k, v in self._state.items()}
        present = s["rows"] > 0
        nan = ops.cast(float("nan"), "float64")
        if which == "selection":
            num, den, empty = s["selected"], s["weight"], nan
        elif which == "tpr":
            num, den, empty = s["tp"], s["pos"], ops.cast(0.0, "float64")
        else:
            num, den, empty = s["fp"], s["neg"], ops.cast(0.0, "float64")
        safe = ops.where(den > 0, den, ops.ones_like(den))
        by_group = ops.where(den > 0, num / safe, empty)
        total_num, total_den = ops.sum(num), ops.sum(den)
        overall = ops.where(
            total_den > 0,
            total_num / ops.where(total_den > 0, total_den, 1.0),
            empty,
        )
        valid = ops.logical_and(present, ops.logical_not(ops.isnan(by_group)))
        return by_group, overall, valid

    def _aggregate(self, by_group, overall, valid):
        inf = ops.cast(float("inf"), "float64")
        nan = ops.cast(float("nan"), "float64")
        any_valid = ops.any(valid)
        if self.statistic == "difference":
            if self.method == "between_groups":
                high = ops.max(ops.where(valid, by_group, -inf))
                low = ops.min(ops.where(valid, by_group, inf))
                value = high - low
            else:
                gaps = ops.abs(by_group - overall)
                value = ops.max(ops.where(valid, gaps, -inf))
            return ops.where(any_valid, value, nan)
        if self.method == "between_groups":
            high = ops.max(ops.where(valid, by_group, -inf))
            low = ops.min(ops.where(valid, by_group, inf))
            value = ops.divide(low, high)
            return ops.where(any_valid, value, nan)
        ratios = ops.divide(by_group, overall)
        ratios = ops.where(ratios > 1, 1.0 / ratios, ratios)
        keep = ops.logical_and(valid, ops.logical_not(ops.isnan(ratios)))
        value = ops.min(ops.where(keep, ratios, inf))
        return ops.where(ops.any(keep), value, nan)

    def result(self):
        value = self._result()
        nan = ops.cast(float("nan"), "float64")
        return ops.where(ops.convert_to_tensor(self._invalid) > 0, nan, value)

    def _result(self):
        parts = [self._aggregate(*self._rate(r)) for r in self.rates]
        if len(parts) == 1:
            return parts[0]
        tpr, fpr = parts
        tpr_nan, fpr_nan = ops.isnan(tpr), ops.isnan(fpr)
        if self.agg == "mean":
            # An undefined part is skipped, as in the NumPy function.
            both = (tpr + fpr) / 2.0
            value = ops.where(tpr_nan, fpr, ops.where(fpr_nan, tpr, both))
            return value
        pick = ops.maximum if self.statistic == "difference" else ops.minimum
        # TPR first: a nan TPR part gives nan, a nan FPR part gives TPR.
        return ops.where(tpr_nan, tpr, ops.where(fpr_nan, tpr, pick(tpr, fpr)))

    def reset_state(self):
        for variable in self._state.values():
            variable.assign(ops.zeros_like(variable))
        self._invalid.assign(ops.zeros_like(self._invalid))

    def get_config(self):
        return {
            "num_groups": self.num_groups,
            "threshold": self.threshold,
            "method": self.method,
            "agg": self.agg,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class DemographicParityDifference(GroupFairnessMetric):
    """Streaming demographic parity difference (selection-rate gap)."""

    rates = ("selection",)
    statistic = "difference"

    def __init__(self, name="demographic_parity_difference", **kwargs):
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerasweights")
class DemographicParityRatio(GroupFairnessMetric):
    """Streaming demographic parity ratio (smallest selection-rate ratio)."""

    rates = ("selection",)
    statistic = "ratio"

    def __init__(self, name="demographic_parity_ratio", **kwargs):
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerasweights")
class EqualizedOddsDifference(GroupFairnessMetric):
    """Streaming equalized odds difference (TPR and FPR gaps)."""

    rates = ("tpr", "fpr")
    statistic = "difference"

    def __init__(self, name="equalized_odds_difference", **kwargs):
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerasweights")
class EqualizedOddsRatio(GroupFairnessMetric):
    """Streaming equalized odds ratio (TPR and FPR ratios)."""

    rates = ("tpr", "fpr")
    statistic = "ratio"

    def __init__(self, name="equalized_odds_ratio", **kwargs):
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerasweights")
class EqualOpportunityDifference(GroupFairnessMetric):
    """Streaming equal opportunity difference (TPR gap)."""

    rates = ("tpr",)
    statistic = "difference"

    def __init__(self, name="equal_opportunity_difference", **kwargs):
        super().__init__(name=name, **kwargs)


@keras.saving.register_keras_serializable(package="kerasweights")
class EqualOpportunityRatio(GroupFairnessMetric):
    """Streaming equal opportunity ratio (smallest TPR ratio)."""

    rates = ("tpr",)
    statistic = "ratio"

    def __init__(self, name="equal_opportunity_ratio", **kwargs):
        super().__init__(name=name, **kwargs)
