import math

import keras
import numpy as np
import pytest

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.initializers import Chrono
from kerasweights.initializers import IdentityRNN

Z = 5.0


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _zero_weights(layer):
    for weight in (layer.cell.kernel, layer.cell.recurrent_kernel):
        weight.assign(np.zeros(weight.shape, "float32"))


def test_chrono_lstm_blocks_follow_the_paper():
    units, t_max = 400, 50.0
    bias = np.asarray(Chrono(t_max, "lstm", seed=1)((4 * units,)), np.float64)
    i, f, c, o = np.split(bias, 4)
    np.testing.assert_allclose(i, -f)
    assert np.all(c == 0) and np.all(o == 0)
    u = np.exp(f)
    assert u.min() >= 1.0 - 1e-5 and u.max() <= t_max - 1 + 1e-3
    # u ~ U(1, T - 1): mean T / 2, variance (T - 2)^2 / 12.
    mean, var = t_max / 2, (t_max - 2) ** 2 / 12
    assert abs(u.mean() - mean) < Z * math.sqrt(var / units)
    assert abs(u.var() - var) < Z * var * math.sqrt(0.8 / units)


def test_chrono_forget_gate_decays_a_real_keras_lstm_state():
    # With zero kernels and zero input the LSTM cell state decays as
    # c_T = sigmoid(b_f)^T c_0, where b_f is the bias of the gate Keras uses
    # as forget gate; a wrong block order gives sigmoid(0)^T or 1.
    units, steps = 5, 6
    layer = keras.layers.LSTM(
        units,
        unit_forget_bias=False,
        bias_initializer=Chrono(20.0, "lstm", seed=2),
        return_state=True,
    )
    x = np.zeros((1, steps, 3), "float32")
    h0 = np.zeros((1, units), "float32")
    c0 = np.ones((1, units), "float32")
    layer(x, initial_state=[h0, c0])
    _zero_weights(layer)
    _, _, c_last = layer(x, initial_state=[h0, c0])
    forget_bias = layer.cell.bias.numpy()[units : 2 * units]
    np.testing.assert_allclose(
        np.asarray(c_last)[0], _sigmoid(forget_bias) ** steps, rtol=1e-5
    )


@pytest.mark.parametrize("reset_after", [True, False])
def test_chrono_gru_update_gate_keeps_a_real_keras_gru_state(reset_after):
    # Keras GRU: h_t = z h_{t-1} + (1 - z) h~_t; with zero kernels and input
    # h~_t = tanh(0) = 0, so h_T = sigmoid(b_z)^T h_0.
    units, steps = 4, 5
    layer = keras.layers.GRU(
        units,
        reset_after=reset_after,
        bias_initializer=Chrono(30.0, "gru", seed=3),
    )
    x = np.zeros((1, steps, 2), "float32")
    h0 = np.ones((1, units), "float32")
    layer(x, initial_state=[h0])
    _zero_weights(layer)
    bias = layer.cell.bias.numpy()
    if reset_after:
        assert bias.shape == (2, 3 * units)
        assert np.all(bias[1] == 0)
        bias = bias.sum(axis=0)
    z_bias = bias[:units]
    assert np.all(bias[units:] == 0)
    assert np.all(z_bias >= 0)
    h_last = np.asarray(layer(x, initial_state=[h0]))[0]
    np.testing.assert_allclose(h_last, _sigmoid(z_bias) ** steps, rtol=1e-5)


def test_chrono_custom_and_named_layouts():
    janet = np.asarray(Chrono(10.0, "janet", seed=0)((8,)))
    assert np.all(janet[:4] >= 0) and np.all(janet[4:] == 0)
    mgu = np.asarray(Chrono(10.0, "mgu", seed=0)((8,)))
    assert np.all(mgu[:4] <= 0) and np.all(mgu[4:] == 0)
    np.testing.assert_allclose(mgu[:4], -janet[:4])
    custom = np.asarray(
        Chrono(10.0, ("candidate", "forget", "input"), seed=0)((9,))
    )
    np.testing.assert_allclose(custom[6:], -custom[3:6])
    assert np.all(custom[:3] == 0)
    config = Chrono(10.0, ("Forget", "cell"), seed=0).get_config()
    assert Chrono.from_config(config).gates == ("forget", "cell")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_timescale": 2.0}, InvalidArgumentError, "max_timescale"),
        ({"gate_layout": "rnn"}, InvalidArgumentError, "gate_layout"),
        ({"gate_layout": ("a", "b")}, InvalidArgumentError, "forget"),
        ({"gate_layout": 3}, InvalidTypeError, "gate_layout"),
    ],
)
def test_chrono_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Chrono(**kwargs)


def test_chrono_shape_that_does_not_split_names_unit_forget_bias():
    with pytest.raises(InvalidArgumentError, match="unit_forget_bias"):
        Chrono()((6,))
    with pytest.raises(InvalidArgumentError, match="unit_forget_bias"):
        keras.layers.LSTM(3, bias_initializer=Chrono())(
            np.zeros((1, 2, 2), "float32")
        )


def test_identity_rnn_blocks():
    w = np.asarray(IdentityRNN(gain=0.9)((5, 15)))
    for block in np.split(w, 3, axis=1):
        np.testing.assert_array_equal(block, 0.9 * np.eye(5, dtype="float32"))
    layer = keras.layers.SimpleRNN(
        4, activation="relu", recurrent_initializer="kerasweights>IdentityRNN"
    )
    layer(np.zeros((1, 2, 3), "float32"))
    np.testing.assert_array_equal(
        layer.cell.recurrent_kernel.numpy(), np.eye(4)
    )


def test_identity_rnn_refuses_non_recurrent_shapes():
    with pytest.raises(InvalidArgumentError, match=r"shape=\(4, 6\)"):
        IdentityRNN()((4, 6))
    with pytest.raises(InvalidArgumentError, match="gain"):
        IdentityRNN(gain=0.0)
