"""LSTM with peephole connections (Gers and Schmidhuber, 2000)."""

import keras
from keras import ops

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.base import tile_rows
from kerasweights.recurrent.fused import FusedLoop
from kerasweights.recurrent.fused import default_activations
from kerasweights.recurrent.fused import peephole_lstm_sequence
from kerasweights.recurrent.fused import run_cell

__all__ = ["PeepholeLSTMCell", "PeepholeLSTM"]


@keras.saving.register_keras_serializable(package="kerasweights")
class PeepholeLSTMCell(GatedCell):
    """LSTM cell whose gates also look at the cell state (order i, f, c, o).

        i = sigmoid(W_i x + U_i h_{t-1} + p_i * c_{t-1} + b_i)
        f = sigmoid(W_f x + U_f h_{t-1} + p_f * c_{t-1} + b_f)
        c_t = f * c_{t-1} + i * tanh(W_c x + U_c h_{t-1} + b_c)
        o = sigmoid(W_o x + U_o h_{t-1} + p_o * c_t + b_o)
        h_t = o * tanh(c_t)

    Args:
        units: Positive integer, size of the state.
        activation: Activation of the candidate and output (``tanh``).
        recurrent_activation: Activation of the gates (``sigmoid``).
        kernel_initializer: Initializer of the input kernel.
        recurrent_initializer: Initializer of the recurrent kernel.
        bias_initializer: Initializer of the biases (forget block: ones).
        peephole_initializer: Initializer of ``p_i``, ``p_f``, ``p_o``
            (each drawn as a ``(1, units)`` matrix).
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop.
        recurrent_dropout: Fraction of ``h_{t-1}`` to drop.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Reference:
        Gers and Schmidhuber, "Recurrent nets that time and count", IJCNN
        2000; Gers, Schraudolph and Schmidhuber, "Learning precise timing
        with LSTM recurrent networks", JMLR 2002.
    """

    state_names = ("h", "c")
    gate_layout = ("input", "forget", "candidate", "output")

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        peephole_initializer="glorot_uniform",
        dropout=0.0,
        recurrent_dropout=0.0,
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
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)

    def build_weights(self, input_dim):
        self.kernel = self.block_weight(
            "kernel", self.kernel_initializer, input_dim, 4, role="kernel"
        )
        self.recurrent_kernel = self.block_weight(
            "recurrent_kernel",
            self.recurrent_initializer,
            self.units,
            4,
            role="recurrent",
        )
        self.bias = self.block_weight(
            "bias", self.bias_initializer, None, 4, ones_block=1, role="bias"
        )
        self.peephole = self.block_weight(
            "peephole", self.peephole_initializer, None, 3
        )

    def project(self, inputs):
        return [ops.matmul(inputs, self.kernel) + self.bias]

    def loop_constants(self, batch_size=None):
        return tuple(
            tile_rows(p, batch_size) for p in ops.split(self.peephole, 3)
        )

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        h, c = states
        p_i, p_f, p_o = constants
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = parts[0] + ops.matmul(h_in, self.recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + p_i * c)
        f = self.recurrent_activation(z_f + p_f * c)
        c_new = f * c + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + p_o * c_new)
        h_new = o * self.activation(c_new)
        return h_new, [h_new, c_new]

    def fused_supported(self):
        return default_activations(self)

    def fused_sequence(self, sequences, states, mask, written_gradient=True):
        """Every ``h_t`` (time-major) and the final states; see `fused`."""
        return run_cell(
            peephole_lstm_sequence,
            sequences,
            states,
            [
                self.kernel,
                self.bias,
                self.recurrent_kernel,
                self.peephole,
            ],
            mask=mask,
            written_gradient=written_gradient,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "peephole_initializer": keras.initializers.serialize(
                self.peephole_initializer
            ),
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class PeepholeLSTM(FusedLoop, GatedRNN):
    """Peephole LSTM layer, like `keras.layers.LSTM`.

    Takes every argument of `PeepholeLSTMCell` and of `GatedRNN`.

    Fast path: the written-out forward and backward loops of
    `kerasweights.recurrent.fused`, XLA-compiled in graph training calls;
    when they apply and what they change: see `FusedLoop`.

    Reference:
        Gers and Schmidhuber, "Recurrent nets that time and count", 2000.
    """

    plugin_kind = "recurrent"
    plugin_name = "peephole_lstm"
    cell_class = PeepholeLSTMCell
