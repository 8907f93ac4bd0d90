"""Plain NumPy versions of each cell's equations, written from the papers.

Each function takes the weights as NumPy arrays (in the order of
``cell.weights``), an input sequence ``x`` of shape (batch, time,
features) and the initial states, and returns the outputs of every step
and the final states, computed one timestep at a time.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def g_positive(x):
    """minGRU/minLSTM candidate activation: x + 0.5 above 0, sigmoid below."""
    return np.where(x >= 0, x + 0.5, sigmoid(np.minimum(x, 0.0)))


def layer_norm(v, gain, bias, eps):
    mean = v.mean(axis=-1, keepdims=True)
    var = v.var(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(var + eps) * gain + bias


def mgu(weights, x, states, cell):
    w, u, b = weights
    n = cell.units
    h = states[0]
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        f = sigmoid(xt @ w[:, :n] + h @ u[:, :n] + b[:n])
        cand = np.tanh(xt @ w[:, n:] + (f * h) @ u[:, n:] + b[n:])
        h = (1 - f) * h + f * cand
        outs.append(h)
    return np.stack(outs, 1), [h]


def janet(weights, x, states, cell):
    w, u, b = weights
    n = cell.units
    beta = cell.beta
    c = states[0]
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        s = xt @ w[:, :n] + c @ u[:, :n] + b[:n]
        cand = np.tanh(xt @ w[:, n:] + c @ u[:, n:] + b[n:])
        c = sigmoid(s) * c + (1 - sigmoid(s - beta)) * cand
        outs.append(c)
    return np.stack(outs, 1), [c]


REFERENCES = {
    "MGUCell": mgu,
    "JANETCell": janet,
}
