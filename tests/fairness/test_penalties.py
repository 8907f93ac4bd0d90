"""Penalties against NumPy references written from the papers, the
MinDiff reference values, case C10 and the config round trip of every
regularizer plugin."""

import math

import keras
import numpy as np
import pytest
from fairness_fixtures import make_plugin
from fairness_fixtures import regularizer_classes
from fairness_fixtures import toy_data

from kerasweights.errors import InvalidArgumentError
from kerasweights.fairness import AbsoluteCorrelationPenalty
from kerasweights.fairness import AdjustedMMDPenalty
from kerasweights.fairness import DemographicParityPenalty
from kerasweights.fairness import EqualizedOddsPenalty
from kerasweights.fairness import FairnessPenalty
from kerasweights.fairness import MMDPenalty
from kerasweights.fairness import PrejudiceIndexPenalty
from kerasweights.fairness import ZafarCovariancePenalty

# ---------------------------------------------------------------- references


def _norm(w, mask, reduction):
    den = (w * mask).sum() if reduction == "weighted_mean" else mask.sum()
    return np.zeros_like(w) if den == 0 else w * mask / den


def _kernel(s, kind, length):
    d = s[:, None] - s[None, :]
    if kind == "gaussian":
        return np.exp(-(d**2) / length**2)
    return np.exp(-np.abs(d) / length)


def ref_mmd(g, s, w, kind="gaussian", length=0.1, red="weighted_mean"):
    m = (g != 0).astype(float)
    a, b = _norm(w, m, red), _norm(w, 1 - m, red)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    k = _kernel(s, kind, length)
    return a @ k @ a + b @ k @ b - 2 * a @ k @ b


def ref_adjusted(
    g, s, w, kind="gaussian", length=0.1, eps=0.01, red="weighted_mean"
):
    m = (g != 0).astype(float)
    a, b = _norm(w, m, red), _norm(w, 1 - m, red)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    k = _kernel(s, kind, length)
    var = 0.0
    for v in (a, b):
        v = v / v.sum()
        var += (v @ np.diag(k) - v @ k @ v) * (v**2).sum()
    return ref_mmd(g, s, w, kind, length, red) / (var + eps)


def ref_corr(g, s, w, red="weighted_mean"):
    m = (g != 0).astype(float)
    p = _norm(w, np.ones_like(w), red)
    mm, ms = w @ m / w.sum(), w @ s / w.sum()
    cov = p @ ((m - mm) * (s - ms))
    vm, vs = p @ (m - mm) ** 2, p @ (s - ms) ** 2
    return 0.0 if vm * vs == 0 else abs(cov) / math.sqrt(vm * vs)


def ref_dp(
    g,
    s,
    w,
    num_groups=2,
    method="between_groups",
    cell=None,
    red="weighted_mean",
):
    cell = np.ones_like(s) if cell is None else cell
    means = []
    for k in range(num_groups):
        mk = (g == k) * cell
        if (w * mk).sum() > 0:
            means.append(_norm(w, mk, red) @ s)
    if not means:
        return 0.0
    if method == "between_groups":
        return max(means) - min(means) if len(means) >= 2 else 0.0
    overall = _norm(w, cell, red) @ s
    return max(abs(x - overall) for x in means)


def ref_eo(g, s, y, w, agg="worst_case", **kw):
    t = ref_dp(g, s, w, cell=y, **kw)
    f = ref_dp(g, s, w, cell=1 - y, **kw)
    return max(t, f) if agg == "worst_case" else (t + f) / 2


def ref_zafar(g, s, w, c=0.0, red="weighted_mean"):
    z = (g != 0).astype(float)
    p = np.clip(s, 1e-6, 1 - 1e-6)
    d = np.log(p / (1 - p))
    zbar = (w * z).sum() / w.sum()
    cov = _norm(w, np.ones_like(w), red) @ ((z - zbar) * d)
    return max(0.0, abs(cov) - c)


def ref_prejudice(g, s, w, num_groups=2, red="weighted_mean"):
    p = np.clip(s, 1e-6, 1 - 1e-6)
    one = np.ones_like(p)
    overall = _norm(w, one, red) @ p
    total = 0.0
    q = _norm(w, one, red)
    for i in range(len(p)):
        own = _norm(w, (g == g[i]).astype(float), red) @ p
        for prob, a, b in (
            (p[i], own, overall),
            (1 - p[i], 1 - own, 1 - overall),
        ):
            total += q[i] * prob * math.log(a / b)
    return total


# ------------------------------------------------------------------- values

G4 = np.array([1, 1, 0, 0])
P4 = np.array([0.9, 0.8, 0.2, 0.1])


@pytest.mark.parametrize(
    "penalty,expected",
    [
        (MMDPenalty(kernel="gaussian", kernel_length=0.1), 1.36788),
        (MMDPenalty(kernel="laplacian", kernel_length=0.1), 1.36556),
        (AbsoluteCorrelationPenalty(), 0.98995),
        (AdjustedMMDPenalty(kernel_length=0.1), 4.19517),
    ],
)
def test_mindiff_reference_values(penalty, expected):
    assert abs(float(penalty(G4, P4)) - expected) < 1e-5


def _random_batch(seed, n=24, num_groups=2):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, num_groups, n)
    s = rng.uniform(0.02, 0.98, n)
    y = rng.integers(0, 2, n).astype(float)
    w = rng.uniform(0.0, 2.0, n)
    return g, s, y, w


CASES = [
    (
        lambda **k: MMDPenalty(**k),
        lambda g, s, y, w, r: ref_mmd(g, s, w, red=r),
    ),
    (
        lambda **k: MMDPenalty(kernel="laplacian", kernel_length=0.3, **k),
        lambda g, s, y, w, r: ref_mmd(g, s, w, "laplacian", 0.3, r),
    ),
    (
        lambda **k: AdjustedMMDPenalty(kernel_length=0.2, **k),
        lambda g, s, y, w, r: ref_adjusted(g, s, w, length=0.2, red=r),
    ),
    (
        lambda **k: AbsoluteCorrelationPenalty(**k),
        lambda g, s, y, w, r: ref_corr(g, s, w, r),
    ),
    (
        lambda **k: DemographicParityPenalty(num_groups=3, **k),
        lambda g, s, y, w, r: ref_dp(g, s, w, 3, red=r),
    ),
    (
        lambda **k: DemographicParityPenalty(method="to_overall", **k),
        lambda g, s, y, w, r: ref_dp(g, s, w, 2, "to_overall", red=r),
    ),
    (
        lambda **k: EqualizedOddsPenalty(num_groups=3, agg="mean", **k),
        lambda g, s, y, w, r: ref_eo(g, s, y, w, "mean", num_groups=3, red=r),
    ),
    (
        lambda **k: EqualizedOddsPenalty(**k),
        lambda g, s, y, w, r: ref_eo(g, s, y, w, red=r),
    ),
    (
        lambda **k: ZafarCovariancePenalty(threshold=0.01, **k),
        lambda g, s, y, w, r: ref_zafar(g, s, w, 0.01, r),
    ),
    (
        lambda **k: PrejudiceIndexPenalty(num_groups=3, **k),
        lambda g, s, y, w, r: ref_prejudice(g, s, w, 3, r),
    ),
]


@pytest.mark.parametrize("make,ref", CASES)
@pytest.mark.parametrize("reduction", ["weighted_mean", "sum_over_batch_size"])
def test_penalty_matches_numpy_reference(make, ref, reduction):
    penalty = make(reduction=reduction)
    for seed in range(3):
        g, s, y, w = _random_batch(seed, num_groups=3)
        if penalty.group_count == 2:
            g = (g != 0).astype(int)
        got = float(penalty(g, s, y_true=y, sample_weight=w))
        assert got == pytest.approx(
            ref(g, s, y, w, reduction), abs=2e-5, rel=1e-4
        )


# ----------------------------------------------------------------------- C10


def test_c10_weights_zero_one_give_the_weighted_mean():
    # Group 1 scores [5, 1] with weights [0, 1]: its weighted mean is 1,
    # Keras' default division by the sample count would give 0.5.
    groups = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.3, 0.1, 0.1])
    weights = np.array([0.0, 1.0, 1.0, 1.0])
    weighted = DemographicParityPenalty()(groups, scores, sample_weight=weights)
    assert float(weighted) == pytest.approx(0.3 - 0.1, abs=1e-6)
    by_count = DemographicParityPenalty(reduction="sum_over_batch_size")(
        groups, scores, sample_weight=weights
    )
    assert float(by_count) == pytest.approx(0.3 / 2 - 0.1, abs=1e-6)


@pytest.mark.parametrize("cls", regularizer_classes())
def test_c10_absent_group_gives_finite_value(cls):
    if not issubclass(cls, FairnessPenalty):
        pytest.skip("not a penalty")
    penalty = make_plugin(cls)
    groups = np.array([0, 0, 1, 1])
    scores = np.array([0.7, 0.2, 0.9, 0.4])
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    zero_group_one = np.array([1.0, 2.0, 0.0, 0.0])
    for weights in (zero_group_one, None):
        for g in (groups, np.zeros(4, int)):
            value = float(
                penalty(g, scores, y_true=labels, sample_weight=weights)
            )
            assert math.isfinite(value)
    # Under a weighted mean, a group whose weights are all zero is absent.
    config = dict(penalty.get_config(), reduction="weighted_mean")
    weighted = cls.from_config(config)
    value = float(
        weighted(groups, scores, y_true=labels, sample_weight=zero_group_one)
    )
    assert value == pytest.approx(0.0, abs=1e-6)


def test_penalty_gradient_is_finite_with_absent_group():
    penalty = AdjustedMMDPenalty()
    scores = keras.Variable(np.array([0.7, 0.2, 0.9, 0.4], "float32"))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = penalty([0, 0, 0, 0], scores)
    grad = tape.gradient(value, scores)
    assert np.isfinite(grad.numpy()).all()


def test_labels_required_where_needed():
    with pytest.raises(InvalidArgumentError, match="y_true"):
        EqualizedOddsPenalty()(G4, P4)


@pytest.mark.parametrize(
    "make,bad",
    [
        (lambda: MMDPenalty(kernel="cosine"), "kernel"),
        (lambda: MMDPenalty(kernel_length=0), "kernel_length"),
        (lambda: MMDPenalty(reduction="sum"), "reduction"),
        (lambda: DemographicParityPenalty(num_groups=1), "num_groups"),
        (lambda: EqualizedOddsPenalty(agg="max"), "agg"),
        (lambda: ZafarCovariancePenalty(threshold=-1), "threshold"),
    ],
)
def test_bad_arguments_name_the_argument(make, bad):
    with pytest.raises(InvalidArgumentError, match=f"`{bad}`"):
        make()


def test_from_logits_equals_sigmoid_of_probabilities():
    logits = np.array([2.0, 1.0, -1.0, -3.0])
    probs = 1 / (1 + np.exp(-logits))
    a = MMDPenalty(from_logits=True)(G4, logits)
    b = MMDPenalty()(G4, probs)
    assert float(a) == pytest.approx(float(b), abs=1e-6)
    z1 = ZafarCovariancePenalty(from_logits=True)(G4, logits)
    z2 = ZafarCovariancePenalty()(G4, probs)
    assert float(z1) == pytest.approx(float(z2), abs=1e-4)


# ----------------------------------------------------- config, every plugin


@pytest.mark.parametrize("cls", regularizer_classes())
def test_config_round_trip_keeps_every_argument(cls, tmp_path):
    import inspect

    obj = make_plugin(cls)
    config = keras.saving.serialize_keras_object(obj)
    assert config["registered_name"] == f"kerasweights>{cls.__name__}"
    clone = keras.saving.deserialize_keras_object(config)
    inner = obj.get_config()
    params = inspect.signature(cls.__init__).parameters
    for name, param in params.items():
        if name == "self" or param.kind is param.VAR_KEYWORD:
            continue
        assert name in inner, f"{cls.__name__}.get_config misses {name}"
    for key, value in inner.items():
        if not isinstance(value, dict):
            assert clone.get_config()[key] == value, key
    g, s, y, w = _random_batch(5)
    if isinstance(obj, FairnessPenalty):
        assert obj.reduction == clone.reduction == "sum_over_batch_size"
        a = float(obj(g, s, y_true=y, sample_weight=w))
        b = float(clone(g, s, y_true=y, sample_weight=w))
        assert a == b
    else:
        x, groups, _ = toy_data(8)
        feed = {"features": x, obj.sensitive: groups}
        np.testing.assert_allclose(obj(feed), clone(feed), atol=0)
        # And through a .keras file: every argument and every weight
        # (multipliers, averages and step counts set to non-zero values).
        rng = np.random.default_rng(0)
        for weight in obj.weights:
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        path = tmp_path / "wrapper.keras"
        obj.save(path)
        back = keras.saving.load_model(path)
        for key, value in inner.items():
            if not isinstance(value, dict):
                assert back.get_config()[key] == value, key
        assert len(back.weights) == len(obj.weights)
        for ours, theirs in zip(obj.weights, back.weights, strict=True):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        np.testing.assert_allclose(obj(feed), back(feed), atol=0)
