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
    w, u_f, u_h, b = weights
    n = cell.units
    h = states[0]
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        f = sigmoid(xt @ w[:, :n] + h @ u_f + b[:n])
        cand = np.tanh(xt @ w[:, n:] + (f * h) @ u_h + b[n:])
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


def indrnn(weights, x, states, cell):
    w, u, b = weights
    h = states[0]
    outs = []
    for t in range(x.shape[1]):
        h = np.maximum(x[:, t] @ w + u * h + b, 0.0)
        outs.append(h)
    return np.stack(outs, 1), [h]


def min_gru(weights, x, states, cell):
    w, b = weights
    n = cell.units
    h = states[0]
    outs = []
    for t in range(x.shape[1]):
        k = x[:, t] @ w + b
        z = sigmoid(k[:, :n])
        h = (1 - z) * h + z * g_positive(k[:, n:])
        outs.append(h)
    return np.stack(outs, 1), [h]


def min_lstm(weights, x, states, cell):
    w, b = weights
    n = cell.units
    h = states[0]
    outs = []
    for t in range(x.shape[1]):
        k = x[:, t] @ w + b
        f = sigmoid(k[:, :n])
        i = sigmoid(k[:, n : 2 * n])
        f, i = f / (f + i), i / (f + i)
        h = f * h + i * g_positive(k[:, 2 * n :])
        outs.append(h)
    return np.stack(outs, 1), [h]


def sru(weights, x, states, cell):
    w, v, b = weights
    n = cell.units
    c = states[0]
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        f = sigmoid(xt @ w[:, n : 2 * n] + v[:n] * c + b[:n])
        r = sigmoid(xt @ w[:, 2 * n : 3 * n] + v[n:] * c + b[n:])
        c = f * c + (1 - f) * (xt @ w[:, :n])
        skip = xt if w.shape[1] == 3 * n else xt @ w[:, 3 * n :]
        h = r * c + (1 - r) * skip
        outs.append(h)
    return np.stack(outs, 1), [c]


def layer_norm_lstm(weights, x, states, cell):
    w, u, b, gx, gh, gc, bc = weights
    n = cell.units
    eps = cell.layer_norm_epsilon
    h, c = states
    outs = []
    for t in range(x.shape[1]):
        z = (
            layer_norm(x[:, t] @ w, gx, 0.0, eps)
            + layer_norm(h @ u, gh, 0.0, eps)
            + b
        )
        i, f = sigmoid(z[:, :n]), sigmoid(z[:, n : 2 * n])
        g, o = np.tanh(z[:, 2 * n : 3 * n]), sigmoid(z[:, 3 * n :])
        c = f * c + i * g
        h = o * np.tanh(layer_norm(c, gc, bc, eps))
        outs.append(h)
    return np.stack(outs, 1), [h, c]


def layer_norm_gru(weights, x, states, cell):
    w, u, b, gx, gh = weights
    n = cell.units
    eps = cell.layer_norm_epsilon
    h = states[0]
    outs = []
    for t in range(x.shape[1]):
        a = layer_norm(x[:, t] @ w, gx, 0.0, eps) + b
        s = layer_norm(h @ u, gh, 0.0, eps)
        z = sigmoid(a[:, :n] + s[:, :n])
        r = sigmoid(a[:, n : 2 * n] + s[:, n : 2 * n])
        cand = np.tanh(a[:, 2 * n :] + r * s[:, 2 * n :])
        h = z * h + (1 - z) * cand
        outs.append(h)
    return np.stack(outs, 1), [h]


def peephole_lstm(weights, x, states, cell):
    w, u, b, p = weights
    n = cell.units
    h, c = states
    outs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w + h @ u + b
        i = sigmoid(z[:, :n] + p[:n] * c)
        f = sigmoid(z[:, n : 2 * n] + p[n : 2 * n] * c)
        c = f * c + i * np.tanh(z[:, 2 * n : 3 * n])
        o = sigmoid(z[:, 3 * n :] + p[2 * n :] * c)
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), [h, c]


REFERENCES = {
    "MGUCell": mgu,
    "JANETCell": janet,
    "IndRNNCell": indrnn,
    "MinGRUCell": min_gru,
    "MinLSTMCell": min_lstm,
    "SRUCell": sru,
    "LayerNormLSTMCell": layer_norm_lstm,
    "LayerNormGRUCell": layer_norm_gru,
    "PeepholeLSTMCell": peephole_lstm,
}
