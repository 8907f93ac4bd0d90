"""Chrono gate biases (Tallec and Ollivier, 2018) in every gated cell."""

import math

import keras
import numpy as np
import pytest
from conftest import FEATURES

import kerasweights.recurrent as recurrent
from kerasweights.errors import InvalidArgumentError
from kerasweights.initializers import Chrono

LAYERS = [
    getattr(recurrent, name)
    for name in recurrent.__all__
    if getattr(getattr(recurrent, name), "cell_class", None) is not None
]
GATED = [cls for cls in LAYERS if cls.gate_layout is not None]
UNITS = 300
T_MAX = 40.0


def _bias_blocks(layer):
    bias = keras.ops.convert_to_numpy(layer.cell.bias).astype(np.float64)
    blocks = np.split(bias, len(layer.gate_layout))
    return dict(zip(layer.gate_layout, blocks, strict=True))


def _check_log_uniform(values):
    # exp(values) ~ U(1, T_max - 1): mean T_max / 2, var (T_max - 2)^2 / 12.
    u = np.exp(values)
    assert u.min() >= 1.0 - 1e-4 and u.max() <= T_MAX - 1 + 1e-3
    mean, var = T_MAX / 2, (T_MAX - 2) ** 2 / 12
    assert abs(u.mean() - mean) < 5 * math.sqrt(var / len(u))
    assert abs(u.var() - var) < 5 * var * math.sqrt(0.8 / len(u))


@pytest.mark.parametrize("cls", GATED, ids=lambda c: c.__name__)
def test_chrono_follows_each_cells_gate_layout(cls):
    layer = cls(UNITS, bias_initializer=Chrono(T_MAX, seed=3))
    layer.build((2, None, FEATURES))
    blocks = _bias_blocks(layer)
    assert set(blocks) >= {"forget"} or set(blocks) >= {"input"}
    if "forget" in blocks:
        _check_log_uniform(blocks["forget"])
        if "input" in blocks:
            np.testing.assert_allclose(blocks["input"], -blocks["forget"])
    else:
        _check_log_uniform(-blocks["input"])
    for role, values in blocks.items():
        if role not in ("forget", "input"):
            assert np.all(values == 0), role


@pytest.mark.parametrize("cls", GATED, ids=lambda c: c.__name__)
def test_chrono_gate_keeps_the_real_state(cls):
    # With every weight but the bias at zero and zero inputs, the candidate
    # is constant (0, or 0.5 for minGRU/minLSTM's g) and the memory state
    # moves towards it by the factor the chrono gate sets at every step:
    # keep = u / (1 + u) with u = exp(b_forget) = exp(-b_input). A layout
    # that names the wrong block gives sigmoid(0) = 0.5 or 1 instead.
    units, steps = 8, 5
    layer = cls(
        units, return_state=True, bias_initializer=Chrono(T_MAX, seed=4)
    )
    layer.build((1, None, FEATURES))
    for weight in layer.cell.trainable_weights:
        if weight is not layer.cell.bias:
            weight.assign(np.zeros(weight.shape, "float32"))
    blocks = _bias_blocks(layer)
    u = np.exp(blocks["forget"] if "forget" in blocks else -blocks["input"])
    keep = u / (1 + u)
    fixed = 0.5 if "scan" in cls.cell_arguments() else 0.0
    x = np.zeros((1, steps, FEATURES), "float32")
    states = [np.ones((1, units), "float32") for _ in layer.cell.state_size]
    memory = np.asarray(layer(x, initial_state=states)[-1])[0]
    np.testing.assert_allclose(
        memory, fixed + (1 - fixed) * keep**steps, rtol=1e-4, atol=1e-6
    )


def test_chrono_draws_differ_per_layer_and_direction():
    # Case C12: one seeded Chrono object shared by two layers and both
    # directions of a Bidirectional wrapper.
    chrono = Chrono(T_MAX, seed=7)
    inputs = keras.Input((5, FEATURES))
    y = recurrent.JANET(6, bias_initializer=chrono, return_sequences=True)(
        inputs
    )
    y = recurrent.JANET(6, bias_initializer=chrono, return_sequences=True)(y)
    y = keras.layers.Bidirectional(recurrent.MGU(6, bias_initializer=chrono))(y)
    model = keras.Model(inputs, y)
    forgets = [
        keras.ops.convert_to_numpy(w)[:6]
        for w in model.weights
        if w.path.endswith("bias")
    ]
    assert len(forgets) == 4
    for i, a in enumerate(forgets):
        for b in forgets[i + 1 :]:
            assert not np.allclose(np.abs(a), np.abs(b))


def test_chrono_on_a_cell_without_gates_is_refused():
    layer = recurrent.IndRNN(4, bias_initializer=Chrono(T_MAX))
    with pytest.raises(InvalidArgumentError, match="IndRNNCell has no gates"):
        layer.build((1, None, FEATURES))


def test_chrono_with_another_explicit_layout_is_refused():
    layer = recurrent.JANET(4, bias_initializer=Chrono(T_MAX, "lstm"))
    with pytest.raises(InvalidArgumentError, match="gate_layout='lstm'"):
        layer.build((1, None, FEATURES))
    same = recurrent.JANET(4, bias_initializer=Chrono(T_MAX, "janet", seed=1))
    same.build((1, None, FEATURES))


def test_chrono_layer_survives_a_config_round_trip():
    layer = recurrent.PeepholeLSTM(4, bias_initializer=Chrono(T_MAX, seed=2))
    again = recurrent.PeepholeLSTM.from_config(layer.get_config())
    assert isinstance(again.cell.bias_initializer, Chrono)
    assert again.cell.bias_initializer.gate_layout is None
    again.build((1, None, FEATURES))
