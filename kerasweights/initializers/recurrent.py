"""Initializers for recurrent layers: chrono gate biases and IRNN."""

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.initializers import base

__all__ = ["Chrono", "IdentityRNN", "GATE_LAYOUTS"]

# Gate order of each cell's bias, as roles. "forget" is the gate that
# multiplies the old state, "input" the gate that multiplies the new
# candidate; any other name starts at zero.
GATE_LAYOUTS = {
    # keras.layers.LSTM: i, f, c, o.
    "lstm": ("input", "forget", "cell", "output"),
    # keras.layers.GRU: z, r, h with h_t = z * h_{t-1} + (1 - z) * h~_t,
    # so z keeps the old state: it takes the forget role, and the input
    # role (1 - z) is tied to it.
    "gru": ("forget", "reset", "candidate"),
    # kerasweights.recurrent.JANET: f, c with h_t = f * h_{t-1} + ...
    "janet": ("forget", "candidate"),
    # kerasweights.recurrent.MGU: f, h with h_t = (1 - f) h_{t-1} + f h~_t,
    # so its single gate multiplies the candidate: the input role.
    "mgu": ("input", "candidate"),
}


@keras.saving.register_keras_serializable(package="kerasweights")
class Chrono(base.SeededInitializer):
    """Chrono initialization of gate biases (Tallec & Ollivier 2018).

    A gated cell whose forget gate sits at ``sigmoid(b_f)`` forgets with a
    characteristic time of about ``1 / (1 - sigmoid(b_f)) = 1 + exp(b_f)``
    steps. Chrono spreads these times over ``[2, max_timescale]``:

        u ~ U(1, max_timescale - 1),   b_forget = log(u),
        b_input = -b_forget,           every other gate's bias = 0.

    ``gate_layout`` says which slice of the bias is which gate: the bias's
    last axis is split into ``len(layout)`` equal blocks in that order.

    * ``"lstm"``: Keras LSTM, order (i, f, c, o): forget = f, input = i.
      Build the layer with ``unit_forget_bias=False``: otherwise Keras calls
      the bias initializer on the i block and on the (c, o) blocks apart
      and puts ones in f itself, and the call fails with a shape error.
    * ``"gru"``: Keras GRU, order (z, r, h). Keras updates
      ``h_t = z * h_{t-1} + (1 - z) * h~_t``, so ``z`` is the gate that
      keeps the old state: it takes the forget role, ``b_z = log(u)``. Its
      input gate is ``1 - z`` and has no bias of its own, so there is no
      input slice; ``r`` and ``h`` start at zero. With ``reset_after=True``
      (Keras' default) the bias has shape ``(2, 3 units)``: the first row
      (input bias) gets the chrono values, the second (recurrent bias)
      zeros, since the two rows add up in the gate.
    * ``"janet"`` (forget, candidate) and ``"mgu"`` (input, candidate):
      kerasweights' own cells; MGU's single gate multiplies the candidate
      (``h_t = (1 - f) h_{t-1} + f h~_t``), so it takes the input role.
    * A custom tuple of gate names, e.g. ``("forget", "candidate")``; the
      names ``"forget"`` and ``"input"`` have the roles above, any other
      name starts at zero. A GRU written as ``h_t = (1 - z) h_{t-1} + z
      h~_t`` (as in Chung et al. 2014) takes ``("input", "reset",
      "candidate")``.

    When only the input role is present it gets ``-log(u)``.

    kerasweights' gated cells declare their own layout (``gate_layout`` on
    the cell and layer classes, e.g. ``PeepholeLSTMCell.gate_layout ==
    ("input", "forget", "candidate", "output")``) and hand Chrono their
    whole bias through `for_gate_layout`, so ``Chrono(max_timescale)``
    needs no layout there. A cell without gates (IndRNN) refuses Chrono
    with a one-line error.

    Args:
        max_timescale: The longest dependency, in steps, the gates should
            hold at the start (the paper's ``T_max``); a number > 2.
        gate_layout: ``"lstm"``, ``"gru"``, ``"janet"``, ``"mgu"``, a
            tuple of gate names, or ``None`` (default): the layout of the
            kerasweights cell that uses it, and ``"lstm"`` elsewhere.
        seed: ``None`` or a non-negative int; see docs/initializers.md.

    Raises:
        InvalidArgumentError: ``max_timescale <= 2``, an unknown layout, a
            layout with neither ``"forget"`` nor ``"input"``, or a bias
            whose last axis does not split into the layout's blocks.

    Example:

    >>> import keras
    >>> from kerasweights.initializers import Chrono
    >>> lstm = keras.layers.LSTM(
    ...     16, unit_forget_bias=False,
    ...     bias_initializer=Chrono(max_timescale=784, seed=0))

    Reference:
        Tallec & Ollivier, "Can recurrent neural networks warp time?",
        ICLR 2018.
    """

    plugin_kind = "initializer"
    plugin_targets = ("bias",)

    def __init__(self, max_timescale=100.0, gate_layout=None, seed=None):
        max_timescale = base.positive_float("max_timescale", max_timescale)
        if max_timescale <= 2.0:
            raise InvalidArgumentError(
                "`max_timescale` must be a number greater than 2. "
                f"Received: max_timescale={max_timescale!r}"
            )
        layout = _layout("lstm" if gate_layout is None else gate_layout)
        super().__init__(seed=seed)
        self.max_timescale = max_timescale
        self.gate_layout = (
            gate_layout
            if gate_layout is None or isinstance(gate_layout, str)
            else (tuple(gate_layout))
        )
        self.gates = layout

    def for_gate_layout(self, layout):
        """This initializer for a cell whose bias blocks are ``layout``.

        Called by kerasweights' gated cells with their declared layout.

        Returns:
            A `Chrono` with the same ``max_timescale`` and ``seed`` and
            ``gate_layout=layout``.

        Raises:
            InvalidArgumentError: This object was given another explicit
                ``gate_layout``.
        """
        gates = _layout(layout)
        if self.gate_layout is not None and self.gates != gates:
            raise InvalidArgumentError(
                f"Chrono was given gate_layout={self.gate_layout!r}, but the "
                f"cell's bias blocks are {list(gates)}; pass "
                "gate_layout=None to use the cell's own layout."
            )
        return Chrono(self.max_timescale, tuple(gates), seed=self.seed)

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "Chrono")
        dtype = base.float_dtype(dtype, "Chrono")
        blocks = len(self.gates)
        if len(shape) not in (1, 2) or shape[-1] % blocks:
            raise InvalidArgumentError(
                f"Chrono with gate_layout={self.gate_layout!r} needs a bias "
                f"of shape ({blocks} * units,) or (rows, {blocks} * units). "
                "For keras.layers.LSTM pass unit_forget_bias=False. "
                f"Received: shape={shape}"
            )
        units = shape[-1] // blocks
        u = keras.random.uniform(
            (units,),
            1.0,
            self.max_timescale - 1.0,
            dtype="float32",
            seed=self.next_seed(),
        )
        forget = keras.ops.log(u)
        parts = []
        for gate in self.gates:
            if gate == "forget":
                parts.append(forget)
            elif gate == "input":
                parts.append(-forget)
            else:
                parts.append(keras.ops.zeros((units,), "float32"))
        row = keras.ops.cast(keras.ops.concatenate(parts), dtype)
        if len(shape) == 1:
            return row
        rest = keras.ops.zeros((shape[0] - 1, shape[1]), dtype)
        return keras.ops.concatenate([row[None, :], rest], axis=0)

    def get_config(self):
        layout = self.gate_layout
        if layout is not None and not isinstance(layout, str):
            layout = list(layout)
        return {
            "max_timescale": self.max_timescale,
            "gate_layout": layout,
            "seed": self.seed,
        }

    @classmethod
    def tunable_arguments(cls, hp):
        """Draws ``max_timescale`` as ``chrono_max_timescale``."""
        return {
            "max_timescale": hp.Choice(
                base.hp_name(cls, "max_timescale"), [10.0, 100.0, 1000.0]
            )
        }


def _layout(gate_layout):
    if isinstance(gate_layout, str):
        key = gate_layout.lower()
        if key not in GATE_LAYOUTS:
            raise InvalidArgumentError(
                f"`gate_layout` must be one of {sorted(GATE_LAYOUTS)} or a "
                f"tuple of gate names. Received: gate_layout={gate_layout!r}"
            )
        return GATE_LAYOUTS[key]
    if not isinstance(gate_layout, (tuple, list)) or not all(
        isinstance(g, str) for g in gate_layout
    ):
        raise InvalidTypeError(
            "`gate_layout` must be a layout name or a tuple of gate names. "
            f"Received: gate_layout={gate_layout!r}"
        )
    gates = tuple(g.lower() for g in gate_layout)
    if gates.count("forget") > 1 or gates.count("input") > 1:
        raise InvalidArgumentError(
            "`gate_layout` may name 'forget' and 'input' at most once each. "
            f"Received: gate_layout={gate_layout!r}"
        )
    if "forget" not in gates and "input" not in gates:
        raise InvalidArgumentError(
            "`gate_layout` must name a 'forget' or an 'input' gate, or chrono "
            f"has nothing to set. Received: gate_layout={gate_layout!r}"
        )
    return gates


@keras.saving.register_keras_serializable(package="kerasweights")
class IdentityRNN(keras.initializers.Initializer):
    """Scaled identity for recurrent kernels (IRNN, Le et al. 2015).

    For a recurrent kernel of shape ``(units, k * units)`` every one of the
    ``k`` square blocks is ``gain * I``: ``k = 1`` for SimpleRNN, 3 for a
    GRU, 4 for an LSTM. With a ReLU SimpleRNN this is the IRNN of Le et
    al.; a gain below 1 (e.g. 0.9) damps the state, as in their np-RNN
    variants.

    Deterministic and seed-free: every call gives the same matrix, so two
    layers that share the object start equal by design (only the random
    initializers of kerasweights give each call a distinct draw).

    Args:
        gain: Positive scale of the identity blocks.

    Raises:
        InvalidArgumentError: A shape that is not ``(units, k * units)``.

    Example:

    >>> import keras
    >>> rnn = keras.layers.SimpleRNN(
    ...     32, activation="relu",
    ...     recurrent_initializer="kerasweights>IdentityRNN")

    Reference:
        Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks
        of Rectified Linear Units", 2015. https://arxiv.org/abs/1504.00941
    """

    plugin_kind = "initializer"
    plugin_targets = ("recurrent_kernel",)

    def __init__(self, gain=1.0):
        self.gain = base.positive_float("gain", gain)

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "IdentityRNN")
        dtype = base.float_dtype(dtype, "IdentityRNN")
        if len(shape) != 2 or shape[1] % shape[0]:
            raise InvalidArgumentError(
                "IdentityRNN needs a recurrent kernel of shape "
                f"(units, k * units). Received: shape={shape}"
            )
        blocks = shape[1] // shape[0]
        eye = keras.ops.eye(shape[0], dtype=dtype) * self.gain
        return keras.ops.concatenate([eye] * blocks, axis=1)

    def get_config(self):
        return {"gain": self.gain}

    @classmethod
    def tunable_arguments(cls, hp):
        """Draws ``gain`` as ``identity_rnn_gain`` in [0.5, 1.0]."""
        return {"gain": hp.Float(base.hp_name(cls, "gain"), 0.5, 1.0, step=0.1)}
