"""Simple Recurrent Unit (Lei et al., 2018)."""

import keras
from keras import ops

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN

__all__ = ["SRUCell", "SRU"]


@keras.saving.register_keras_serializable(package="kerasweights")
class SRUCell(GatedCell):
    """Simple Recurrent Unit cell: matrix products on the input only.

        f_t = sigmoid(W_f x_t + v_f * c_{t-1} + b_f)
        r_t = sigmoid(W_r x_t + v_r * c_{t-1} + b_r)
        c_t = f_t * c_{t-1} + (1 - f_t) * (W x_t)
        h_t = r_t * activation(c_t) + (1 - r_t) * x'_t

    ``x'_t`` is ``x_t`` when the input has ``units`` features, else the
    projection ``W_s x_t`` (the paper's remedy for differing sizes). Every
    matrix product depends on the input alone, so a layer computes them for
    all timesteps at once; the recurrence is element-wise. The state is
    ``c_t``; the output is ``h_t``.

    Args:
        units: Positive integer, size of the state.
        activation: Applied to ``c_t`` in the output (default ``linear``,
            as in the EMNLP 2018 paper; ``tanh`` in the first preprint).
        kernel_initializer: Initializer of the input kernel; each block
            (``W``, ``W_f``, ``W_r``, ``W_s``) draws its own values.
        recurrent_initializer: Initializer of the vectors ``v_f``, ``v_r``
            (drawn as ``(1, units)`` matrices). Default ``glorot_uniform``.
        bias_initializer: Initializer of ``b_f`` and ``b_r``.
        dropout: Fraction of the inputs to drop (also in the highway term).
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Reference:
        Lei, Zhang, Wang, Dai and Artzi, "Simple Recurrent Units for Highly
        Parallelizable Recurrence", EMNLP 2018.
        https://arxiv.org/abs/1709.02755
    """

    has_recurrent_dropout = False

    def __init__(
        self,
        units,
        activation="linear",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="glorot_uniform",
        bias_initializer="zeros",
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            dropout=dropout,
            recurrent_dropout=0.0,
            seed=seed,
            **kwargs,
        )
        self.activation = keras.activations.get(activation)

    def build_weights(self, input_dim):
        self.highway_projection = input_dim != self.units
        blocks = 4 if self.highway_projection else 3
        self.kernel = self.block_weight(
            "kernel", self.kernel_initializer, input_dim, blocks
        )
        self.recurrent_kernel = self.block_weight(
            "recurrent_kernel", self.recurrent_initializer, None, 2
        )
        self.bias = self.block_weight("bias", self.bias_initializer, None, 2)

    def project(self, inputs):
        u = self.units
        z = ops.matmul(inputs, self.kernel)
        gates = z[..., u : 3 * u] + self.bias
        highway = z[..., 3 * u :] if self.highway_projection else inputs
        return ops.concatenate([z[..., :u], gates, highway], axis=-1)

    def recur(self, projected, states, recurrent_mask=None):
        u = self.units
        c = states[0]
        candidate = projected[..., :u]
        f = ops.sigmoid(
            projected[..., u : 2 * u] + self.recurrent_kernel[:u] * c
        )
        r = ops.sigmoid(
            projected[..., 2 * u : 3 * u] + self.recurrent_kernel[u:] * c
        )
        c_new = f * c + (1.0 - f) * candidate
        h = r * self.activation(c_new) + (1.0 - r) * projected[..., 3 * u :]
        return h, [c_new]

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class SRU(GatedRNN):
    """Simple Recurrent Unit layer, like `keras.layers.GRU`.

    Takes every argument of `SRUCell` and of `GatedRNN`.

    Reference:
        Lei et al., "Simple Recurrent Units for Highly Parallelizable
        Recurrence", EMNLP 2018. https://arxiv.org/abs/1709.02755
    """

    plugin_kind = "recurrent"
    plugin_name = "sru"
    cell_class = SRUCell
