"""Layer-normalised LSTM and GRU (Ba, Kiros and Hinton, 2016)."""

import keras
from keras import ops

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.base import layer_norm
from kerasweights.recurrent.base import tile_rows
from kerasweights.recurrent.fused import FusedLoop
from kerasweights.recurrent.fused import default_activations
from kerasweights.recurrent.fused import layer_norm_gru_sequence
from kerasweights.recurrent.fused import layer_norm_lstm_sequence
from kerasweights.recurrent.fused import run_cell

__all__ = [
    "LayerNormLSTMCell",
    "LayerNormLSTM",
    "LayerNormGRUCell",
    "LayerNormGRU",
]


class _LayerNormCell(GatedCell):
    """Common arguments and weights of the layer-normalised cells."""

    blocks = 4
    forget_block = None

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
        gamma_initializer="ones",
        beta_initializer="zeros",
        layer_norm_epsilon=1e-3,
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
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.layer_norm_epsilon = float(layer_norm_epsilon)

    def build_weights(self, input_dim):
        n = self.blocks
        self.kernel = self.block_weight(
            "kernel", self.kernel_initializer, input_dim, n, role="kernel"
        )
        self.recurrent_kernel = self.block_weight(
            "recurrent_kernel",
            self.recurrent_initializer,
            self.units,
            n,
            role="recurrent",
        )
        self.bias = self.block_weight(
            "bias",
            self.bias_initializer,
            None,
            n,
            self.forget_block,
            role="bias",
        )
        self.input_gamma = self.block_weight(
            "input_gamma", self.gamma_initializer, None, n
        )
        self.recurrent_gamma = self.block_weight(
            "recurrent_gamma", self.gamma_initializer, None, n
        )

    def project(self, inputs):
        z = ops.matmul(inputs, self.kernel)
        return [
            layer_norm(z, self.input_gamma, epsilon=self.layer_norm_epsilon)
            + self.bias
        ]

    def loop_constants(self, batch_size=None):
        return (tile_rows(self.recurrent_gamma, batch_size),)

    def normalised_recurrent(self, h, recurrent_mask, gamma):
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = ops.matmul(h_in, self.recurrent_kernel)
        return layer_norm(z, gamma, epsilon=self.layer_norm_epsilon)

    def fused_supported(self):
        return default_activations(self)

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(
                self.recurrent_activation
            ),
            "gamma_initializer": keras.initializers.serialize(
                self.gamma_initializer
            ),
            "beta_initializer": keras.initializers.serialize(
                self.beta_initializer
            ),
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class LayerNormLSTMCell(_LayerNormCell):
    """LSTM cell with layer normalisation (gate order i, f, c, o).

        z_t = LN(W x_t; g_x) + LN(U h_{t-1}; g_h) + b
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o)
        c_t = f * c_{t-1} + i * tanh(z_c)
        h_t = o * tanh(LN(c_t; g_c, b_c))

    ``LN(v; g, b) = g * (v - mean(v)) / sqrt(var(v) + eps) + b`` over the
    whole ``4 * units`` vector, with separate gains for the input and the
    recurrent term (their shifts would duplicate ``b``, so there are none).
    The forget bias starts at one.

    Args:
        units: Positive integer, size of the state.
        activation: Activation of the candidate and the output (``tanh``).
        recurrent_activation: Activation of the gates (``sigmoid``).
        kernel_initializer: Initializer of the input kernel.
        recurrent_initializer: Initializer of the recurrent kernel.
        bias_initializer: Initializer of ``b`` (forget block: ones).
        gamma_initializer: Initializer of the normalisation gains.
        beta_initializer: Initializer of the cell normalisation shift.
        layer_norm_epsilon: Added to the variance.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop.
        recurrent_dropout: Fraction of ``h_{t-1}`` to drop.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Reference:
        Ba, Kiros and Hinton, "Layer Normalization", 2016, section 3.1 and
        appendix. https://arxiv.org/abs/1607.06450
    """

    state_names = ("h", "c")
    blocks = 4
    forget_block = 1
    gate_layout = ("input", "forget", "candidate", "output")

    def build_weights(self, input_dim):
        super().build_weights(input_dim)
        self.cell_gamma = self.block_weight(
            "cell_gamma", self.gamma_initializer, None, 1
        )
        self.cell_beta = self.block_weight(
            "cell_beta", self.beta_initializer, None, 1
        )

    def loop_constants(self, batch_size=None):
        return super().loop_constants(batch_size) + (
            tile_rows(self.cell_gamma, batch_size),
            tile_rows(self.cell_beta, batch_size),
        )

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        h, c = states
        gamma, cell_gamma, cell_beta = constants
        z = parts[0] + self.normalised_recurrent(h, recurrent_mask, gamma)
        i, f, g, o = ops.split(z, 4, axis=-1)
        c_new = self.recurrent_activation(f) * c + self.recurrent_activation(
            i
        ) * self.activation(g)
        normalised = layer_norm(
            c_new, cell_gamma, cell_beta, self.layer_norm_epsilon
        )
        h_new = self.recurrent_activation(o) * self.activation(normalised)
        return h_new, [h_new, c_new]

    def fused_sequence(self, sequences, states, mask, written_gradient=True):
        """Every ``h_t`` (time-major) and the final states; see `fused`."""
        return run_cell(
            layer_norm_lstm_sequence,
            sequences,
            states,
            [
                self.kernel,
                self.recurrent_kernel,
                self.input_gamma,
                self.bias,
                self.recurrent_gamma,
                self.cell_gamma,
                self.cell_beta,
            ],
            self.layer_norm_epsilon,
            mask=mask,
            written_gradient=written_gradient,
        )


@keras.saving.register_keras_serializable(package="kerasweights")
class LayerNormGRUCell(_LayerNormCell):
    """GRU cell with layer normalisation (gate order z, r, n).

        a_t = LN(W x_t; g_x) + b,  s_t = LN(U h_{t-1}; g_h)
        z = sigmoid(a_z + s_z),  r = sigmoid(a_r + s_r)
        n = tanh(a_n + r * s_n)
        h_t = z * h_{t-1} + (1 - z) * n

    The reset gate acts on the normalised recurrent product, as in Keras'
    ``GRU(reset_after=True)``; ``beta_initializer`` is accepted for a
    common interface with `LayerNormLSTMCell` and unused (``b`` shifts).

    Args:
        units: Positive integer, size of the state.
        activation: Activation of the candidate (``tanh``).
        recurrent_activation: Activation of the gates (``sigmoid``).
        kernel_initializer: Initializer of the input kernel.
        recurrent_initializer: Initializer of the recurrent kernel.
        bias_initializer: Initializer of ``b``.
        gamma_initializer: Initializer of the normalisation gains.
        beta_initializer: Unused, see above.
        layer_norm_epsilon: Added to the variance.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop.
        recurrent_dropout: Fraction of ``h_{t-1}`` to drop.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Reference:
        Ba, Kiros and Hinton, "Layer Normalization", 2016.
        https://arxiv.org/abs/1607.06450; Cho et al., 2014 (GRU).
    """

    blocks = 3
    # h_t = z h_{t-1} + (1 - z) n: z keeps the old state (forget role).
    gate_layout = ("forget", "reset", "candidate")

    def project(self, inputs):
        return ops.split(super().project(inputs)[0], 3, axis=-1)

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        h = states[0]
        a_z, a_r, a_n = parts
        s_z, s_r, s_n = ops.split(
            self.normalised_recurrent(h, recurrent_mask, constants[0]),
            3,
            axis=-1,
        )
        z = self.recurrent_activation(a_z + s_z)
        r = self.recurrent_activation(a_r + s_r)
        n = self.activation(a_n + r * s_n)
        # z h + (1 - z) n, with one operation fewer.
        h_new = n + z * (h - n)
        return h_new, [h_new]

    def fused_sequence(self, sequences, states, mask, written_gradient=True):
        """Every ``h_t`` (time-major) and the final states; see `fused`."""
        return run_cell(
            layer_norm_gru_sequence,
            sequences,
            states,
            [
                self.kernel,
                self.recurrent_kernel,
                self.input_gamma,
                self.bias,
                self.recurrent_gamma,
            ],
            self.layer_norm_epsilon,
            mask=mask,
            written_gradient=written_gradient,
        )


@keras.saving.register_keras_serializable(package="kerasweights")
class LayerNormLSTM(FusedLoop, GatedRNN):
    """Layer-normalised LSTM layer, like `keras.layers.LSTM`.

    Takes every argument of `LayerNormLSTMCell` and of `GatedRNN`.

    Fast path: the written-out forward and backward loops of
    `kerasweights.recurrent.fused`, XLA-compiled in graph training calls;
    when they apply and what they change: see `FusedLoop`.

    Reference:
        Ba, Kiros and Hinton, "Layer Normalization", 2016.
        https://arxiv.org/abs/1607.06450
    """

    plugin_kind = "recurrent"
    plugin_name = "layer_norm_lstm"
    cell_class = LayerNormLSTMCell


@keras.saving.register_keras_serializable(package="kerasweights")
class LayerNormGRU(FusedLoop, GatedRNN):
    """Layer-normalised GRU layer, like `keras.layers.GRU`.

    Takes every argument of `LayerNormGRUCell` and of `GatedRNN`.

    Fast path: the written-out forward and backward loops of
    `kerasweights.recurrent.fused`, XLA-compiled in graph training calls;
    when they apply and what they change: see `FusedLoop`.

    Reference:
        Ba, Kiros and Hinton, "Layer Normalization", 2016.
        https://arxiv.org/abs/1607.06450
    """

    plugin_kind = "recurrent"
    plugin_name = "layer_norm_gru"
    cell_class = LayerNormGRUCell
