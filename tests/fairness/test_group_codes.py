"""Group codes outside 0..num_groups-1 are refused everywhere, never
turned into a penalty of 0; zero-weight groups are absent under both
reductions; a training wrapper's `inputs` points to prediction_model."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from fairness_fixtures import regularizer_classes
from fairness_fixtures import small_predictor
from fairness_fixtures import toy_data

from kerasweights.errors import InvalidArgumentError
from kerasweights.export import model_signature
from kerasweights.fairness import AbsoluteCorrelationPenalty
from kerasweights.fairness import AdversarialDebiasingModel
from kerasweights.fairness import DemographicParityPenalty
from kerasweights.fairness import FairnessModel
from kerasweights.fairness import FairnessPenalty
from kerasweights.fairness import GroupFairnessMetric
from kerasweights.fairness import GroupGradientMonitor
from kerasweights.fairness import PrejudiceIndexPenalty
from kerasweights.fairness import RateConstrainedModel
from kerasweights.fairness import keras_metrics
from kerasweights.fairness import prediction_model

SCORES = np.array([0.9, 0.1, 0.8, 0.2, 0.6, 0.3], "float32")
LABELS = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0], "float32")


def _penalties():
    return [c for c in regularizer_classes() if issubclass(c, FairnessPenalty)]


def _metrics():
    return [
        getattr(keras_metrics, name)
        for name in keras_metrics.__all__
        if name != "GroupFairnessMetric"
    ]


def _bad_codings(count):
    """Codings that fall outside 0..count-1 (1-based, too large, negative,
    fractional), each with the text the message must show."""
    return [
        (np.array([1, 2, 1, 2, 1, 2]), "[1, 2]"),
        (np.array([0, count, 0, 1, 0, 1]), f"[0, 1, {count}]"),
        (np.array([0, -1, 0, 1, 0, 1]), "[-1, 0, 1]"),
        (np.array([0.0, 1.5, 0.0, 1.0, 0.0, 1.0]), "1.5"),
    ]


@pytest.mark.parametrize("cls", _penalties(), ids=lambda c: c.__name__)
def test_penalties_refuse_codes_outside_the_groups(cls):
    penalty = cls()
    count = penalty.group_count
    good = np.array([0, 1, 0, 1, 0, 1])
    assert math.isfinite(float(penalty(good, SCORES, y_true=LABELS)))
    for groups, shown in _bad_codings(count):
        for value in (groups, list(groups), tf.constant(groups)):
            with pytest.raises(InvalidArgumentError) as info:
                penalty(value, SCORES, y_true=LABELS)
            message = str(info.value)
            assert "\n" not in message
            assert shown in message and "np.unique" in message


def test_the_reported_one_two_coding_is_not_zero():
    # Groups coded 1/2 gave 0.0 where the 0/1 coding gives 0.7.
    penalty = DemographicParityPenalty()
    assert float(penalty([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2])) == (
        pytest.approx(0.7, abs=1e-6)
    )
    with pytest.raises(InvalidArgumentError, match=r"\[1, 2\]"):
        penalty([1, 2, 1, 2], [0.9, 0.1, 0.8, 0.2])


@pytest.mark.parametrize("cls", _penalties(), ids=lambda c: c.__name__)
def test_traced_penalty_asserts_and_xla_gives_nan(cls):
    penalty = cls()
    bad = tf.constant([1, 2, 1, 2, 1, 2])

    def run(groups):
        return penalty(groups, SCORES, y_true=LABELS)

    with pytest.raises(tf.errors.InvalidArgumentError, match="group codes"):
        tf.function(run)(bad)
    xla = tf.function(run, jit_compile=True)
    assert math.isnan(float(xla(bad)))
    good = tf.constant([0, 1, 0, 1, 0, 1])
    assert float(xla(good)) == pytest.approx(float(run(good)), abs=1e-5)


@pytest.mark.parametrize("cls", _metrics(), ids=lambda c: c.__name__)
def test_streaming_metrics_refuse_codes_outside_the_groups(cls):
    metric = cls()
    for groups, shown in _bad_codings(2):
        with pytest.raises(
            InvalidArgumentError, match=shown.replace("[", r"\[")
        ):
            metric.update_state(LABELS, SCORES, groups=groups)
    # Under XLA the step cannot raise: the result is NaN until reset.

    @tf.function(jit_compile=True)
    def update(groups):
        metric.update_state(LABELS, SCORES, groups=groups)

    update(tf.constant([0, 1, 0, 1, 0, 1]))
    assert not math.isnan(float(metric.result()))
    update(tf.constant([1, 2, 1, 2, 1, 2]))
    assert math.isnan(float(metric.result()))
    metric.reset_state()
    update(tf.constant([0, 1, 0, 1, 0, 1]))
    assert not math.isnan(float(metric.result()))
    assert isinstance(metric, GroupFairnessMetric)


def _training_models():
    return {
        "FairnessModel": lambda: FairnessModel(
            small_predictor(), DemographicParityPenalty()
        ),
        "AdversarialDebiasingModel": lambda: AdversarialDebiasingModel(
            small_predictor()
        ),
        "RateConstrainedModel": lambda: RateConstrainedModel(small_predictor()),
    }


@pytest.mark.parametrize("name", list(_training_models()))
def test_fit_and_evaluate_refuse_bad_codes_before_training(name):
    x, groups, y = toy_data(32)
    model = _training_models()[name]()
    model.compile("adam", "binary_crossentropy")
    before = [np.array(w) for w in model.predictor.get_weights()]
    bad = {"features": x, "group": groups + 1}
    good = {"features": x, "group": groups}
    with pytest.raises(InvalidArgumentError, match="group codes"):
        model.fit(bad, y, epochs=1, verbose=0)
    with pytest.raises(InvalidArgumentError, match="group codes"):
        model.fit(good, y, epochs=1, verbose=0, validation_data=(bad, y))
    after = model.predictor.get_weights()
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidArgumentError, match="group codes"):
        model.evaluate(bad, y, verbose=0)


@pytest.mark.parametrize("name", list(_training_models()))
def test_dataset_with_bad_codes_under_xla_gives_nan_loss(name):
    x, groups, y = toy_data(32)
    model = _training_models()[name]()
    model.compile("adam", "binary_crossentropy", jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices(
        ({"features": x, "group": groups + 1}, y)
    ).batch(16)
    logs = model.fit(data, epochs=1, verbose=0).history
    assert any(math.isnan(v[-1]) for v in logs.values()), logs


def test_fairness_model_group_metric_refuses_codes_past_its_groups():
    x, groups, y = toy_data(32)
    model = FairnessModel(
        small_predictor(), PrejudiceIndexPenalty(num_groups=3)
    )
    model.compile(
        "adam",
        "binary_crossentropy",
        metrics=[keras_metrics.DemographicParityDifference(num_groups=2)],
    )
    groups = groups.copy()
    groups[0] = 2  # valid for the penalty, not for the metric
    with pytest.raises(InvalidArgumentError, match="demographic_parity"):
        model.fit({"features": x, "group": groups}, y, epochs=1, verbose=0)


def test_group_gradient_monitor_refuses_codes_past_its_groups():
    x, groups, y = toy_data(16)
    monitor = GroupGradientMonitor()
    groups = groups.copy()
    groups[0] = 5
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1, 5\]"):
        monitor.set_probe(x, y, groups=groups)


# ------------------------------------------------- zero-weight groups (C10)


def _drop(rows, *arrays):
    return [a[rows] for a in arrays]


@pytest.mark.parametrize("cls", _penalties(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("reduction", ["weighted_mean", "sum_over_batch_size"])
def test_zero_weight_group_equals_dropping_its_rows(cls, reduction):
    rng = np.random.default_rng(3)
    penalty = cls(reduction=reduction)
    count = penalty.group_count
    n = 24
    groups = np.arange(n) % (3 if count > 2 else 2)
    scores = rng.uniform(0.05, 0.95, n).astype("float32")
    labels = (rng.random(n) > 0.5).astype("float32")
    weights = rng.uniform(0.5, 2.0, n).astype("float32")
    zero = 1 if count > 2 else 0
    zeroed = np.where(groups == zero, 0.0, weights).astype("float32")
    got = float(penalty(groups, scores, y_true=labels, sample_weight=zeroed))
    keep = groups != zero
    g, s, y, w = _drop(keep, groups, scores, labels, weights)
    want = float(penalty(g, s, y_true=y, sample_weight=w))
    assert got == pytest.approx(want, abs=1e-5)
    if count == 2:
        assert got == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "cls", [AbsoluteCorrelationPenalty, PrejudiceIndexPenalty]
)
def test_reported_zero_weight_values_are_now_zero(cls):
    # With sum_over_batch_size these gave 0.99315 and 0.19381.
    penalty = cls(reduction="sum_over_batch_size")
    value = penalty(
        [1, 1, 0, 0],
        [0.9, 0.8, 0.2, 0.1],
        y_true=[1, 0, 1, 0],
        sample_weight=[1, 1, 0, 0],
    )
    assert float(value) == pytest.approx(0.0, abs=1e-6)


def test_partly_zero_weight_group_still_counts_its_rows():
    # Group 1 is present (one row of weight 1): under sum_over_batch_size
    # both its rows count, (0 * 0.9 + 0.8) / 2 = 0.4 against 0.15.
    penalty = DemographicParityPenalty(reduction="sum_over_batch_size")
    value = penalty(
        [1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], sample_weight=[0, 1, 1, 1]
    )
    assert float(value) == pytest.approx(0.4 - 0.15, abs=1e-6)


# ------------------------------------------------------------- export (C06)


@pytest.mark.parametrize("name", list(_training_models()))
def test_training_wrapper_inputs_point_to_prediction_model(name):
    # Tools that read `model.inputs` (exporters) get a message naming the
    # call that gives the model to serve.
    model = _training_models()[name]()
    with pytest.raises(AttributeError, match="prediction_model"):
        model.inputs  # noqa: B018
    assert not hasattr(model, "inputs")
    signature = model_signature(prediction_model(model))
    assert list(signature["inputs"]) == ["features"]
    assert isinstance(model.predictor, keras.Model)
