"""Shared machinery of the gated recurrent family.

Every cell in this package splits its step in two:

* ``project(inputs)``: the input-to-hidden products, which do not depend on
  the state. It accepts one step ``(batch, features)`` or a whole sequence
  ``(batch, time, features)``, so a layer computes it for every timestep in
  one matrix product before the recurrence starts.
* ``recur(projected, states, recurrent_mask)``: the part that needs the
  previous state; it is the only work left inside the sequential loop.

``call(inputs, states)`` chains the two for one step, which is what
``keras.layers.RNN``, ``Bidirectional`` and ``StackedRNNCells`` use. The
layers (`GatedRNN` subclasses) run their own loop over ``recur`` instead.

On TensorFlow a cell may also define
``tf_sequence(inputs, states, training, last_only)``: a whole unmasked,
time-major sequence at once (minGRU, minLSTM, SRU and IndRNN, through
`kerasweights.recurrent.scan`); it returns ``(outputs, new_states)``, with
``last_only`` the last output instead of all, or ``None`` to leave the
sequence to the general loop.
"""

import inspect
import zlib

import keras
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.registry import snake_case

__all__ = ["GatedCell", "GatedRNN"]

# Log of a probability that is treated as zero in the log-space scans.
_LOG_ZERO = -1e30


def check_units(units):
    """Validates ``units`` and returns it as an int."""
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise InvalidArgumentError(
            f"`units` must be a positive integer. Received: units={units!r}"
        )
    return units


def check_rate(name, value):
    """Validates a dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTypeError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
    if not 0.0 <= float(value) < 1.0:
        raise InvalidArgumentError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def _derived_seed(base, *labels):
    """A seed in [0, 2**31) that depends on ``base`` and every label."""
    text = "/".join(str(label) for label in (base,) + labels)
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


def draw(initializer, shape, dtype, *labels):
    """Draws ``initializer`` with a seed of its own for ``labels``.

    Keras 3 initializers are stateless: one object seeded with an integer
    (or unseeded, which draws an integer once at construction) returns the
    same values at every call of the same shape. Sharing one object between
    gate blocks, weights or directions would start them identical (case
    C12). We therefore rebuild a seeded initializer with a seed derived from
    its own seed and ``labels`` (weight name, gate block, direction). An
    initializer seeded with a ``SeedGenerator`` already advances its state at
    every call and is used as is; an initializer without a seed (constant,
    zeros) gives the same values whatever we do.
    """
    seed = getattr(initializer, "seed", None)
    if isinstance(seed, bool) or not isinstance(seed, int):
        return initializer(shape, dtype=dtype)
    config = initializer.get_config()
    config["seed"] = _derived_seed(seed, *labels)
    return initializer.__class__.from_config(config)(shape, dtype=dtype)


def draw_layout(initializer, shape, dtype, layout, *labels):
    """Draws a whole gate bias with an initializer that reads gate roles.

    ``initializer.for_gate_layout(layout)`` (as `Chrono` has) gives an
    initializer that knows which block of the bias is which gate; it is
    then seeded per weight, layer and direction like `draw` (case C12).
    """
    aware = initializer.for_gate_layout(layout)
    return draw(aware, shape, dtype, *labels)


class GatedCell(keras.layers.Layer):
    """Base class of the cells: weights per gate block, dropout, states.

    Subclasses set ``state_names`` (one entry per state tensor) and
    ``gate_layout`` (the role of each block of the bias, in order, such as
    ``("forget", "candidate")``; ``None`` for a cell without gates),
    implement ``build_weights(input_dim)``, ``project`` and ``recur``, and
    add their own constructor arguments to ``get_config``.

    Args:
        units: Positive integer, size of the hidden state.
        kernel_initializer: Initializer of the input kernels. Each gate
            block draws its own values (seed derived per block).
        recurrent_initializer: Initializer of the recurrent weights.
        bias_initializer: Initializer of the biases. An initializer with a
            ``for_gate_layout`` method (`kerasweights.initializers.Chrono`)
            receives the whole bias and the cell's ``gate_layout``.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the input kernel, the recurrent weights and the
            bias (``None``: none).
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints applied to the same weights after each update.
        dropout: Fraction of the input units to drop, in [0, 1).
        recurrent_dropout: Fraction of the recurrent units to drop, in
            [0, 1). Only cells with a recurrent connection accept it.
        seed: Seed of the dropout masks.
        **kwargs: Base layer arguments (``name``, ``dtype``, ...).
    """

    state_names = ("h",)
    has_recurrent_dropout = True
    has_recurrent_weights = True
    gate_layout = None

    def __init__(
        self,
        units,
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
        super().__init__(**kwargs)
        self.units = check_units(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(
            recurrent_regularizer
        )
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate(
            "recurrent_dropout", recurrent_dropout
        )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise InvalidTypeError(
                f"`seed` must be an integer or None. Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Set by a layer that runs backwards, so that the two directions of
        # a `Bidirectional` wrapper draw different weights (case C12).
        self.weight_salt = ""
        self.state_size = [self.units] * len(self.state_names)
        self.output_size = self.units

    # Weights ---------------------------------------------------------

    def block_weight(
        self, name, initializer, rows, blocks, ones_block=None, role=None
    ):
        """A ``(rows, blocks * units)`` weight, each block drawn apart.

        With ``rows=None`` the weight is a vector of ``blocks * units``; each
        block is drawn as a ``(1, units)`` matrix and flattened, so matrix
        initializers such as ``orthogonal`` also work for vector weights.
        Block ``ones_block`` (if given) starts at one (unit forget bias).
        ``role`` (``"kernel"``, ``"recurrent"`` or ``"bias"``) picks the
        regularizer and constraint. The bias (``role="bias"``) of a cell
        with a ``gate_layout`` is handed whole to an initializer that reads
        gate layouts (`Chrono`); ``ones_block`` is then not applied.
        """
        shape = (
            (blocks * self.units,)
            if rows is None
            else (rows, blocks * self.units)
        )
        salt = self.weight_salt
        if role == "bias" and hasattr(initializer, "for_gate_layout"):
            layout = self.gate_layout
            if layout is None or len(layout) != blocks:
                raise InvalidArgumentError(
                    f"{type(self).__name__} has no gates, so "
                    f"{type(initializer).__name__} has nothing to set; pass "
                    "another bias_initializer. Received: "
                    f"bias_initializer={initializer!r}"
                )

            def init(shape, dtype=None):
                return draw_layout(
                    initializer, shape, dtype, layout, name, salt
                )

        else:

            def init(shape, dtype=None):
                part = (1 if rows is None else rows, self.units)
                pieces = []
                for i in range(blocks):
                    if i == ones_block:
                        piece = ops.ones(part, dtype=dtype)
                    else:
                        piece = draw(initializer, part, dtype, name, i, salt)
                    pieces.append(piece)
                value = ops.concatenate(pieces, axis=-1)
                return ops.reshape(value, shape)

        regularizer = constraint = None
        if role is not None:
            regularizer = getattr(self, f"{role}_regularizer")
            constraint = getattr(self, f"{role}_constraint")
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=init,
            regularizer=regularizer,
            constraint=constraint,
        )

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise InvalidArgumentError(
                "The last dimension of the inputs of "
                f"{type(self).__name__} must be known. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.input_dim = int(input_dim)
        self.build_weights(self.input_dim)
        self.built = True

    def build_weights(self, input_dim):
        raise NotImplementedError

    # Computation -----------------------------------------------------

    def project(self, inputs):
        """Input products of one step or a whole sequence, as a list.

        Each entry has the leading axes of ``inputs``: ``(batch,)`` for a
        step, ``(batch, time)`` for a sequence. The list is split once,
        outside the loop, so the loop slices nothing.
        """
        raise NotImplementedError

    def loop_constants(self, batch_size=None):
        """Tensors ``recur`` needs at every step, computed once per call.

        Vector weights that multiply a state are broadcast here to
        ``(batch_size, units)``: inside the loop the product then needs no
        broadcasting, and its gradient no reduction over the batch at every
        step (one reduction after the loop instead).
        """
        return ()

    def recur(self, parts, states, recurrent_mask=None, constants=()):
        """One recurrent step from projected inputs; ``(output, states)``."""
        raise NotImplementedError

    def dropout_masks(self, step_input, state, training):
        """``(input_mask, recurrent_mask)``, each ``None`` when unused."""
        input_mask = None
        recurrent_mask = None
        if training and self.dropout > 0:
            input_mask = keras.random.dropout(
                ops.ones_like(step_input),
                rate=self.dropout,
                seed=self.seed_generator,
            )
        if training and self.recurrent_dropout > 0:
            recurrent_mask = keras.random.dropout(
                ops.ones_like(state),
                rate=self.recurrent_dropout,
                seed=self.seed_generator,
            )
        return input_mask, recurrent_mask

    def call(self, inputs, states, training=False):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        # Inside a plain `keras.layers.RNN` the masks are drawn at every
        # step: Keras keeps its per-sequence mask cache private. Our layers
        # draw one mask per sequence instead.
        input_mask, recurrent_mask = self.dropout_masks(
            inputs, states[0], training
        )
        if input_mask is not None:
            inputs = inputs * input_mask
        output, new_states = self.recur(
            self.project(inputs),
            states,
            recurrent_mask,
            self.loop_constants(ops.shape(inputs)[0]),
        )
        return output, list(new_states)

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, size), dtype=self.compute_dtype)
            for size in self.state_size
        ]

    # Config ----------------------------------------------------------

    def get_config(self):
        config = {
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint
            ),
            "bias_constraint": keras.constraints.serialize(
                self.bias_constraint
            ),
            "dropout": self.dropout,
            "seed": self.seed,
        }
        if self.has_recurrent_weights:
            config["recurrent_regularizer"] = keras.regularizers.serialize(
                self.recurrent_regularizer
            )
            config["recurrent_constraint"] = keras.constraints.serialize(
                self.recurrent_constraint
            )
        if self.has_recurrent_dropout:
            config["recurrent_dropout"] = self.recurrent_dropout
        return {**super().get_config(), **config}


# Keyword arguments a layer passes on to `keras.layers.Layer`.
_LAYER_KWARGS = frozenset(
    {
        "name",
        "dtype",
        "trainable",
        "autocast",
        "activity_regularizer",
        "input_shape",
        "input_dim",
        "batch_size",
        "batch_input_shape",
    }
)


class GatedRNN(keras.layers.RNN):
    """Base class of the layers: a fast loop around one `GatedCell`.

    A subclass sets ``cell_class``. Every constructor argument of the cell
    is accepted as a keyword argument of the layer, as `keras.layers.GRU`
    does for `GRUCell`.

    Compared with wrapping the cell in `keras.layers.RNN`, the layer

    * computes the input products of all timesteps in one matrix product
      and keeps only the recurrent part in the loop;
    * draws one dropout mask per sequence (variational dropout);
    * returns the last unmasked output when ``return_sequences=False``,
      whatever ``zero_output_for_mask`` says (case C13: the flag only
      affects returned sequences);
    * refuses a stateful call with the wrong batch size before touching
      its state (case C02);
    * gives each direction of a `Bidirectional` wrapper its own initial
      weights (case C12).

    Args:
        units: Positive integer, size of the hidden state.
        return_sequences: Return the whole output sequence rather than the
            last output.
        return_state: Also return the final states.
        go_backwards: Process the sequence backwards and return the
            reversed sequence.
        stateful: Keep the last states of each batch as the initial states
            of the next; the batch size must then be static.
        unroll: Unroll the loop in Python (short, fixed-length sequences).
        zero_output_for_mask: Return zeros at masked timesteps of the
            returned sequence instead of repeating the last output.
        **kwargs: The cell's arguments and base layer arguments.
    """

    cell_class = None
    gate_layout = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The cell's bias layout, readable from the layer class (the tuning
        # search space passes it to gate-aware bias initializers).
        if cls.cell_class is not None:
            cls.gate_layout = cls.cell_class.gate_layout

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        cell_args = self.cell_arguments()
        unknown = sorted(set(kwargs) - set(cell_args) - _LAYER_KWARGS)
        if unknown:
            raise InvalidTypeError(
                f"{type(self).__name__} got unknown keyword arguments "
                f"{unknown}. It accepts units, {', '.join(cell_args)}, "
                "return_sequences, return_state, go_backwards, stateful, "
                "unroll, zero_output_for_mask and the base layer arguments "
                f"{sorted(_LAYER_KWARGS)}."
            )
        cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in cell_args}
        cell = self.cell_class(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="cell",
            **cell_kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        # Seeds derived per layer and direction (case C12).
        direction = "backward" if go_backwards else "forward"
        cell.weight_salt = f"{self.name}/{direction}"

    @classmethod
    def cell_arguments(cls):
        """Names of the cell's constructor arguments (``units`` excluded)."""
        params = inspect.signature(cls.cell_class.__init__).parameters
        return [p for p in params if p not in ("self", "units", "kwargs")]

    @classmethod
    def tunable_arguments(cls, hp):
        """Extra constructor arguments drawn from a Keras Tuner space.

        Args:
            hp: A ``keras_tuner.HyperParameters`` object.

        Returns:
            A dict of keyword arguments; hyperparameter names start with the
            plugin's short name.
        """
        prefix = vars(cls).get("plugin_name") or snake_case(cls.__name__)
        return {
            "dropout": hp.Float(f"{prefix}_dropout", 0.0, 0.3, step=0.1),
        }

    def __getattr__(self, name):
        # Expose the cell's arguments (`layer.units`, `layer.dropout`...).
        if name != "cell" and not name.startswith("_"):
            cell = self.__dict__.get("cell")
            if cell is not None and (
                name == "units" or name in type(self).cell_arguments()
            ):
                return getattr(cell, name)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if self.stateful and self.states is not None:
            expected = keras.ops.shape(self.states[0])[0]
            received = sequences.shape[0]
            if received is not None and int(received) != int(expected):
                raise InvalidArgumentError(
                    f"A stateful {type(self).__name__} layer keeps states "
                    "for a fixed batch size; the state was left unchanged. "
                    f"Expected batch size: {int(expected)}. Received batch "
                    f"size: {int(received)}"
                )
        return super().call(
            sequences, initial_state=initial_state, mask=mask, training=training
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        states = list(initial_state)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            if mask is not None:
                mask = ops.flip(mask, axis=1)

        input_mask, recurrent_mask = cell.dropout_masks(
            sequences[:, 0, :], states[0], training
        )
        if input_mask is not None:
            sequences = sequences * ops.expand_dims(input_mask, 1)
        tf_fast = (
            keras.backend.backend() == "tensorflow"
            and not self.unroll
            and recurrent_mask is None
        )
        if hasattr(cell, "linear_coefficients"):
            # h_t = a_t h_{t-1} + b_t with a, b known from the inputs.
            if cell.use_parallel_scan(
                sequences.shape[1], self.unroll, training
            ):
                parts = list(cell.project(sequences))
                scanned = cell.parallel_scan(parts, states, mask)
            elif tf_fast:
                scanned = self._tf_linear(
                    cell, sequences, states, mask, training
                )
            else:
                parts = list(cell.project(sequences))
                scanned = self._linear(parts, states, mask)
            return self._finish_parallel(scanned, mask)
        if tf_fast and mask is None and hasattr(cell, "tf_sequence"):
            # Time-major throughout (kerasweights/recurrent/scan.py); a
            # cell returns None for what it leaves to the general loop.
            time_major = ops.transpose(sequences, (1, 0, 2))
            last_only = not self.return_sequences
            result = cell.tf_sequence(
                time_major, states, training, last_only=last_only
            )
            if result is not None:
                outputs, new_states = result
                if last_only:
                    last = outputs
                    outputs = ops.expand_dims(last, 1)
                else:
                    last = outputs[-1]
                    outputs = ops.transpose(outputs, (1, 0, 2))
                return last, outputs, list(new_states)
        fast = getattr(cell, "fast_sequence", None)
        if (
            fast is not None
            and mask is None
            and recurrent_mask is None
            and not self.unroll
        ):
            parts = list(cell.project(sequences))
            outputs, new_states = fast(parts, states, self._loop)
            return outputs[:, -1], outputs, new_states
        # Time-major before the projection: transposing the inputs is
        # cheaper than transposing every projected part (and its gradient).
        parts = list(cell.project(ops.transpose(sequences, (1, 0, 2))))
        return self._sequential(parts, states, mask, recurrent_mask)

    def _tf_linear(self, cell, sequences, states, mask, training):
        """TensorFlow: the recurrence on time-major sequences (scan.py).

        Unmasked sequences go through the cell's ``tf_sequence`` (in
        training, gates and recurrence with one written-out gradient);
        masked ones through `scan.linear_recurrence` (in training; the
        forward-only `scan.steps` otherwise) with ``a = 1`` and ``b = 0``
        at masked steps.
        """
        from kerasweights.recurrent import scan

        time_major = ops.transpose(sequences, (1, 0, 2))
        if mask is None and not self.return_sequences:
            # Only the last state leaves the layer (and its gradient).
            last = cell.tf_sequence(
                time_major, states, training, last_only=True
            )[0]
            return ops.expand_dims(last, 1), [last]
        if mask is None:
            h = cell.tf_sequence(time_major, states, training)[0]
        else:
            a, b = cell.linear_coefficients(cell.project(time_major))
            valid = ops.expand_dims(ops.transpose(mask, (1, 0)), -1)
            a = ops.where(valid, a, ops.ones_like(a))
            b = ops.where(valid, b, ops.zeros_like(b))
            if training:
                h = scan.linear_recurrence(a, b, states[0])
            else:
                h = scan.steps(a, b, states[0])
        return ops.transpose(h, (1, 0, 2)), [h[-1]]

    def _linear(self, parts, states, mask):
        """Steps ``h_t = a_t h_{t-1} + b_t``: two operations per step."""
        a, b = self.cell.linear_coefficients(parts)
        if mask is not None:
            valid = ops.expand_dims(mask, -1)
            a = ops.where(valid, a, ops.ones_like(a))
            b = ops.where(valid, b, ops.zeros_like(b))

        def step(carry, inputs):
            h = inputs[0] * carry[0] + inputs[1]
            return [h], [h]

        xs = (ops.transpose(a, (1, 0, 2)), ops.transpose(b, (1, 0, 2)))
        carry, outputs = self._loop(step, [states[0]], xs)
        return outputs, carry

    def _finish_parallel(self, result, mask):
        outputs, new_states = result
        last_output = new_states[0]
        if mask is not None:
            valid = ops.expand_dims(mask, -1)
            if self.zero_output_for_mask:
                outputs = ops.where(valid, outputs, ops.zeros_like(outputs))
            else:
                # Before the first valid step the carried output is zero.
                seen = ops.cumsum(ops.cast(valid, "int32"), axis=1) > 0
                outputs = ops.where(seen, outputs, ops.zeros_like(outputs))
                last_output = outputs[:, -1]
        return last_output, outputs, new_states

    def _loop(self, step, init, xs):
        """Runs ``step`` over time-major ``xs``; ``(carry, outputs)``.

        ``step(carry, inputs)`` returns ``(new_carry, emitted)``; the last
        entry of ``emitted`` is stacked into ``outputs``, batch-major.
        """
        if self.unroll:
            flat = [xs] if not isinstance(xs, (list, tuple)) else list(xs)
            carry = list(init)
            emitted = []
            for t in range(flat[0].shape[0]):
                step_in = [x[t] for x in flat]
                if not isinstance(xs, (list, tuple)):
                    step_in = step_in[0]
                carry, ys = step(carry, step_in)
                emitted.append(ys[-1])
            return list(carry), ops.stack(emitted, axis=1)
        if keras.backend.backend() == "tensorflow":
            return _tf_loop(step, list(init), xs)
        carry, ys = ops.scan(step, list(init), xs)
        return list(carry), ops.transpose(ys[-1], (1, 0, 2))

    def _sequential(self, parts, states, mask, recurrent_mask):
        """The general loop over time-major projected ``parts``."""
        cell = self.cell
        batch = ops.shape(states[0])[0]
        constants = cell.loop_constants(batch)
        zero_output = ops.zeros((batch, cell.output_size), dtype=parts[0].dtype)
        count = len(parts)

        def step(carry, inputs):
            old_states, old_output = carry[:-1], carry[-1]
            parts_t = list(inputs[:count])
            output, new_states = cell.recur(
                parts_t, list(old_states), recurrent_mask, constants
            )
            new_states = list(new_states)
            emitted = output
            if mask is not None:
                valid = ops.expand_dims(inputs[count], -1)
                new_states = [
                    ops.where(valid, new, old)
                    for new, old in zip(new_states, old_states, strict=True)
                ]
                output = ops.where(valid, output, old_output)
                if self.zero_output_for_mask:
                    emitted = ops.where(valid, emitted, zero_output)
                else:
                    emitted = output
            return new_states + [output], new_states + [emitted]

        xs = list(parts)
        if mask is not None:
            xs.append(ops.transpose(mask, (1, 0)))
        init = list(states) + [zero_output]
        carry, outputs = self._loop(step, init, tuple(xs))
        return carry[-1], outputs, list(carry[:-1])

    def get_config(self):
        config = {"units": self.cell.units}
        cell_config = self.cell.get_config()
        for name in type(self).cell_arguments():
            if name in cell_config:
                config[name] = cell_config[name]
        base = super().get_config()
        base.pop("cell", None)
        return {**base, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.cell_arguments():
            value = config.get(name)
            if isinstance(value, dict) and "class_name" in value:
                if name.endswith("initializer"):
                    config[name] = keras.initializers.deserialize(value)
                elif name.endswith("activation"):
                    config[name] = keras.activations.deserialize(value)
        return cls(**config)


# Steps run per iteration of the TensorFlow while loop. On CPU each
# iteration costs far more than the small element-wise operations of a step
# (measured in docs/benchmarks-recurrent.md), so a few steps are unrolled
# inside the loop body.
STEPS_PER_ITERATION = 8


def _tf_loop(step, init, xs, steps_per_iteration=None):
    """A TensorFlow while loop that stacks only the emitted outputs.

    ``keras.ops.scan`` stacks the whole carry at every step and sets no
    ``maximum_iterations``, which XLA needs to differentiate a loop; this
    loop does both, so ``jit_compile=True`` works. When the time length is
    static, each iteration runs ``steps_per_iteration`` steps (unrolled in
    the body) and the remainder is unrolled after the loop.
    """
    import tensorflow as tf

    xs_flat = tf.nest.flatten(xs)
    static_length = xs_flat[0].shape[0]
    k = steps_per_iteration or STEPS_PER_ITERATION
    if static_length is None or static_length < 2 * k:
        k = 1
    length = (
        tf.shape(xs_flat[0])[0] if static_length is None else (static_length)
    )
    chunks = length // k
    main = chunks * k
    if k > 1:
        chunked = [
            # tf.shape, not the static shape: the batch may be unknown.
            tf.reshape(x[:main], tf.concat([[chunks, k], tf.shape(x)[1:]], 0))
            for x in xs_flat
        ]
    else:
        chunked = xs_flat
    inputs = [
        tf.TensorArray(x.dtype, size=chunks, element_shape=x.shape[1:]).unstack(
            x
        )
        for x in chunked
    ]
    out_shape = init[-1].shape if k == 1 else [k] + init[-1].shape.as_list()
    emitted = tf.TensorArray(
        init[-1].dtype, size=chunks, element_shape=out_shape
    )

    def run_steps(carry, step_inputs):
        ys_all = []
        for flat_in in step_inputs:
            step_in = tf.nest.pack_sequence_as(xs, flat_in)
            carry, ys = step(list(carry), step_in)
            ys_all.append(ys[-1])
        return carry, ys_all

    def body(t, carry, emitted):
        read = [x.read(t) for x in inputs]
        if k == 1:
            carry, ys = run_steps(carry, [read])
            return t + 1, carry, emitted.write(t, ys[0])
        columns = [tf.unstack(r, num=k) for r in read]
        carry, ys = run_steps(carry, list(zip(*columns, strict=True)))
        return t + 1, carry, emitted.write(t, tf.stack(ys))

    _, carry, emitted = tf.while_loop(
        lambda t, *_: t < chunks,
        body,
        (tf.constant(0), list(init), emitted),
        maximum_iterations=chunks,
    )
    stacked = emitted.stack()
    if k > 1:
        stacked = tf.reshape(
            stacked, tf.concat([[main], tf.shape(init[-1])], 0)
        )
        tail = [[x[t] for x in xs_flat] for t in range(main, static_length)]
        if tail:
            carry, ys = run_steps(carry, tail)
            stacked = tf.concat([stacked, tf.stack(ys)], axis=0)
    outputs = tf.transpose(stacked, (1, 0, 2))
    if static_length is not None:
        outputs.set_shape([None, static_length] + outputs.shape[2:].as_list())
    return list(carry), outputs


SCAN_MODES = ("auto", "parallel", "sequential")


def check_scan(scan):
    """Validates a ``scan`` argument of minGRU / minLSTM."""
    if scan not in SCAN_MODES:
        raise InvalidArgumentError(
            f"`scan` must be one of {list(SCAN_MODES)}. Received: scan={scan!r}"
        )
    return scan


def _has_accelerator():
    import tensorflow as tf

    return bool(
        tf.config.list_logical_devices("GPU")
        or tf.config.list_logical_devices("TPU")
    )


def wants_parallel(scan, time_steps, unroll, training=True):
    """Whether a layer should use its parallel scan.

    ``"auto"`` uses it in training, when the time length is static and
    above one, the loop is not unrolled and a GPU or TPU is visible; it
    steps otherwise. On CPU the scan's extra memory traffic made it slower
    than stepping in our measurements (docs/benchmarks-recurrent.md).
    ``"parallel"`` always uses it and raises when the time length is
    unknown.
    """
    if scan == "sequential":
        return False
    if scan == "parallel":
        if time_steps is None:
            raise InvalidArgumentError(
                "`scan='parallel'` needs a static time length; use "
                "scan='auto' to step through sequences of unknown length. "
                f"Received: time_steps={time_steps}"
            )
        return True
    if keras.backend.backend() == "tensorflow" and not _has_accelerator():
        return False
    return (
        bool(training)
        and time_steps is not None
        and time_steps > 1
        and (not unroll)
    )


def tile_rows(vector, batch_size):
    """``vector`` repeated as ``batch_size`` rows."""
    return ops.broadcast_to(
        ops.expand_dims(vector, 0), (batch_size, ops.shape(vector)[0])
    )


def layer_norm(x, gain, bias=None, epsilon=1e-3):
    """Layer normalization over the last axis (Ba et al., 2016)."""
    centred = x - ops.mean(x, axis=-1, keepdims=True)
    variance = ops.mean(ops.square(centred), axis=-1, keepdims=True)
    out = centred * (ops.rsqrt(variance + epsilon) * gain)
    return out if bias is None else out + bias


def log_sigmoid(x):
    """``log(sigmoid(x))`` without overflow."""
    return -ops.softplus(-x)


def log_positive_tanh(x):
    """Log of ``g(x) = x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` below.

    ``g`` is the positive, continuous activation minGRU and minLSTM use so
    that the candidate state has a logarithm (Feng et al., 2024).
    """
    return ops.where(
        x >= 0, ops.log(ops.relu(x) + 0.5), log_sigmoid(ops.minimum(x, 0.0))
    )


def positive_tanh(x):
    """``g(x) = x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` below.

    Written as ``max(x + 0.5, sigmoid(x))``, which is the same function
    (``sigmoid(x) < x + 0.5`` for ``x > 0`` and ``>`` for ``x < 0``) in
    three element-wise operations.
    """
    return ops.maximum(x + 0.5, ops.sigmoid(x))


def log_space_scan(log_a, log_b, h0, mask=None):
    """Solves ``h_t = a_t h_{t-1} + b_t`` for all t at once, in log space.

    ``a_t`` and ``b_t`` are given by their logarithms (``b_t > 0``), shape
    ``(batch, time, units)``; ``h0`` may have any sign. Write the map from
    ``h_{t-k}`` to ``h_t`` as ``h -> exp(A) h + exp(B)``; two such maps
    compose into ``A = A_1 + A_2``, ``B = logaddexp(B_1 + A_2, B_2)``. A
    doubling prefix scan (Hillis and Steele) composes, after the step with
    shift ``s``, the last ``2 s`` maps at each position, so
    ``ceil(log2(T))`` element-wise steps give every prefix:

        h_t = exp(A_t) h0 + exp(B_t).

    ``A`` and ``B`` stay the logarithms of real gate products and partial
    states, so they keep float32 precision over thousands of steps (a
    cumulative sum of ``log a`` would not). The time length must be
    static; only shapes known at trace time are used, so XLA compiles it.
    A masked step keeps the state: ``a = 1`` and ``b = 0`` there.

    Returns:
        The states ``h_1 ... h_T``, shape ``(batch, time, units)``.
    """
    if mask is not None:
        valid = ops.expand_dims(mask, -1)
        log_a = ops.where(valid, log_a, ops.zeros_like(log_a))
        log_b = ops.where(valid, log_b, ops.full_like(log_b, _LOG_ZERO))
    length = log_a.shape[1]
    shift = 1
    while shift < length:
        keep = length - shift
        earlier_a = ops.concatenate(
            [ops.zeros_like(log_a[:, :shift]), log_a[:, :keep]], axis=1
        )
        earlier_b = ops.concatenate(
            [ops.full_like(log_b[:, :shift], _LOG_ZERO), log_b[:, :keep]],
            axis=1,
        )
        log_b = ops.logaddexp(earlier_b + log_a, log_b)
        log_a = earlier_a + log_a
        shift *= 2
    return ops.exp(log_a) * ops.expand_dims(h0, 1) + ops.exp(log_b)
