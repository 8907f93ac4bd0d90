"""Independently recurrent neural network (Li et al., 2018)."""

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.base import tile_rows

__all__ = ["IndRNNCell", "IndRNN", "MaxAbsValue"]


@keras.saving.register_keras_serializable(package="kerasweights")
class MaxAbsValue(keras.constraints.Constraint):
    """Clips every entry of a weight to ``[-limit, limit]``.

    IndRNN keeps ``|u| <= 2 ** (1 / T)`` so that no unit's state grows
    more than twice over ``T`` steps; Keras' norm constraints act on whole
    rows or columns, not on single entries of a vector.

    Args:
        limit: Positive number.

    Example:

    >>> import keras
    >>> layer = IndRNN(8, recurrent_constraint=MaxAbsValue(2 ** (1 / 100)))
    """

    def __init__(self, limit):
        if isinstance(limit, bool) or not isinstance(limit, (int, float)):
            raise InvalidTypeError(
                f"`limit` must be a positive number. Received: limit={limit!r}"
            )
        if not limit > 0:
            raise InvalidArgumentError(
                f"`limit` must be a positive number. Received: limit={limit!r}"
            )
        self.limit = float(limit)

    def __call__(self, w):
        return ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


@keras.saving.register_keras_serializable(package="kerasweights")
class IndRNNCell(GatedCell):
    """IndRNN cell: each unit sees only its own past value.

    The recurrent weight is a vector, so the recurrence is element-wise:

        h_t = activation(W x_t + u * h_{t-1} + b)

    With ``relu`` and ``|u| <= 2 ** (1 / T)`` a unit can keep information
    over thousands of steps; stacking layers mixes the units.

    Args:
        units: Positive integer, size of the hidden state.
        activation: Activation (default ``relu``, as in the paper).
        kernel_initializer: Initializer of the input kernel.
        recurrent_initializer: Initializer of the recurrent vector ``u``
            (default uniform in [0, 1], as in the paper). A matrix
            initializer is drawn as a ``(1, units)`` matrix.
        bias_initializer: Initializer of the bias.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint:
            Regularizers and constraints of the input kernel, the
            recurrent weights and the bias (see `GatedCell`).
        dropout: Fraction of the inputs to drop.
        recurrent_dropout: Fraction of ``h_{t-1}`` to drop in the recurrent
            term.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments.

    The paper also clips ``u`` to ``[-2 ** (1 / T), 2 ** (1 / T)]``; pass
    ``recurrent_constraint=MaxAbsValue(2 ** (1 / T))`` for that (the cell
    does not clip by itself). IndRNN has no
    gates, so a gate-aware bias initializer (``Chrono``) is refused.

    Reference:
        Li, Li, Cook, Zhu and Gao, "Independently Recurrent Neural Network
        (IndRNN): Building A Longer and Deeper RNN", CVPR 2018.
        https://arxiv.org/abs/1803.04831
    """

    def __init__(
        self,
        units,
        activation="relu",
        kernel_initializer="glorot_uniform",
        recurrent_initializer=None,
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
        if recurrent_initializer is None:
            recurrent_initializer = keras.initializers.RandomUniform(0.0, 1.0)
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

    def build_weights(self, input_dim):
        self.kernel = self.block_weight(
            "kernel", self.kernel_initializer, input_dim, 1, role="kernel"
        )
        self.recurrent_kernel = self.block_weight(
            "recurrent_kernel",
            self.recurrent_initializer,
            None,
            1,
            role="recurrent",
        )
        self.bias = self.block_weight(
            "bias", self.bias_initializer, None, 1, role="bias"
        )

    def project(self, inputs):
        return [ops.matmul(inputs, self.kernel) + self.bias]

    def loop_constants(self, batch_size=None):
        return (tile_rows(self.recurrent_kernel, batch_size),)

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        h = states[0]
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h_new = self.activation(parts[0] + constants[0] * h_in)
        return h_new, [h_new]

    def tf_sequence(self, inputs, states, training=False, last_only=False):
        """TensorFlow, time-major ``inputs``: ``(h, [last h])``, or ``None``.

        Steps unrolled on time slices (`kerasweights.recurrent.scan`),
        differentiated automatically: with no while loop, no step's
        intermediates go through TensorFlow's loop stacks. Returns ``None``
        (the layer then runs its general loop) when the steps are not to be
        unrolled (`kerasweights.recurrent.scan.unrolled_length`).
        """
        from kerasweights.recurrent import scan

        if scan.unrolled_length(inputs) is None:
            return None
        projected = self.project(inputs)[0]
        u = tile_rows(self.recurrent_kernel, ops.shape(states[0])[0])
        h = states[0]
        outputs = []
        for x_t in scan.unstack(projected):
            h = self.activation(x_t + u * h)
            outputs.append(h)
        if last_only:
            return h, [h]
        return ops.stack(outputs), [h]

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class IndRNN(GatedRNN):
    """IndRNN layer (element-wise recurrence), like `keras.layers.GRU`.

    Takes every argument of `IndRNNCell` and of `GatedRNN`.

    Reference:
        Li et al., "Independently Recurrent Neural Network (IndRNN)", CVPR
        2018. https://arxiv.org/abs/1803.04831
    """

    plugin_kind = "recurrent"
    plugin_name = "indrnn"
    cell_class = IndRNNCell
