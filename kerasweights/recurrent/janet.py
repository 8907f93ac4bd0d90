"""JANET: the forget-gate-only LSTM (van der Westhuizen and Lasenby, 2018)."""

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.base import _derived_seed
from kerasweights.recurrent.base import draw
from kerasweights.recurrent.fused import FusedLoop
from kerasweights.recurrent.fused import default_activations
from kerasweights.recurrent.fused import janet_sequence
from kerasweights.recurrent.fused import run_cell

__all__ = ["JANETCell", "JANET"]


@keras.saving.register_keras_serializable(package="kerasweights")
class JANETCell(GatedCell):
    """JANET cell: an LSTM that keeps only the forget gate.

    The input gate is tied to the forget gate, shifted by ``beta`` so that
    a little new information always enters:

        s_t = W_f x_t + U_f h_{t-1} + b_f
        c~_t = activation(W_c x_t + U_c h_{t-1} + b_c)
        h_t = sigmoid(s_t) * h_{t-1} + (1 - sigmoid(s_t - beta)) * c~_t

    The cell state is the output (``h_t = c_t``).

    Args:
        units: Positive integer, size of the hidden state.
        activation: Activation of the candidate (default ``tanh``).
        beta: Shift between forget and input gate (the paper uses 1).
        chrono_max_length: When set, the forget biases start from the
            chrono initialization ``b_f = log(u)``, ``u ~ U(1, T_max - 1)``
            with ``T_max = chrono_max_length`` (at least 3), and ``b_c`` from
            ``bias_initializer``; the paper recommends the longest
            dependency the data holds. ``None``: every bias from
            ``bias_initializer``.
        kernel_initializer: Initializer of the input kernel.
        recurrent_initializer: Initializer of the recurrent kernel.
        bias_initializer: Initializer of the biases.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop.
        recurrent_dropout: Fraction of the previous state to drop before the
            recurrent products.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    Raises:
        InvalidArgumentError: ``chrono_max_length`` is not an integer >= 3.

    Reference:
        van der Westhuizen and Lasenby, "The unreasonable effectiveness of
        the forget gate", 2018. https://arxiv.org/abs/1804.04849
    """

    gate_layout = ("forget", "candidate")

    def __init__(
        self,
        units,
        activation="tanh",
        beta=1.0,
        chrono_max_length=None,
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
        if chrono_max_length is not None and (
            isinstance(chrono_max_length, bool)
            or not isinstance(chrono_max_length, int)
            or chrono_max_length < 3
        ):
            raise InvalidArgumentError(
                "`chrono_max_length` must be None or an integer >= 3. "
                f"Received: chrono_max_length={chrono_max_length!r}"
            )
        self.activation = keras.activations.get(activation)
        self.beta = float(beta)
        self.chrono_max_length = chrono_max_length

    def build_weights(self, input_dim):
        self.kernel = self.block_weight(
            "kernel", self.kernel_initializer, input_dim, 2, role="kernel"
        )
        self.recurrent_kernel = self.block_weight(
            "recurrent_kernel",
            self.recurrent_initializer,
            self.units,
            2,
            role="recurrent",
        )
        if self.chrono_max_length is None:
            self.bias = self.block_weight(
                "bias", self.bias_initializer, None, 2, role="bias"
            )
            return

        def chrono(shape, dtype=None):
            # Seeded like the other weights when `bias_initializer` has an
            # integer seed; otherwise from Keras' global seed, so that two
            # layers never start with the same forget biases.
            seed = getattr(self.bias_initializer, "seed", None)
            if isinstance(seed, int) and not isinstance(seed, bool):
                seed = _derived_seed(seed, "chrono", self.weight_salt)
            else:
                seed = None
            draws = keras.random.uniform(
                (self.units,),
                1.0,
                float(self.chrono_max_length - 1),
                dtype=dtype,
                seed=seed,
            )
            rest = draw(
                self.bias_initializer,
                (1, self.units),
                dtype,
                "bias",
                1,
                self.weight_salt,
            )
            return ops.concatenate([ops.log(draws), ops.reshape(rest, (-1,))])

        self.bias = self.add_weight(
            name="bias",
            shape=(2 * self.units,),
            initializer=chrono,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def project(self, inputs):
        # Kept whole: one addition to the fused recurrent product per step.
        return [ops.matmul(inputs, self.kernel) + self.bias]

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        h = states[0]
        h_in = h if recurrent_mask is None else h * recurrent_mask
        z = parts[0] + ops.matmul(h_in, self.recurrent_kernel)
        s, c = ops.split(z, 2, axis=-1)
        # 1 - sigmoid(s - beta) = sigmoid(beta - s).
        h_new = ops.sigmoid(s) * h + ops.sigmoid(self.beta - s) * (
            self.activation(c)
        )
        return h_new, [h_new]

    def fused_supported(self):
        return default_activations(self)

    def fused_sequence(self, sequences, states, mask, written_gradient=True):
        """Every ``h_t`` (time-major) and the final states; see `fused`."""
        return run_cell(
            janet_sequence,
            sequences,
            states,
            [
                self.kernel,
                self.bias,
                self.recurrent_kernel,
            ],
            self.beta,
            mask=mask,
            written_gradient=written_gradient,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
            "beta": self.beta,
            "chrono_max_length": self.chrono_max_length,
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class JANET(FusedLoop, GatedRNN):
    """JANET layer (forget-gate-only LSTM), like `keras.layers.GRU`.

    Takes every argument of `JANETCell` and of `GatedRNN`.

    Example:

    >>> import numpy as np
    >>> JANET(4, chrono_max_length=50)(np.zeros((2, 3, 5), "float32")).shape
    (2, 4)

    Fast path: the written-out forward and backward loops of
    `kerasweights.recurrent.fused` (see `FusedLoop`), not compiled by XLA:
    measured on CPU, that was not clearly faster for this layer at both
    benchmark lengths (see docs/recurrent.md). A function that
    differentiates a training call (a train step) saves in a SavedModel;
    the saved custom gradient, used when a loaded training call is
    differentiated again, reruns the forward loop.

    Reference:
        van der Westhuizen and Lasenby, "The unreasonable effectiveness of
        the forget gate", 2018. https://arxiv.org/abs/1804.04849
    """

    plugin_kind = "recurrent"
    plugin_name = "janet"
    cell_class = JANETCell

    @classmethod
    def tunable_arguments(cls, hp):
        return {
            **super().tunable_arguments(hp),
            "chrono_max_length": hp.Choice(
                "janet_chrono_max_length", [16, 64, 256]
            ),
        }
