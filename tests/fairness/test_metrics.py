"""The NumPy and streaming fairness metrics agree with fairlearn 0.15."""

import math

import fairlearn.metrics as flm
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness import keras_metrics as km
from kerasweights.fairness import metrics as m

PAIRS = [
    (m.demographic_parity_difference, flm.demographic_parity_difference),
    (m.demographic_parity_ratio, flm.demographic_parity_ratio),
    (m.equal_opportunity_difference, flm.equal_opportunity_difference),
    (m.equal_opportunity_ratio, flm.equal_opportunity_ratio),
]
EO_PAIRS = [
    (m.equalized_odds_difference, flm.equalized_odds_difference),
    (m.equalized_odds_ratio, flm.equalized_odds_ratio),
]


def _same(a, b):
    if math.isnan(b):
        return math.isnan(a)
    return abs(a - b) <= 1e-9


@st.composite
def samples(draw):
    n = draw(st.integers(4, 40))
    n_groups = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    groups = rng.integers(0, n_groups, n)
    weights = None
    if draw(st.booleans()):
        weights = rng.uniform(0.1, 3.0, n)
    return y_true, y_pred, groups, weights


@settings(max_examples=25, deadline=None)
@given(samples(), st.sampled_from(["between_groups", "to_overall"]))
def test_agrees_with_fairlearn(data, method):
    y_true, y_pred, groups, weights = data
    for ours, theirs in PAIRS:
        kw = dict(
            sensitive_features=groups, method=method, sample_weight=weights
        )
        assert _same(ours(y_true, y_pred, **kw), theirs(y_true, y_pred, **kw))
    for agg in ("worst_case", "mean"):
        for ours, theirs in EO_PAIRS:
            kw = dict(
                sensitive_features=groups,
                method=method,
                sample_weight=weights,
                agg=agg,
            )
            expected = theirs(y_true, y_pred, **kw)
            assert _same(ours(y_true, y_pred, **kw), expected)


@settings(max_examples=10, deadline=None)
@given(samples())
def test_group_report_matches_metric_frame(data):
    y_true, y_pred, groups, weights = data
    names = np.array([f"g{g}" for g in groups])
    frame = flm.MetricFrame(
        metrics={
            "selection_rate": flm.selection_rate,
            "true_positive_rate": flm.true_positive_rate,
            "false_positive_rate": flm.false_positive_rate,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=names,
        sample_params={
            k: {"sample_weight": weights}
            for k in (
                "selection_rate",
                "true_positive_rate",
                "false_positive_rate",
            )
        },
    )
    report = m.group_report(
        y_true, y_pred, sensitive_features=names, sample_weight=weights
    )
    for metric in (
        "selection_rate",
        "true_positive_rate",
        "false_positive_rate",
    ):
        for group in report.groups:
            assert _same(
                report.by_group[group][metric], frame.by_group[metric][group]
            )
        assert _same(report.overall[metric], frame.overall[metric])
        for method in ("between_groups", "to_overall"):
            assert _same(
                report.difference(metric, method),
                frame.difference(method=method)[metric],
            )
            assert _same(
                report.ratio(metric, method), frame.ratio(method=method)[metric]
            )


def test_zero_weight_group_is_skipped_like_fairlearn():
    y_true = np.array([0, 1, 1, 0, 1, 0])
    y_pred = np.array([1, 1, 0, 0, 1, 1])
    groups = np.array([0, 0, 1, 1, 2, 2])
    weights = np.array([1.0, 2.0, 0.0, 0.0, 1.0, 1.0])
    for ours, theirs in PAIRS[:2]:
        kw = dict(sensitive_features=groups, sample_weight=weights)
        assert _same(ours(y_true, y_pred, **kw), theirs(y_true, y_pred, **kw))


def test_bad_inputs_raise_named_errors():
    with pytest.raises(InputDataError, match="y_pred"):
        m.demographic_parity_difference(
            [0, 1], [0, 2], sensitive_features=[0, 1]
        )
    with pytest.raises(InputDataError, match="sensitive_features"):
        m.demographic_parity_difference([0, 1], [0, 1], sensitive_features=[0])
    with pytest.raises(InvalidArgumentError, match="method"):
        m.demographic_parity_difference(
            [0, 1], [0, 1], sensitive_features=[0, 1], method="pairs"
        )
    with pytest.raises(InvalidArgumentError, match="agg"):
        m.equalized_odds_difference(
            [0, 1], [0, 1], sensitive_features=[0, 1], agg="max"
        )


STREAMING = [
    (km.DemographicParityDifference, m.demographic_parity_difference, False),
    (km.DemographicParityRatio, m.demographic_parity_ratio, False),
    (km.EqualOpportunityDifference, m.equal_opportunity_difference, False),
    (km.EqualOpportunityRatio, m.equal_opportunity_ratio, False),
    (km.EqualizedOddsDifference, m.equalized_odds_difference, True),
    (km.EqualizedOddsRatio, m.equalized_odds_ratio, True),
]


@pytest.mark.parametrize("cls,func,has_agg", STREAMING)
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_streaming_metric_equals_numpy_on_whole_set(cls, func, has_agg, method):
    rng = np.random.default_rng(3)
    n = 120
    y_true = rng.integers(0, 2, n)
    scores = rng.uniform(0, 1, n)
    groups = rng.integers(0, 3, n)
    weights = rng.uniform(0.2, 2.0, n)
    for agg in ("worst_case", "mean") if has_agg else ("worst_case",):
        metric = cls(num_groups=3, method=method, agg=agg)
        for start in range(0, n, 32):
            part = slice(start, start + 32)
            metric.update_state(
                y_true[part],
                scores[part],
                groups=groups[part],
                sample_weight=weights[part],
            )
        kw = dict(
            sensitive_features=groups, method=method, sample_weight=weights
        )
        if has_agg:
            kw["agg"] = agg
        expected = func(y_true, (scores > 0.5).astype(int), **kw)
        assert _same(float(metric.result()), expected)
        metric.reset_state()
        assert math.isnan(float(metric.result()))


def test_streaming_metric_config_round_trip():
    metric = km.EqualizedOddsRatio(num_groups=4, threshold=0.3, agg="mean")
    clone = km.EqualizedOddsRatio.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()


def test_streaming_metric_without_groups_raises():
    with pytest.raises(InvalidArgumentError, match="groups"):
        km.DemographicParityDifference().update_state([1, 0], [0.7, 0.2])
