"""minGRU and minLSTM: gates that depend on the input only (Feng et al.)."""

import keras
from keras import ops

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.base import check_scan
from kerasweights.recurrent.base import log_positive_tanh
from kerasweights.recurrent.base import log_sigmoid
from kerasweights.recurrent.base import log_space_scan
from kerasweights.recurrent.base import positive_tanh
from kerasweights.recurrent.base import wants_parallel

__all__ = ["MinGRUCell", "MinGRU", "MinLSTMCell", "MinLSTM"]


class _MinimalCell(GatedCell):
    """Common part: no recurrent weights, a parallel scan for sequences."""

    has_recurrent_dropout = False
    has_recurrent_weights = False
    blocks = 2

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        seed=None,
        scan="auto",
        **kwargs,
    ):
        super().__init__(
            units,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=0.0,
            seed=seed,
            **kwargs,
        )
        self.scan = check_scan(scan)

    def build_weights(self, input_dim):
        self.kernel = self.block_weight(
            "kernel",
            self.kernel_initializer,
            input_dim,
            self.blocks,
            role="kernel",
        )
        self.bias = self.block_weight(
            "bias", self.bias_initializer, None, self.blocks, role="bias"
        )

    def project(self, inputs):
        # One product per gate block: splitting one wide product would copy
        # every block, and its gradient concatenate them again.
        u = self.units
        return [
            ops.matmul(inputs, self.kernel[:, i * u : (i + 1) * u])
            + self.bias[i * u : (i + 1) * u]
            for i in range(self.blocks)
        ]

    def tf_sequence(self, inputs, states, training=False, last_only=False):
        """TensorFlow, time-major ``inputs``: ``(h, [last h])``.

        ``h`` holds every ``h_t``, or with ``last_only`` only the last one
        (then only its gradient flows back). In training the gates and
        the recurrence share one written-out gradient
        (`kerasweights.recurrent.scan`); otherwise the gates are plain
        operations and only the recurrence has its own gradient.
        """
        from kerasweights.recurrent import scan

        if training:
            u = self.units
            products = [
                ops.matmul(inputs, self.kernel[:, i * u : (i + 1) * u])
                for i in range(self.blocks)
            ]
            biases = ops.split(self.bias, self.blocks)
            h = self.scan_sequence(
                *products, *biases, states[0], last_only=last_only
            )
        else:
            # Forward operations only: an exported model holds no gradient
            # function (a gradient taken here is automatic).
            a, b = self.linear_coefficients(self.project(inputs))
            h = scan.steps(a, b, states[0])
            if last_only:
                h = h[-1]
        return h, [h if last_only else h[-1]]

    def use_parallel_scan(self, time_steps, unroll, training=True):
        return wants_parallel(self.scan, time_steps, unroll, training)

    def parallel_scan(self, parts, states, mask=None):
        """All states of a sequence at once; ``(outputs, [last state])``."""
        log_a, log_b = self.log_coefficients(parts)
        h = log_space_scan(log_a, log_b, states[0], mask)
        return h, [h[:, -1]]

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        a, b = self.linear_coefficients(parts)
        h_new = a * states[0] + b
        return h_new, [h_new]

    def get_config(self):
        return {**super().get_config(), "scan": self.scan}


@keras.saving.register_keras_serializable(package="kerasweights")
class MinGRUCell(_MinimalCell):
    """minGRU cell: a GRU whose gate and candidate see only the input.

        z_t = sigmoid(W_z x_t + b_z)
        h~_t = g(W_h x_t + b_h),  g(v) = v + 0.5 if v >= 0 else sigmoid(v)
        h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

    Since ``h_t`` is linear in ``h_{t-1}`` with coefficients known from the
    inputs, a whole sequence is solved by a parallel scan in log space.
    ``g`` keeps the candidate positive, which the log-space scan needs.

    Args:
        units: Positive integer, size of the hidden state.
        kernel_initializer: Initializer of the input kernel; each gate block
            draws its own values.
        recurrent_initializer: Accepted for the common recurrent interface;
            this cell has no recurrent weight, so it is not used.
        bias_initializer: Initializer of the biases.
        kernel_regularizer, bias_regularizer, kernel_constraint,
        bias_constraint: Regularizers and constraints of the input
            kernel and the bias (see `GatedCell`); there is no
            recurrent weight to regularize.
        dropout: Fraction of the inputs to drop. There is no
            ``recurrent_dropout``: the state only enters element-wise.
        seed: Seed of the dropout masks.
        scan: How a layer runs a whole sequence: ``"auto"`` (the parallel
            log-space scan in training on a GPU or TPU when the time length
            is static and above one; step by step otherwise: at inference,
            on CPU, where stepping measured faster, and for unknown
            lengths), ``"parallel"`` (always the scan; raises when the
            length is unknown) or ``"sequential"``. All give the same
            results.
        **kwargs: Base layer arguments.

    Reference:
        Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We
        Needed?", 2024. https://arxiv.org/abs/2410.01201
    """

    blocks = 2

    # h_t = (1 - z) h_{t-1} + z h~_t: z multiplies the candidate, so for
    # chrono it plays the input gate.
    gate_layout = ("input", "candidate")

    def scan_sequence(self, *args, last_only=False):
        from kerasweights.recurrent import scan

        return scan.min_gru_sequence(*args, last_only=last_only)

    def linear_coefficients(self, parts):
        """``(a, b)`` with ``h_t = a_t h_{t-1} + b_t``."""
        k_z, k_h = parts
        return ops.sigmoid(-k_z), ops.sigmoid(k_z) * positive_tanh(k_h)

    def log_coefficients(self, parts):
        k_z, k_h = parts
        log_a = log_sigmoid(-k_z)
        log_b = log_sigmoid(k_z) + log_positive_tanh(k_h)
        return log_a, log_b


@keras.saving.register_keras_serializable(package="kerasweights")
class MinLSTMCell(_MinimalCell):
    """minLSTM cell: forget and input gates of the input only, normalised.

        f_t = sigmoid(W_f x_t + b_f),  i_t = sigmoid(W_i x_t + b_i)
        f'_t = f_t / (f_t + i_t),      i'_t = i_t / (f_t + i_t)
        h_t = f'_t * h_{t-1} + i'_t * g(W_h x_t + b_h)

    with ``g`` as in `MinGRUCell`. The normalisation makes the state's
    scale independent of time.

    Args:
        units: Positive integer, size of the hidden state.
        kernel_initializer: Initializer of the input kernel; each gate block
            draws its own values.
        recurrent_initializer: Accepted for the common recurrent interface;
            this cell has no recurrent weight, so it is not used.
        bias_initializer: Initializer of the biases.
        kernel_regularizer, bias_regularizer, kernel_constraint,
        bias_constraint: Regularizers and constraints of the input
            kernel and the bias (see `GatedCell`); there is no
            recurrent weight to regularize.
        dropout: Fraction of the inputs to drop. There is no
            ``recurrent_dropout``: the state only enters element-wise.
        seed: Seed of the dropout masks.
        scan: How a layer runs a whole sequence: ``"auto"`` (the parallel
            log-space scan in training on a GPU or TPU when the time length
            is static and above one; step by step otherwise: at inference,
            on CPU, where stepping measured faster, and for unknown
            lengths), ``"parallel"`` (always the scan; raises when the
            length is unknown) or ``"sequential"``. All give the same
            results.
        **kwargs: Base layer arguments.

    Reference:
        Feng et al., "Were RNNs All We Needed?", 2024.
        https://arxiv.org/abs/2410.01201
    """

    blocks = 3

    gate_layout = ("forget", "input", "candidate")

    def _log_gates(self, k_f, k_i):
        diff = ops.softplus(-k_f) - ops.softplus(-k_i)
        return -ops.softplus(diff), -ops.softplus(-diff)

    def scan_sequence(self, *args, last_only=False):
        from kerasweights.recurrent import scan

        return scan.min_lstm_sequence(*args, last_only=last_only)

    def linear_coefficients(self, parts):
        """``(a, b)`` with ``h_t = a_t h_{t-1} + b_t``."""
        k_f, k_i, k_h = parts
        # f / (f + i) as sigmoid(log f - log i): finite even where both
        # gates underflow to zero (pre-activations below about -87).
        diff = ops.softplus(-k_i) - ops.softplus(-k_f)
        return ops.sigmoid(diff), ops.sigmoid(-diff) * positive_tanh(k_h)

    def log_coefficients(self, parts):
        k_f, k_i, k_h = parts
        log_f, log_i = self._log_gates(k_f, k_i)
        return log_f, log_i + log_positive_tanh(k_h)


@keras.saving.register_keras_serializable(package="kerasweights")
class MinGRU(GatedRNN):
    """minGRU layer: input-only gates, parallel log-space scan or steps.

    Takes every argument of `MinGRUCell` and of `GatedRNN`.

    Reference:
        Feng et al., "Were RNNs All We Needed?", 2024.
        https://arxiv.org/abs/2410.01201
    """

    plugin_kind = "recurrent"
    plugin_name = "min_gru"
    cell_class = MinGRUCell


@keras.saving.register_keras_serializable(package="kerasweights")
class MinLSTM(GatedRNN):
    """minLSTM layer: input-only gates, parallel log-space scan or steps.

    Takes every argument of `MinLSTMCell` and of `GatedRNN`.

    Reference:
        Feng et al., "Were RNNs All We Needed?", 2024.
        https://arxiv.org/abs/2410.01201
    """

    plugin_kind = "recurrent"
    plugin_name = "min_lstm"
    cell_class = MinLSTMCell
