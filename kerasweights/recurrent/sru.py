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
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop (also in the highway term).
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Reference:
        Lei, Zhang, Wang, Dai and Artzi, "Simple Recurrent Units for Highly
        Parallelizable Recurrence", EMNLP 2018.
        https://arxiv.org/abs/1709.02755
    """

    has_recurrent_dropout = False
    # c_t = f c_{t-1} + (1 - f) W x_t: f keeps the old state.
    gate_layout = ("forget", "reset")

    def __init__(
        self,
        units,
        activation="linear",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
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
            "kernel", self.kernel_initializer, input_dim, blocks, role="kernel"
        )
        self.recurrent_kernel = self.block_weight(
            "recurrent_kernel",
            self.recurrent_initializer,
            None,
            2,
            role="recurrent",
        )
        self.bias = self.block_weight(
            "bias", self.bias_initializer, None, 2, role="bias"
        )

    def project(self, inputs):
        """``[W x, W_f x + b_f, W_r x + b_r, x']``."""
        z = ops.matmul(inputs, self.kernel)
        if self.highway_projection:
            candidate, gates, highway = ops.split(
                z, [self.units, 3 * self.units], axis=-1
            )
        else:
            candidate, gates = ops.split(z, [self.units], axis=-1)
            highway = inputs
        x_f, x_r = ops.split(gates + self.bias, 2, axis=-1)
        return [candidate, x_f, x_r, highway]

    def loop_constants(self, batch_size=None):
        return tuple(ops.split(self.recurrent_kernel, 2))

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        c = states[0]
        candidate, x_f, x_r, highway = parts
        v_f, v_r = constants
        f = ops.sigmoid(x_f + v_f * c)
        r = ops.sigmoid(x_r + v_r * c)
        # f c + (1 - f) x~ and r g(c) + (1 - r) x', one operation fewer each.
        c_new = candidate + f * (c - candidate)
        h = highway + r * (self.activation(c_new) - highway)
        return h, [c_new]

    def tf_sequence(self, inputs, states, training=False, last_only=False):
        """TensorFlow, time-major ``inputs``: ``(h, [last c])``.

        In training the state recurrence has a written-out gradient
        (`kerasweights.recurrent.scan.sru_sequence`); otherwise only
        forward operations run. ``h`` holds every
        output, or with ``last_only`` only the last one: the reset gate,
        the highway product and the output are then computed for the last
        step alone.
        """
        from kerasweights.recurrent import scan

        u = self.units
        kernel = self.kernel
        b_f, b_r = ops.split(self.bias, 2)
        v_f, v_r = ops.split(self.recurrent_kernel, 2)
        candidate = ops.matmul(inputs, kernel[:, :u])
        x_f = ops.matmul(inputs, kernel[:, u : 2 * u]) + b_f
        if training:
            c = scan.sru_sequence(candidate, x_f, v_f, states[0])
        else:
            c = scan.sru_cells(candidate, x_f, v_f, states[0])
        if last_only:
            inputs = inputs[-1]
            if c.shape[0] is None:
                previous = ops.concatenate([states[0][None], c], 0)[-2]
            else:
                previous = c[-2] if c.shape[0] > 1 else states[0]
            c_out = c[-1]
        else:
            previous = ops.concatenate([states[0][None], c[:-1]], 0)
            c_out = c
        x_r = ops.matmul(inputs, kernel[:, 2 * u : 3 * u]) + b_r
        if self.highway_projection:
            highway = ops.matmul(inputs, kernel[:, 3 * u :])
        else:
            highway = inputs
        h = scan.sru_output(
            c_out,
            previous,
            x_r,
            v_r,
            highway,
            self.activation,
            fused=training and not last_only,
        )
        return h, [c[-1]]

    def fast_sequence(self, parts, states, loop):
        """A whole unmasked sequence, stepping only what needs ``c_{t-1}``.

        Used on backends other than TensorFlow (which runs `tf_sequence`).

        The reset gate and the output depend on ``c_{t-1}`` and ``c_t``
        but feed nothing back, so only the forget gate and ``c`` stay in
        the loop; ``r`` and ``h`` are computed for all steps at once.
        """
        candidate, x_f, x_r, highway = parts
        v_f, v_r = self.loop_constants()

        def step(carry, inputs):
            c = carry[0]
            cand_t, x_f_t = inputs
            c_new = cand_t + ops.sigmoid(x_f_t + v_f * c) * (c - cand_t)
            return [c_new], [c_new]

        xs = (
            ops.transpose(candidate, (1, 0, 2)),
            ops.transpose(x_f, (1, 0, 2)),
        )
        carry, cells = loop(step, [states[0]], xs)
        previous = ops.concatenate(
            [ops.expand_dims(states[0], 1), cells[:, :-1]], axis=1
        )
        r = ops.sigmoid(x_r + v_r * previous)
        h = highway + r * (self.activation(cells) - highway)
        return h, carry

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
