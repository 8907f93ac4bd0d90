"""Group fairness metrics as plain NumPy functions.

Every function takes hard binary predictions (``0``/``1``), binary labels
and one sensitive value per sample (any hashable values: ints, strings), and
an optional non-negative ``sample_weight``. Rates are weighted:

* selection rate of group ``a``: ``sum(w * [y_hat = 1]) / sum(w)`` over the
  samples of ``a``;
* true positive rate: ``sum(w * [y_hat = 1]) / sum(w)`` over the samples of
  ``a`` with ``y = 1``; false positive rate the same over ``y = 0``. A group
  with no positives (no negatives) has a TPR (FPR) of 0, the convention of
  scikit-learn's normalised confusion matrix.

Differences and ratios aggregate the per-group values in two ways:

* ``method="between_groups"``: ``max_a r_a - min_a r_a`` and
  ``min_a r_a / max_a r_a``;
* ``method="to_overall"``: ``max_a |r_a - r|`` and ``min_a min(r_a / r,
  r / r_a)`` where ``r`` is the rate over all samples.

Undefined per-group values (a group whose weights sum to zero) are skipped
by the aggregations; a ratio of ``0 / 0`` is ``nan``. These are the
definitions fairlearn 0.15 uses, and the test-suite checks agreement to
1e-9.
"""

import dataclasses

import numpy as np

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError

__all__ = [
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "GroupReport",
    "group_report",
    "METHODS",
    "AGGREGATIONS",
]

METHODS = ("between_groups", "to_overall")
AGGREGATIONS = ("worst_case", "mean")


def _vector(name, values, dtype=None):
    array = np.asarray(values, dtype=dtype)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputDataError(
            f"`{name}` must be a 1-D array (one value per sample). "
            f"Received: {name} with shape {array.shape}"
        )
    return array


def _binary(name, values):
    array = _vector(name, values)
    unique = np.unique(array)
    if not np.isin(unique, (0, 1)).all():
        raise InputDataError(
            f"`{name}` must hold only 0 and 1. Received: {name} with values "
            f"{unique[:5].tolist()}"
        )
    return array.astype(np.float64)


def _weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    weights = _vector("sample_weight", sample_weight, np.float64)
    if weights.shape[0] != n:
        raise InputDataError(
            f"`sample_weight` must have one value per sample ({n}). "
            f"Received: sample_weight with {weights.shape[0]} values"
        )
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise InputDataError(
            "`sample_weight` must be finite and non-negative. Received: "
            f"min={weights.min()}"
        )
    return weights


def _check_choice(name, value, options):
    if value not in options:
        raise InvalidArgumentError(
            f"`{name}` must be one of {list(options)}. Received: "
            f"{name}={value!r}"
        )


def _ratio(numerator, denominator, empty):
    """``numerator / denominator``, ``empty`` where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denominator > 0, numerator / denominator, empty)
    return out


def _prepare(y_true, y_pred, sensitive_features, sample_weight):
    y_pred = _binary("y_pred", y_pred)
    n = y_pred.shape[0]
    if y_true is None:
        y_true = np.zeros(n)
    else:
        y_true = _binary("y_true", y_true)
    groups = _vector("sensitive_features", sensitive_features)
    for name, array in (("y_true", y_true), ("sensitive_features", groups)):
        if array.shape[0] != n:
            raise InputDataError(
                f"`{name}` must have one value per prediction ({n}). "
                f"Received: {name} with {array.shape[0]} values"
            )
    if n == 0:
        raise InputDataError("The inputs must not be empty. Received: 0 rows")
    weights = _weights(sample_weight, n)
    names, codes = np.unique(groups, return_inverse=True)
    return y_true, y_pred, codes.reshape(-1), names, weights


def _rates(kind, y_true, y_pred, codes, n_groups, weights):
    """Per-group and overall rate of one kind, from weighted counts."""
    if kind == "selection_rate":
        mask = np.ones_like(y_pred)
        empty = np.nan
    elif kind == "true_positive_rate":
        mask = y_true
        empty = 0.0
    elif kind == "false_positive_rate":
        mask = 1.0 - y_true
        empty = 0.0
    else:
        raise InvalidArgumentError(
            "`metric` must be one of ['selection_rate', 'true_positive_rate', "
            f"'false_positive_rate']. Received: metric={kind!r}"
        )
    base = weights * mask
    hits = np.bincount(codes, base * y_pred, minlength=n_groups)
    totals = np.bincount(codes, base, minlength=n_groups)
    if kind == "selection_rate":
        # A group whose weights sum to zero has no defined selection rate.
        by_group = _ratio(hits, totals, np.nan)
    else:
        by_group = _ratio(hits, totals, empty)
    overall = float(_ratio(np.sum(base * y_pred), np.sum(base), empty))
    return by_group, overall


def _difference(by_group, overall, method):
    _check_choice("method", method, METHODS)
    valid = by_group[~np.isnan(by_group)]
    if valid.size == 0:
        return float("nan")
    if method == "between_groups":
        return float(valid.max() - valid.min())
    return float(np.max(np.abs(valid - overall)))


def _ratio_of(by_group, overall, method):
    _check_choice("method", method, METHODS)
    valid = by_group[~np.isnan(by_group)]
    if valid.size == 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "between_groups":
            return float(np.float64(valid.min()) / np.float64(valid.max()))
        ratios = valid / overall
        # Each ratio is folded below one; 0/0 stays nan and is skipped.
        ratios = np.where(ratios > 1, 1.0 / ratios, ratios)
    ratios = ratios[~np.isnan(ratios)]
    return float(ratios.min()) if ratios.size else float("nan")


def _group_rates(kind, y_true, y_pred, sensitive_features, sample_weight):
    y_true, y_pred, codes, names, weights = _prepare(
        y_true, y_pred, sensitive_features, sample_weight
    )
    return _rates(kind, y_true, y_pred, codes, len(names), weights)


def selection_rate(y_true, y_pred, *, sample_weight=None):
    """The weighted fraction of samples predicted positive.

    Args:
        y_true: Ignored (kept for the common metric signature); may be None.
        y_pred: Binary predictions, shape ``(n,)``.
        sample_weight: Optional non-negative weights, shape ``(n,)``.

    Returns:
        A float, ``sum(w * y_pred) / sum(w)``.
    """
    y_pred = _binary("y_pred", y_pred)
    weights = _weights(sample_weight, y_pred.shape[0])
    return float(_ratio(np.sum(weights * y_pred), np.sum(weights), np.nan))


def true_positive_rate(y_true, y_pred, *, sample_weight=None):
    """The weighted fraction of positives predicted positive (recall).

    Returns 0 when there is no positive, as scikit-learn does.
    """
    y_true = _binary("y_true", y_true)
    y_pred = _binary("y_pred", y_pred)
    weights = _weights(sample_weight, y_pred.shape[0]) * y_true
    return float(_ratio(np.sum(weights * y_pred), np.sum(weights), 0.0))


def false_positive_rate(y_true, y_pred, *, sample_weight=None):
    """The weighted fraction of negatives predicted positive.

    Returns 0 when there is no negative, as scikit-learn does.
    """
    y_true = _binary("y_true", y_true)
    y_pred = _binary("y_pred", y_pred)
    weights = _weights(sample_weight, y_pred.shape[0]) * (1.0 - y_true)
    return float(_ratio(np.sum(weights * y_pred), np.sum(weights), 0.0))


def demographic_parity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
):
    """Largest gap in selection rate between groups (or to the overall rate).

    Args:
        y_true: Binary labels (unused by the selection rate; may be None).
        y_pred: Binary predictions.
        sensitive_features: One group value per sample.
        method: ``"between_groups"`` or ``"to_overall"``.
        sample_weight: Optional non-negative weights.

    Returns:
        A float in ``[0, 1]``; 0 means equal selection rates.

    Raises:
        InputDataError: The arrays are not 1-D, binary or of equal length.
        InvalidArgumentError: ``method`` is unknown.

    Example:
        >>> demographic_parity_difference(
        ...     [0, 1, 0, 1], [1, 1, 0, 1], sensitive_features=[0, 0, 1, 1])
        0.5
    """
    by_group, overall = _group_rates(
        "selection_rate", y_true, y_pred, sensitive_features, sample_weight
    )
    return _difference(by_group, overall, method)


def demographic_parity_ratio(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
):
    """Smallest ratio of selection rates (1 means equal rates).

    Arguments as `demographic_parity_difference`.
    """
    by_group, overall = _group_rates(
        "selection_rate", y_true, y_pred, sensitive_features, sample_weight
    )
    return _ratio_of(by_group, overall, method)


def _eo_parts(y_true, y_pred, sensitive_features, sample_weight):
    y_true, y_pred, codes, names, weights = _prepare(
        y_true, y_pred, sensitive_features, sample_weight
    )
    n = len(names)
    tpr = _rates("true_positive_rate", y_true, y_pred, codes, n, weights)
    fpr = _rates("false_positive_rate", y_true, y_pred, codes, n, weights)
    return tpr, fpr


def _combine(parts, agg, pick):
    """Combine the TPR and FPR parts of equalized odds.

    ``"mean"`` skips an undefined (nan) part. ``"worst_case"`` compares the
    parts in order (TPR first), as fairlearn does: a nan TPR part gives nan,
    a nan FPR part gives the TPR part.
    """
    if agg == "mean":
        defined = [p for p in parts if not np.isnan(p)]
        return float(np.mean(defined)) if defined else float("nan")
    return float(pick(parts))


def equalized_odds_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
    agg="worst_case",
):
    """Gap in TPR and FPR between groups, the larger or the mean of the two.

    Args:
        y_true: Binary labels.
        y_pred: Binary predictions.
        sensitive_features: One group value per sample.
        method: ``"between_groups"`` or ``"to_overall"``.
        sample_weight: Optional non-negative weights.
        agg: ``"worst_case"`` (the larger gap) or ``"mean"``.

    Returns:
        A float in ``[0, 1]``.

    Raises:
        InvalidArgumentError: ``method`` or ``agg`` is unknown.
    """
    _check_choice("agg", agg, AGGREGATIONS)
    tpr, fpr = _eo_parts(y_true, y_pred, sensitive_features, sample_weight)
    parts = [_difference(*tpr, method), _difference(*fpr, method)]
    return _combine(parts, agg, max)


def equalized_odds_ratio(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
    agg="worst_case",
):
    """Ratio of TPRs and of FPRs, the smaller or the mean of the two."""
    _check_choice("agg", agg, AGGREGATIONS)
    tpr, fpr = _eo_parts(y_true, y_pred, sensitive_features, sample_weight)
    parts = [_ratio_of(*tpr, method), _ratio_of(*fpr, method)]
    return _combine(parts, agg, min)


def equal_opportunity_difference(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
):
    """Largest gap in true positive rate between groups."""
    by_group, overall = _group_rates(
        "true_positive_rate", y_true, y_pred, sensitive_features, sample_weight
    )
    return _difference(by_group, overall, method)


def equal_opportunity_ratio(
    y_true,
    y_pred,
    *,
    sensitive_features,
    method="between_groups",
    sample_weight=None,
):
    """Smallest ratio of true positive rates between groups."""
    by_group, overall = _group_rates(
        "true_positive_rate", y_true, y_pred, sensitive_features, sample_weight
    )
    return _ratio_of(by_group, overall, method)


_REPORT_METRICS = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "accuracy",
    "count",
)


@dataclasses.dataclass
class GroupReport:
    """Per-group values of several metrics, like fairlearn's ``MetricFrame``.

    Attributes:
        groups: The sorted group values.
        overall: ``{metric: value}`` over all samples.
        by_group: ``{group: {metric: value}}``.
    """

    groups: list
    overall: dict
    by_group: dict

    def _column(self, metric):
        return np.array(
            [self.by_group[g][metric] for g in self.groups], dtype=np.float64
        )

    def group_min(self, metric):
        """The smallest defined per-group value of ``metric``."""
        column = self._column(metric)
        return float(np.nanmin(column))

    def group_max(self, metric):
        """The largest defined per-group value of ``metric``."""
        column = self._column(metric)
        return float(np.nanmax(column))

    def difference(self, metric, method="between_groups"):
        """Largest gap of ``metric`` between groups or to the overall value."""
        return _difference(self._column(metric), self.overall[metric], method)

    def ratio(self, metric, method="between_groups"):
        """Smallest ratio of ``metric`` between groups or to the overall."""
        return _ratio_of(self._column(metric), self.overall[metric], method)

    def to_dict(self):
        """A JSON-ready dict (group values as strings)."""
        return {
            "overall": dict(self.overall),
            "by_group": {str(g): dict(v) for g, v in self.by_group.items()},
        }

    def to_pandas(self):
        """The per-group table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.by_group, orient="index")


def group_report(y_true, y_pred, *, sensitive_features, sample_weight=None):
    """Selection rate, TPR, FPR, accuracy and count for every group.

    Args:
        y_true: Binary labels.
        y_pred: Binary predictions.
        sensitive_features: One group value per sample.
        sample_weight: Optional non-negative weights.

    Returns:
        A `GroupReport`; ``count`` is the unweighted number of samples.

    Example:
        >>> r = group_report([0, 1, 1, 0], [0, 1, 0, 0],
        ...                  sensitive_features=["a", "a", "b", "b"])
        >>> r.by_group["b"]["true_positive_rate"]
        0.0
    """
    y_true, y_pred, codes, names, weights = _prepare(
        y_true, y_pred, sensitive_features, sample_weight
    )
    n = len(names)
    columns = {}
    overall = {}
    for kind in _REPORT_METRICS[:3]:
        columns[kind], overall[kind] = _rates(
            kind, y_true, y_pred, codes, n, weights
        )
    correct = weights * (y_true == y_pred)
    columns["accuracy"] = _ratio(
        np.bincount(codes, correct, minlength=n),
        np.bincount(codes, weights, minlength=n),
        np.nan,
    )
    overall["accuracy"] = float(_ratio(correct.sum(), weights.sum(), np.nan))
    columns["count"] = np.bincount(codes, minlength=n).astype(np.float64)
    overall["count"] = float(len(codes))
    groups = names.tolist()
    by_group = {
        g: {k: float(columns[k][i]) for k in _REPORT_METRICS}
        for i, g in enumerate(groups)
    }
    return GroupReport(groups=groups, overall=overall, by_group=by_group)
