"""Properties every registered initializer plugin must have.

Parameterised over ``kerasweights.plugins(kind="initializer")``, so a plugin
is covered the day it registers, whichever distribution provides it.
"""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasweights

RECORDS = kerasweights.plugins(kind="initializer")
IDS = [r.registered_name for r in RECORDS]
TARGETS = ("dense_kernel", "conv_kernel", "recurrent_kernel", "bias")

# A shape for each target, and the layer (with the attribute that holds its
# initializer) on which the .keras round trip uses it.
SHAPES = {
    "dense_kernel": (8, 12),
    "conv_kernel": (3, 3, 4, 6),
    "recurrent_kernel": (6, 24),
    "bias": (24,),
}


def _layer(target, init):
    if target == "dense_kernel":
        return keras.layers.Dense(12, kernel_initializer=init, name="probe")
    if target == "conv_kernel":
        return keras.layers.Conv2D(6, 3, kernel_initializer=init, name="probe")
    if target == "recurrent_kernel":
        return keras.layers.LSTM(6, recurrent_initializer=init, name="probe")
    return keras.layers.Dense(24, bias_initializer=init, name="probe")


INPUTS = {
    "dense_kernel": (8,),
    "conv_kernel": (5, 5, 4),
    "recurrent_kernel": (3, 5),
    "bias": (8,),
}
ATTRIBUTES = {
    "dense_kernel": "kernel_initializer",
    "conv_kernel": "kernel_initializer",
    "recurrent_kernel": "recurrent_initializer",
    "bias": "bias_initializer",
}


class _LastChoice:
    """A HyperParameters stand-in that picks the last value of each range,
    so that tuned arguments differ from most defaults."""

    def __init__(self):
        self.names = []

    def Float(self, name, min_value, max_value, **kwargs):
        self.names.append(name)
        return float(max_value)

    def Int(self, name, min_value, max_value, **kwargs):
        self.names.append(name)
        return int(max_value)

    def Choice(self, name, values, **kwargs):
        self.names.append(name)
        return values[-1]

    def Boolean(self, name, default=False, **kwargs):
        self.names.append(name)
        return not default


def _constructor_args(cls):
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "args", "kwargs")]


def _non_default(cls):
    """Constructor kwargs away from the defaults, with a seed if any."""
    kwargs = {}
    if hasattr(cls, "tunable_arguments"):
        kwargs.update(cls.tunable_arguments(_LastChoice()))
    if "seed" in _constructor_args(cls):
        kwargs["seed"] = 1234
    return kwargs


def _draw(init, target):
    return np.asarray(init(SHAPES[target], dtype="float32"))


@pytest.fixture(params=RECORDS, ids=IDS)
def record(request):
    return request.param


def test_the_family_is_registered():
    names = set(IDS)
    for name in [
        "GainVarianceScaling",
        "OrthogonalGain",
        "DeltaOrthogonal",
        "Chrono",
        "IdentityRNN",
        "ZerO",
        "LSUV",
        "Fixup",
    ]:
        assert f"kerasweights>{name}" in names


def test_targets_are_declared(record):
    targets = record.obj.plugin_targets
    assert isinstance(targets, tuple) and targets
    assert set(targets) <= set(TARGETS)


def test_constructible_with_defaults_and_applicable(record):
    init = record.obj()
    for target in record.obj.plugin_targets:
        values = _draw(init, target)
        assert values.shape == SHAPES[target]
        assert np.all(np.isfinite(values))


def test_tunable_arguments_contract(record):
    cls = record.obj
    if "tunable_arguments" not in dir(cls):
        pytest.skip("no tunable arguments")
    hp = _LastChoice()
    kwargs = cls.tunable_arguments(hp)
    assert set(kwargs) <= set(_constructor_args(cls))
    prefix = record.name + "_"
    assert all(name.startswith(prefix) for name in hp.names), hp.names
    cls(**kwargs)

    import keras_tuner

    real = keras_tuner.HyperParameters()
    cls(**cls.tunable_arguments(real))


def test_config_holds_every_argument_and_round_trips(record):
    cls = record.obj
    init = cls(**_non_default(cls))
    config = init.get_config()
    assert set(config) == set(_constructor_args(cls))
    json.dumps(config)
    restored = cls.from_config(config)
    assert restored.get_config() == config

    by_name = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert type(by_name) is cls
    assert by_name.get_config() == config

    target = cls.plugin_targets[0]
    np.testing.assert_array_equal(_draw(restored, target), _draw(init, target))


def test_seeded_draws_repeat_per_object_and_differ_per_call(record):
    cls = record.obj
    target = cls.plugin_targets[0]
    if "seed" not in _constructor_args(cls):
        # Deterministic by design: every call gives the same values.
        init = cls()
        np.testing.assert_array_equal(_draw(init, target), _draw(init, target))
        return
    first, second = cls(seed=7), cls(seed=7)
    a1, a2 = _draw(first, target), _draw(first, target)
    b1, b2 = _draw(second, target), _draw(second, target)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)


def test_unseeded_object_shared_by_two_layers_differs(record):
    cls = record.obj
    if "seed" not in _constructor_args(cls):
        pytest.skip("deterministic by design (documented)")
    target = cls.plugin_targets[0]
    init = cls()
    one, two = _layer(target, init), _layer(target, init)
    for layer in (one, two):
        layer.build((None,) + INPUTS[target])
    assert not all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(one.weights, two.weights, strict=True)
    )


def test_usable_by_registered_string(record):
    target = record.obj.plugin_targets[0]
    layer = _layer(target, record.registered_name)
    layer.build((None,) + INPUTS[target])
    assert isinstance(getattr(layer, ATTRIBUTES[target]), record.obj)


_LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import kerasweights

    out = {}
    for item in json.loads(sys.argv[1]):
        model = keras.saving.load_model(item["path"])
        layer = model.get_layer("probe")
        init = getattr(layer, item["attribute"])
        fresh = type(init).from_config(init.get_config())
        out[item["name"]] = {
            "config": init.get_config(),
            "weights": [w.numpy().tolist() for w in layer.weights],
            "draw": np.asarray(
                fresh(tuple(item["shape"]), dtype="float32")).tolist(),
        }
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    """Save one model per plugin, load them all in one fresh process."""
    folder = tmp_path_factory.mktemp("keras_files")
    saved, items = {}, []
    for rec in RECORDS:
        cls = rec.obj
        target = cls.plugin_targets[0]
        init = cls(**_non_default(cls))
        layer = _layer(target, init)
        model = keras.Sequential([keras.Input(INPUTS[target]), layer])
        path = folder / f"{rec.name}.keras"
        model.save(path)
        expected_draw = _draw(cls(**_non_default(cls)), target)
        saved[rec.registered_name] = (init.get_config(), layer, expected_draw)
        items.append(
            {
                "name": rec.registered_name,
                "path": str(path),
                "attribute": ATTRIBUTES[target],
                "shape": list(SHAPES[target]),
            }
        )
    result = subprocess.run(
        [sys.executable, "-c", _LOADER, json.dumps(items)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return saved, loaded


def test_keras_file_round_trip_in_a_fresh_process(record, reloaded):
    saved, loaded = reloaded
    config, layer, expected_draw = saved[record.registered_name]
    got = loaded[record.registered_name]
    assert got["config"] == json.loads(json.dumps(config))
    for weight, values in zip(layer.weights, got["weights"], strict=True):
        np.testing.assert_array_equal(weight.numpy(), np.asarray(values))
    # Same seed, fresh object: the same first draw, in another process.
    np.testing.assert_array_equal(
        np.asarray(got["draw"], np.float32), expected_draw
    )
