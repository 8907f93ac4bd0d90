"""minLSTM's normalised gates stay finite where both gates underflow.

``f / (f + i)`` is 0 / 0 in float32 once both gate pre-activations are
below about -87; the layer computes it as ``sigmoid(log f - log i)``.
"""

import numpy as np
import pytest
import tensorflow as tf

import kerasweights  # noqa: F401  (registers the layers)
from kerasweights.recurrent import MinLSTM


def reference(x, kernel, bias):
    """minLSTM in float64 NumPy, normalised gates from log-sigmoids."""
    units = kernel.shape[1] // 3
    k = x.astype(np.float64) @ kernel.astype(np.float64) + bias
    k_f, k_i, k_h = np.split(k, 3, axis=-1)
    log_f = -np.logaddexp(0.0, -k_f)
    log_i = -np.logaddexp(0.0, -k_i)
    a = 1.0 / (1.0 + np.exp(log_i - log_f))
    g = np.where(k_h >= 0, k_h + 0.5, 1.0 / (1.0 + np.exp(-k_h)))
    h = np.zeros((x.shape[0], units))
    for t in range(x.shape[1]):
        h = a[:, t] * h + (1.0 - a[:, t]) * g[:, t]
    return h


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_gates_below_the_float32_underflow_stay_finite(training, masked):
    units, features, length = 3, 2, 6
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, length, features)).astype("float32")
    bias = np.concatenate(
        [np.full(units, -120.0), np.full(units, -125.0), np.zeros(units)]
    ).astype("float32")
    layer = MinLSTM(units)
    layer.build((None, length, features))
    (bias_weight,) = [w for w in layer.weights if w.path.endswith("bias")]
    bias_weight.assign(bias)
    (kernel_weight,) = [w for w in layer.weights if w.path.endswith("kernel")]
    kernel = np.asarray(kernel_weight)
    mask = np.ones((4, length), bool) if masked else None
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        out = layer(x_t, mask=mask, training=training)
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, [x_t] + layer.trainable_weights)
    assert np.all(np.isfinite(out.numpy()))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grad)
    want = reference(x, kernel, bias.astype(np.float64))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-5)
