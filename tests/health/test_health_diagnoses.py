"""Each diagnosis fires on a network built with that fault, and only there."""

import warnings

import keras
import numpy as np
import pytest
from keras import layers as L
from keras import ops

from kerasweights.health import DIAGNOSES
from kerasweights.health import GradientHealth
from kerasweights.health import LayerStats
from kerasweights.health import StepRecord
from kerasweights.health import Thresholds
from kerasweights.health.diagnoses import diagnose

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 8)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("int32")


def _out():
    return L.Dense(2, activation="softmax")


def _normal(stddev):
    return keras.initializers.RandomNormal(stddev=stddev, seed=3)


def _fit(
    layers,
    optimizer,
    loss="sparse_categorical_crossentropy",
    x=X,
    epochs=3,
    batch=32,
):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,))] + layers)
    model.compile(optimizer, loss)
    health = GradientHealth()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            x, Y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[health]
        )
    return health


FAULTS = {
    "nan": lambda: _fit(
        [L.Dense(8, activation="relu"), _out()],
        "sgd",
        loss=lambda y, p: ops.mean(ops.log(p * 0.0)),
    ),
    "exploding": lambda: _fit(
        [L.Dense(32, kernel_initializer=_normal(4.0)) for _ in range(5)]
        + [L.Dense(2, kernel_initializer=_normal(4.0)), L.Softmax()],
        keras.optimizers.SGD(1e-9),
    ),
    "vanishing": lambda: _fit(
        [
            L.Dense(32, activation="sigmoid", kernel_initializer=_normal(0.05))
            for _ in range(8)
        ]
        + [_out()],
        keras.optimizers.SGD(0.01),
    ),
    "dead_relu": lambda: _fit(
        [
            L.Dense(32, activation="relu", bias_initializer="ones"),
            L.Dense(
                32,
                activation="relu",
                bias_initializer=keras.initializers.Constant(-10.0),
            ),
            _out(),
        ],
        keras.optimizers.SGD(0.01),
    ),
    "saturated": lambda: _fit(
        [
            L.Dense(32, activation="tanh", kernel_initializer=_normal(5.0)),
            _out(),
        ],
        keras.optimizers.SGD(0.01),
        x=X * 10,
    ),
    "update_ratio_low": lambda: _fit(
        [L.Dense(32, activation="relu"), _out()], keras.optimizers.SGD(1e-9)
    ),
    "update_ratio_high": lambda: _fit(
        [L.Dense(2), L.Softmax()], keras.optimizers.Adam(10.0)
    ),
    "loss_not_decreasing": lambda: _fit(
        [L.Dense(8, activation="tanh"), _out()],
        keras.optimizers.SGD(1e-9),
        batch=8,
        epochs=2,
    ),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_found(name):
    health = FAULTS[name]()
    names = [p.name for p in health.problems]
    assert name in names, health.summary()
    problem = health.problems[names.index(name)]
    assert problem.step >= 0
    assert problem.evidence and problem.fix
    assert health.nonfinite is (name == "nan")


def test_nan_names_first_layer_and_step():
    health = FAULTS["nan"]()
    problem = health.problems[0]
    assert health.verdict == "nan"
    assert problem.step == 0
    assert problem.layer == health.records[0].layers[0].name


@pytest.mark.parametrize(
    "layers,optimizer",
    [
        ([L.Dense(32, activation="relu"), _out()], "adam"),
        (
            [
                L.Dense(64, activation="relu"),
                L.Dense(32, activation="tanh"),
                _out(),
            ],
            keras.optimizers.SGD(0.1, momentum=0.9),
        ),
    ],
    ids=["relu-adam", "relu-tanh-sgd"],
)
def test_healthy_network_is_silent(layers, optimizer):
    # ReLU units are zero for many single examples here (ordinary
    # sparsity); that must not count as dead.
    health = _fit(layers, optimizer, batch=16, epochs=3)
    assert health.verdict == "healthy", health.summary()
    assert health.problems == []
    assert not health.nonfinite
    relu = health.records[-1].layers[0]
    assert relu.units > 0 and relu.dead_units < relu.units // 2


# ---------------------------------------------------------------- records
def _records(losses, norm=1.0, ratio=1e-3):
    out = []
    for step, loss in enumerate(losses):
        layer = LayerStats(
            "dense",
            norm,
            norm,
            0,
            0,
            0.0,
            ratio,
            0,
            update_sumsq=ratio**2,
            weight_sumsq=1.0,
        )
        out.append(StepRecord(step, float(loss), 1.0, False, norm, [layer]))
    return out


def test_oscillating_loss_is_found_and_noisy_descent_is_not():
    t = Thresholds(loss_window=10)
    bouncing = _records([0.2, 3.0] * 20)
    assert "oscillating" in [d.name for d in diagnose(bouncing, t)]
    # The same bouncing far below where the run started is converged
    # noise, not oscillation.
    settled = _records([3.0] * 10 + [0.01, 0.03] * 15)
    assert "oscillating" not in [d.name for d in diagnose(settled, t)]

    noisy = 2.0 * np.exp(-np.arange(40) / 15) + RNG.uniform(0, 0.1, 40)
    assert diagnose(_records(noisy), t) == []


def test_loss_not_decreasing_checks_once_and_needs_two_windows():
    t = Thresholds(loss_window=5)
    flat = _records([1.0] * 9)
    assert diagnose(flat, t) == []
    flat = _records([1.0] * 10)
    assert [d.name for d in diagnose(flat, t)] == ["loss_not_decreasing"]
    # Already examined at 10 records: a later call on new records only
    # does not repeat it.
    flat = _records([1.0] * 12)
    assert diagnose(flat, t, new=2) == []


def test_first_bad_loss_step_is_a_fallback_and_may_be_a_range():
    recs = _records([1.0, 1.0, 1.0])
    (d,) = diagnose(recs, first_bad_loss_step=(1, 3), skip=["oscillating"])
    assert (d.name, d.layer, d.step) == ("nan", None, 3)
    assert "one of the steps 1-3" in d.evidence
    (d,) = diagnose(recs, first_bad_loss_step=2)
    assert d.step == 2 and "one of" not in d.evidence
    # A record that shows the NaN names its own step, with no range.
    recs[-1].loss = float("nan")
    (d,) = diagnose(recs, first_bad_loss_step=(1, 3), new=1)
    assert d.step == 2 and "one of" not in d.evidence


def test_skipped_steps_are_not_problems():
    recs = _records([1.0] * 6, norm=1e9)
    for r in recs:
        r.skipped = True
    assert diagnose(recs, Thresholds(patience=3)) == []


def test_every_diagnosis_has_a_fix_and_a_detector():
    from kerasweights.health.diagnoses import FIXES

    assert set(FIXES) == set(DIAGNOSES)
    # Not one detector is a stub: each one is triggered by some fixture
    # here or in FAULTS.
    covered = set(FAULTS) | {"oscillating"}
    assert covered == set(DIAGNOSES)
