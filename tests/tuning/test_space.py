"""The search space is built from the registry, slot by slot."""

import json

import keras
import keras_tuner as kt
import numpy as np
import pytest

import kerasweights
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import PluginNotFoundError
from kerasweights.tuning import KERAS_INITIALIZERS
from kerasweights.tuning import SLOTS
from kerasweights.tuning import SearchSpace
from kerasweights.tuning.search import build_hypermodel
from kerasweights.tuning.space import slot_hyperparameter

INITIALIZERS = kerasweights.plugins("initializer")
CELLS = kerasweights.plugins("recurrent")


def _targets(record):
    targets = getattr(record.obj, "plugin_targets", None)
    return SLOTS if targets is None else tuple(targets)


@pytest.mark.parametrize("record", INITIALIZERS, ids=lambda r: r.name)
def test_every_initializer_plugin_joins_exactly_the_slots_it_targets(record):
    space = SearchSpace()
    for slot in SLOTS:
        joined = record.name in space.initializer_names(slot)
        assert joined == (slot in _targets(record)), slot


def test_keras_baselines_and_cells_are_in_the_default_space():
    space = SearchSpace()
    for name, slots in KERAS_INITIALIZERS.items():
        for slot in SLOTS:
            assert (name in space.initializer_names(slot)) == (slot in slots)
    assert space.cell_names[:2] == ["lstm", "gru"]
    assert set(space.cell_names[2:]) == {r.name for r in CELLS}


def test_restricting_by_name_accepts_short_registered_and_keras_names():
    record = next(r for r in INITIALIZERS if "dense_kernel" in _targets(r))
    space = SearchSpace(
        initializers=[record.registered_name, "glorot_uniform"],
        cells=["GRU"],
    )
    names = {n for s in SLOTS for n in space.initializer_names(s)}
    assert names == {record.name, "glorot_uniform"}
    assert space.cell_names == ["gru"]


@pytest.mark.parametrize(
    "kwargs, kind",
    [
        ({"initializers": ["gain_varianse_scaling"]}, "initializer"),
        ({"cells": ["jnet"]}, "recurrent"),
    ],
)
def test_unknown_plugin_names_are_refused_with_the_closest(kwargs, kind):
    (name,) = next(iter(kwargs.values()))
    with pytest.raises(PluginNotFoundError) as info:
        SearchSpace(**kwargs)
    message = str(info.value)
    assert repr(name) in message and kind in message
    assert "Closest:" in message


def test_a_slot_left_empty_is_refused():
    with pytest.raises(InvalidArgumentError, match="recurrent_kernel"):
        SearchSpace(models=["recurrent"], initializers=["he_normal"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"models": ["mlp"]},
        {"units": []},
        {"units": [0]},
        {"dropout": [1.5]},
        {"learning_rate": [0.0]},
    ],
)
def test_bad_space_arguments(kwargs):
    with pytest.raises(InvalidArgumentError):
        SearchSpace(**kwargs)


def _find_initializer_configs(config, registered_name):
    found = []
    if isinstance(config, dict):
        if config.get("registered_name") == registered_name:
            found.append(config.get("config", {}))
        for value in config.values():
            found += _find_initializer_configs(value, registered_name)
    elif isinstance(config, list):
        for value in config:
            found += _find_initializer_configs(value, registered_name)
    return found


@pytest.fixture(scope="module")
def hypermodel():
    return build_hypermodel(limit=100)


_CASES = [
    (slot, r) for r in INITIALIZERS for slot in _targets(r) if slot in SLOTS
]


@pytest.mark.parametrize(
    "slot, record", _CASES, ids=[f"{s}-{r.name}" for s, r in _CASES]
)
def test_a_chosen_initializer_is_built_with_its_drawn_arguments(
    hypermodel, slot, record
):
    hp = kt.HyperParameters()
    hp.values["model"] = "recurrent" if slot == "recurrent_kernel" else "conv"
    parent = slot_hyperparameter(slot)
    hp.values[parent] = record.name
    model = hypermodel.build(hp)

    configs = _find_initializer_configs(
        json.loads(json.dumps(model.get_config(), default=str)),
        record.registered_name,
    )
    assert configs, f"{record.registered_name} not used in the model"
    own = {
        k.split("/", 1)[1]: v
        for k, v in hp.values.items()
        if k.startswith(parent + "/") and hp.is_active(k)
    }
    offer = getattr(record.obj, "tunable_arguments", None)
    drawn = offer(kt.HyperParameters()) if offer else {}
    assert len(own) == len(drawn)
    # Each drawn value reached the initializer's config.
    for value in own.values():
        assert any(value in c.values() for c in configs), (value, configs)


@pytest.mark.parametrize("cell", ["lstm", "gru", *[r.name for r in CELLS]])
def test_every_cell_builds_a_model_for_any_sequence_length(hypermodel, cell):
    hp = kt.HyperParameters()
    hp.values["model"] = "recurrent"
    hp.values["cell"] = cell
    hp.values["recurrent_layers"] = 2
    model = hypermodel.build(hp)
    assert model.input_shape == (None, None, 8)
    assert model.output_shape == (None, 10)
    for steps in (5, 11):
        x = np.random.default_rng(0).random((3, steps, 8), dtype="float32")
        out = np.asarray(model(x))
        assert out.shape == (3, 10)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    if cell not in ("lstm", "gru"):
        record = kerasweights.get_plugin(cell, kind="recurrent")
        assert sum(isinstance(x, record.obj) for x in model.layers) == 2


def test_a_user_class_joins_the_space_without_registration(nan_initializer):
    space = SearchSpace(
        initializers=["glorot_uniform"],
        extra_initializers={"nan_init": nan_initializer},
    )
    assert space.initializer_names("conv_kernel") == [
        "glorot_uniform",
        "nan_init",
    ]
    assert "nan_init" not in space.initializer_names("dense_kernel")


def test_conv_model_names_its_input_and_output(hypermodel):
    hp = kt.HyperParameters()
    hp.values["model"] = "conv"
    model = hypermodel.build(hp)
    assert isinstance(model, keras.Model)
    assert [t.name for t in model.inputs] == ["pixels"]
    assert model.output_names == ["digit"]


_GATED = ["lstm", "gru"] + [
    r.name for r in CELLS if getattr(r.obj, "gate_layout", None) is not None
]


@pytest.mark.parametrize("cell", _GATED)
def test_chrono_fills_the_gate_biases_of_gated_cells(hypermodel, cell):
    hp = kt.HyperParameters()
    hp.values["model"] = "recurrent"
    hp.values["cell"] = cell
    hp.values["bias_init"] = "chrono"
    hp.values["bias_init/chrono_max_timescale"] = 100.0
    model = hypermodel.build(hp)
    assert hp.is_active("bias_init/chrono_max_timescale")
    configs = _find_initializer_configs(
        json.loads(json.dumps(model.get_config(), default=str)),
        "kerasweights>Chrono",
    )
    assert configs and all(c["max_timescale"] == 100.0 for c in configs)
    # Keras' cells are named by layout; kerasweights' cells declare theirs
    # and hand it to Chrono themselves.
    expected = cell if cell in ("lstm", "gru") else None
    assert all(c["gate_layout"] == expected for c in configs)
    if cell == "lstm":
        (layer,) = [x for x in model.layers if isinstance(x, keras.layers.LSTM)]
        assert layer.get_config()["unit_forget_bias"] is False
        # Chrono's forget biases log(u), u in [1, 99]: in [0, log 99].
        bias = np.asarray(layer.cell.bias).reshape(4, -1)
        assert (bias[1] >= 0).all() and (bias[1] <= np.log(99) + 1e-5).all()
        np.testing.assert_allclose(bias[0], -bias[1], rtol=1e-6)


def test_cells_without_a_known_gate_layout_have_no_bias_slot(hypermodel):
    hp = kt.HyperParameters()
    hp.values["model"] = "recurrent"
    hp.values["cell"] = "indrnn"  # no gates: declares no layout
    hypermodel.build(hp)
    assert not hp.is_active("bias_init")
    assert "chrono" in SearchSpace().bias_names
    assert SearchSpace(bias_initializers=[]).bias_names == []
