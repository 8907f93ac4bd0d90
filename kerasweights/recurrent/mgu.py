"""Minimal Gated Unit (Zhou et al., 2016)."""

import keras
from keras import ops

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.fused import FusedLoop
from kerasweights.recurrent.fused import default_activations
from kerasweights.recurrent.fused import mgu_sequence
from kerasweights.recurrent.fused import run_cell

__all__ = ["MGUCell", "MGU"]


@keras.saving.register_keras_serializable(package="kerasweights")
class MGUCell(GatedCell):
    """Minimal Gated Unit cell: a GRU with one gate.

    A single forget gate both resets the state seen by the candidate and
    mixes old and new state:

        f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
        c_t = activation(W_h x_t + U_h (f_t * h_{t-1}) + b_h)
        h_t = (1 - f_t) * h_{t-1} + f_t * c_t

    Args:
        units: Positive integer, size of the hidden state.
        activation: Activation of the candidate state (default ``tanh``).
        recurrent_activation: Activation of the gate (default ``sigmoid``).
        kernel_initializer: Initializer of the input kernel; each gate block
            draws its own values.
        recurrent_initializer: Initializer of the recurrent kernel.
        bias_initializer: Initializer of the biases.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop, in [0, 1).
        recurrent_dropout: Fraction of the previous state to drop before
            the recurrent products, in [0, 1).
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Example:

    >>> import numpy as np, keras
    >>> layer = keras.layers.RNN(MGUCell(4))
    >>> layer(np.zeros((2, 3, 5), "float32")).shape
    (2, 4)

    Reference:
        Zhou, Wu, Zhang and Zhou, "Minimal Gated Unit for Recurrent Neural
        Networks", International Journal of Automation and Computing, 2016.
        https://arxiv.org/abs/1603.09420
    """

    # h_t = (1 - f) h_{t-1} + f c~_t: the gate multiplies the candidate,
    # so for chrono it plays the input gate.
    gate_layout = ("input", "candidate")

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

    def build_weights(self, input_dim):
        self.kernel = self.block_weight(
            "kernel", self.kernel_initializer, input_dim, 2, role="kernel"
        )
        # Two recurrent matrices rather than one sliced at every step: the
        # second product needs the gate first, and slicing a weight inside
        # the loop costs a full-size gradient per step.
        self.recurrent_kernel_f = self.block_weight(
            "recurrent_kernel_f",
            self.recurrent_initializer,
            self.units,
            1,
            role="recurrent",
        )
        self.recurrent_kernel_h = self.block_weight(
            "recurrent_kernel_h",
            self.recurrent_initializer,
            self.units,
            1,
            role="recurrent",
        )
        self.bias = self.block_weight(
            "bias", self.bias_initializer, None, 2, role="bias"
        )

    def project(self, inputs):
        return ops.split(ops.matmul(inputs, self.kernel) + self.bias, 2, -1)

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        h = states[0]
        x_f, x_h = parts
        h_in = h if recurrent_mask is None else h * recurrent_mask
        f = self.recurrent_activation(
            x_f + ops.matmul(h_in, self.recurrent_kernel_f)
        )
        candidate = self.activation(
            x_h + ops.matmul(f * h_in, self.recurrent_kernel_h)
        )
        # (1 - f) h + f c, with one operation fewer.
        h_new = h + f * (candidate - h)
        return h_new, [h_new]

    def fused_supported(self):
        return default_activations(self)

    def fused_sequence(self, sequences, states, mask, written_gradient=True):
        """Every ``h_t`` (time-major) and the final states; see `fused`."""
        return run_cell(
            mgu_sequence,
            sequences,
            states,
            [
                self.kernel,
                self.bias,
                self.recurrent_kernel_f,
                self.recurrent_kernel_h,
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
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class MGU(FusedLoop, GatedRNN):
    """Minimal Gated Unit layer (one forget gate), like `keras.layers.GRU`.

    Takes every argument of `MGUCell` and of `GatedRNN` (``units``,
    ``activation``, ``recurrent_activation``, the three initializers,
    ``dropout``, ``recurrent_dropout``, ``seed``, ``return_sequences``,
    ``return_state``, ``go_backwards``, ``stateful``, ``unroll``,
    ``zero_output_for_mask``).

    Example:

    >>> import numpy as np
    >>> MGU(4, return_sequences=True)(np.zeros((2, 3, 5), "float32")).shape
    (2, 3, 4)

    Fast path: the written-out forward and backward loops of
    `kerasweights.recurrent.fused`, XLA-compiled in graph training calls;
    when they apply and what they change: see `FusedLoop`.

    Reference:
        Zhou et al., "Minimal Gated Unit for Recurrent Neural Networks",
        2016. https://arxiv.org/abs/1603.09420
    """

    plugin_kind = "recurrent"
    plugin_name = "mgu"
    cell_class = MGUCell
