"""Echo state network: a fixed random reservoir cell and its RNN layer.

An echo state network drives a large, sparse, randomly connected recurrent
layer (the reservoir) with the input sequence and trains only a readout on
the reservoir states. The reservoir is never trained: its recurrent matrix
is drawn once, thinned to the requested connectivity and rescaled to the
requested spectral radius, which is what gives it a fading memory of its
input (the echo state property).

The state update is the leaky-integrator form of Jaeger et al. (2007),
which reduces to Jaeger's (2001) original network when ``leaky=1``::

    candidate_t = activation(x_t @ W_in + h_{t-1} @ W + b)
    h_t = (1 - leaky) * h_{t-1} + leaky * candidate_t

``W_in`` is ``kernel`` (the input weights times ``input_scaling``), ``W`` is
``recurrent_kernel`` (the reservoir) and ``b`` is ``bias``. All three are
non-trainable weights; put a trainable readout (``keras.layers.Dense``) on
top of `ESN`.

Not covered: output feedback into the reservoir (Jaeger 2001, section 4)
and closed-form ridge-regression readouts; train the readout with
``model.fit`` or fit one yourself on ``ESN(..., return_sequences=True)``
states.
"""

import contextlib
import inspect
import math
import numbers
import random

import keras
import numpy as np
from keras import ops

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent.base import draw

__all__ = ["ESNCell", "ESN"]

PACKAGE = "kerasweights_esn"


# Offsets added to `seed` so the input weights, the reservoir, the bias and
# the connectivity mask come from different random streams.
_KERNEL_SEED, _RECURRENT_SEED, _BIAS_SEED, _MASK_SEED = range(4)


def _check_units(units):
    if isinstance(units, bool) or not isinstance(units, numbers.Integral):
        raise InvalidTypeError(
            "`units` must be a positive integer. "
            f"Received: units={units!r} of type {type(units).__name__}"
        )
    if units <= 0:
        raise InvalidArgumentError(
            f"`units` must be a positive integer. Received: units={units}"
        )
    return int(units)


def _check_real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(
            f"`{name}` must be a real number. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgumentError(
            f"`{name}` must be a finite number. Received: {name}={value}"
        )
    return value


def _check_unit_interval(name, value):
    value = _check_real(name, value)
    if not 0.0 < value <= 1.0:
        raise InvalidArgumentError(
            f"`{name}` must be in (0, 1]. Received: {name}={value}"
        )
    return value


def _check_positive(name, value):
    value = _check_real(name, value)
    if value <= 0.0:
        raise InvalidArgumentError(
            f"`{name}` must be a positive number. Received: {name}={value}"
        )
    return value


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidTypeError(
            f"`{name}` must be True or False. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    return bool(value)


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InvalidTypeError(
            "`seed` must be None or a non-negative integer. "
            f"Received: seed={seed!r} of type {type(seed).__name__}"
        )
    if seed < 0:
        raise InvalidArgumentError(
            "`seed` must be None or a non-negative integer. "
            f"Received: seed={seed}"
        )
    return int(seed)


def _initializer(name, value, default, seed):
    """Resolve an initializer; give it `seed` if it has no seed of its own.

    Returns the initializer and whether it is the user's own object (which
    other layers may share).

    Keras initializers that take a ``seed`` and were given none draw a new
    one every time they are constructed, so a seeded cell re-creates them
    from their config with a seed derived from the cell's.
    """
    if value is None:
        value = default
    try:
        init = keras.initializers.get(value)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"`{name}` must be a Keras initializer, its name or its config. "
            f"Received: {name}={value!r}"
        ) from exc
    if seed is not None and isinstance(init, keras.initializers.Initializer):
        config = init.get_config()
        if "seed" in config and config["seed"] is None:
            init = type(init).from_config({**config, "seed": seed})
    # Only an initializer object of the user's, used as it is, can be
    # shared with other layers.
    return init, init is value


def _eager_scope():
    """Run weight construction eagerly even while Keras traces a graph.

    Keras may build a layer inside a scratch graph (a model fitted before
    it was built); the reservoir is computed in NumPy, so it needs values.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


def _spectral_scale(matrix, use_norm2):
    """The spectral radius of `matrix`, or its 2-norm when `use_norm2`."""
    if use_norm2:
        return float(np.linalg.norm(matrix, ord=2))
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


@keras.saving.register_keras_serializable(package=PACKAGE)
class ESNCell(keras.layers.Layer):
    """Echo state network cell: one leaky-integrator step of a reservoir.

    The cell holds three non-trainable weights: ``kernel`` (input weights,
    ``kernel_initializer`` times ``input_scaling``), ``recurrent_kernel``
    (the reservoir: ``recurrent_initializer``, of which a random fraction
    ``connectivity`` of the entries is kept, plus one incoming connection
    per neuron along a random permutation, rescaled so that its spectral
    radius, or its 2-norm with ``use_norm2``, equals ``spectral_radius``)
    and ``bias``. One step computes::

        candidate = activation(x @ kernel + h @ recurrent_kernel + bias)
        h_new = (1 - leaky) * h + leaky * candidate

    Use it through `ESN`, or wrap it in ``keras.layers.RNN`` yourself.

    Args:
        units: Positive integer, the number of reservoir neurons.
        connectivity: Fraction of reservoir connections kept, in (0, 1].
            Reservoirs are usually sparse (0.01 to 0.2). Every neuron also
            keeps one incoming connection along a random permutation, so
            the kept fraction is ``connectivity + (1 - connectivity) /
            units`` on average and the reservoir always has cycles (a
            spectral radius that can be scaled), even when small.
        leaky: Leaking rate in (0, 1]: how much of the new candidate state
            replaces the old state at each step. 1 is Jaeger's original
            non-leaky network; smaller values give slower dynamics.
        spectral_radius: Positive number, the largest absolute eigenvalue
            the reservoir is scaled to. Below 1 is the usual choice for a
            fading memory (the echo state property); it is a heuristic, not
            a guarantee, and values a little above 1 sometimes work better.
        use_norm2: If True, scale the reservoir so that its 2-norm (largest
            singular value) equals ``spectral_radius``. The 2-norm bounds
            the spectral radius from above, so the true radius is then at
            most ``spectral_radius``; an SVD is also cheaper than a full
            eigen-decomposition for large reservoirs.
        input_scaling: Positive number multiplying the input weights drawn
            from ``kernel_initializer``.
        use_bias: Whether the reservoir neurons get a fixed random bias.
        activation: The neuron nonlinearity (name, function or config);
            default ``"tanh"``.
        kernel_initializer: Initializer of the input weights. Default
            (``None``): uniform on [-1, 1].
        recurrent_initializer: Initializer the reservoir is drawn from
            before thinning and rescaling, so only its shape matters, not
            its scale. Default (``None``): uniform on [-1, 1].
        bias_initializer: Initializer of the bias. Default (``None``):
            uniform on [-1, 1].
        seed: ``None`` or a non-negative integer. With an integer the
            connectivity mask and every initializer that has no seed of its
            own are seeded from it, so the reservoir is the same every time
            the cell is built. With ``None`` each cell draws a new reservoir
            (reproducible under ``keras.utils.set_random_seed``).
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``,
            ``dtype``, ...).

    Raises:
        InvalidArgumentError: An argument is out of range, or (at build
            time) ``recurrent_initializer`` drew a reservoir whose spectral
            radius is zero on the kept connections (e.g. ``"zeros"``).
        InvalidTypeError: An argument has the wrong type.

    Example:

    >>> import keras
    >>> from kerasweights_esn import ESNCell
    >>> rnn = keras.layers.RNN(ESNCell(32, seed=0), return_sequences=True)
    >>> rnn(keras.ops.ones((2, 5, 3))).shape
    TensorShape([2, 5, 32])

    Reference:
        Jaeger, H. (2001). The "echo state" approach to analysing and
        training recurrent neural networks. GMD Report 148, German
        National Research Center for Information Technology.
        Jaeger, H., Lukosevicius, M., Popovici, D. and Siewert, U. (2007).
        Optimization and applications of echo state networks with
        leaky-integrator neurons. Neural Networks 20(3), 335-352.
    """

    def __init__(
        self,
        units,
        connectivity=0.1,
        leaky=1.0,
        spectral_radius=0.9,
        use_norm2=False,
        input_scaling=1.0,
        use_bias=True,
        activation="tanh",
        kernel_initializer=None,
        recurrent_initializer=None,
        bias_initializer=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)

        self.units = _check_units(units)
        self.connectivity = _check_unit_interval("connectivity", connectivity)
        self.leaky = _check_unit_interval("leaky", leaky)
        self.spectral_radius = _check_positive(
            "spectral_radius", spectral_radius
        )
        self.use_norm2 = _check_bool("use_norm2", use_norm2)
        self.input_scaling = _check_positive("input_scaling", input_scaling)
        self.use_bias = _check_bool("use_bias", use_bias)
        self.seed = _check_seed(seed)
        try:
            self.activation = keras.activations.get(activation)
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                "`activation` must be a Keras activation, its name or its "
                f"config. Received: activation={activation!r}"
            ) from exc

        base = self.seed
        if base is None:
            # Python's generator, like Keras' unseeded initializers, so that
            # keras.utils.set_random_seed makes unseeded cells reproducible.
            base = random.randint(0, 2**31 - 1)
        self._mask_seed = base + _MASK_SEED

        def seed_for(offset):
            return None if self.seed is None else self.seed + offset

        uniform = {
            "class_name": "RandomUniform",
            "config": {"minval": -1.0, "maxval": 1.0, "seed": None},
        }
        self.kernel_initializer, shared_kernel = _initializer(
            "kernel_initializer",
            kernel_initializer,
            uniform,
            seed_for(_KERNEL_SEED),
        )
        self.recurrent_initializer, shared_recurrent = _initializer(
            "recurrent_initializer",
            recurrent_initializer,
            uniform,
            seed_for(_RECURRENT_SEED),
        )
        self.bias_initializer, shared_bias = _initializer(
            "bias_initializer", bias_initializer, uniform, seed_for(_BIAS_SEED)
        )

        # Seeds are derived per weight and direction, so the two directions
        # of a Bidirectional differ; a shared initializer object's also per
        # layer, so two layers never start equal because they share it
        # (case C12). Equal layer seeds still give equal reservoirs.
        self._shared = {
            "kernel": shared_kernel,
            "recurrent_kernel": shared_recurrent,
            "bias": shared_bias,
        }
        # Set by the ESN layer: its direction, and its name with it.
        self.direction = ""
        self.weight_salt = ""

        # One state tensor, given as a list like LSTMCell's, so that
        # `return_state` and `initial_state` always take a list.
        self.state_size = [self.units]
        self.output_size = self.units

    def _draw(self, which, initializer, shape):
        # Each weight and direction draws with a seed of its own; a shared
        # initializer object also per layer (case C12).
        salt = self.weight_salt if self._shared[which] else self.direction
        return draw(initializer, shape, self.variable_dtype, which, salt)

    def _input_weights(self, input_dim):
        shape = (input_dim, self.units)
        values = self._draw("kernel", self.kernel_initializer, shape)
        return ops.convert_to_numpy(values) * self.input_scaling

    def _reservoir(self):
        shape = (self.units, self.units)
        values = self._draw(
            "recurrent_kernel", self.recurrent_initializer, shape
        )
        matrix = ops.convert_to_numpy(values).astype(np.float64)

        matrix = np.where(self._connections(), matrix, 0.0)

        scale = _spectral_scale(matrix, self.use_norm2)
        largest = float(np.max(np.abs(matrix)))
        if not math.isfinite(scale) or scale <= 1e-6 * largest or scale == 0:
            what = "2-norm" if self.use_norm2 else "spectral radius"
            raise InvalidArgumentError(
                f"The reservoir drawn from `recurrent_initializer` has {what} "
                f"{scale:g} (numerically zero) on its kept connections, so "
                "it cannot be rescaled to spectral_radius="
                f"{self.spectral_radius}. Use a `recurrent_initializer` that "
                "draws a non-degenerate matrix (not zeros or an identity). "
                "Received: recurrent_initializer="
                f"{keras.initializers.serialize(self.recurrent_initializer)}"
            )
        return matrix * (self.spectral_radius / scale)

    def _connections(self):
        """The boolean mask of reservoir connections kept.

        A random fraction ``connectivity`` of all entries, plus one incoming
        connection per neuron along a random permutation. The permutation's
        connections form cycles through every neuron, so a reservoir with
        generic random weights never has spectral radius 0, however small
        ``units`` and ``connectivity`` are.
        """
        units = self.units
        rng = np.random.default_rng(self._mask_seed)
        keep = rng.random((units, units)) < self.connectivity
        keep[rng.permutation(units), np.arange(units)] = True
        return keep

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise InvalidArgumentError(
                "The last axis of the ESNCell input (features) must be "
                f"known. Received: input_shape={input_shape}"
            )

        with _eager_scope():
            kernel = self._input_weights(int(input_dim))
            reservoir = self._reservoir()
            bias = None
            if self.use_bias:
                bias = self._draw("bias", self.bias_initializer, (self.units,))
                bias = ops.convert_to_numpy(bias)

        self.kernel = self.add_weight(
            name="kernel",
            shape=kernel.shape,
            initializer=_fixed(kernel),
            trainable=False,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=reservoir.shape,
            initializer=_fixed(reservoir),
            trainable=False,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=bias.shape,
                initializer=_fixed(bias),
                trainable=False,
            )

    def call(self, inputs, states, training=None):
        nested = isinstance(states, (list, tuple))
        previous = states[0] if nested else states

        total = ops.matmul(inputs, self.kernel)
        total = total + ops.matmul(previous, self.recurrent_kernel)
        if self.use_bias:
            total = total + self.bias
        candidate = self.activation(total)

        state = (1.0 - self.leaky) * previous + self.leaky * candidate
        return state, [state] if nested else state

    def get_config(self):
        config = {
            "units": self.units,
            "connectivity": self.connectivity,
            "leaky": self.leaky,
            "spectral_radius": self.spectral_radius,
            "use_norm2": self.use_norm2,
            "input_scaling": self.input_scaling,
            "use_bias": self.use_bias,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


def _fixed(values):
    """An initializer callable that returns precomputed `values`."""

    def initializer(shape, dtype=None):
        return ops.convert_to_tensor(values, dtype=dtype)

    return initializer


@keras.saving.register_keras_serializable(package=PACKAGE)
class ESN(keras.layers.RNN):
    """Echo state network layer: a fixed random reservoir over a sequence.

    `ESN` runs an `ESNCell` over the time axis, as ``keras.layers.GRU``
    runs a ``GRUCell``. It has no trainable weights: train a readout on its
    output, e.g. ``keras.layers.Dense``. Input shape ``(batch, time,
    features)``; output ``(batch, units)``, or ``(batch, time, units)`` with
    ``return_sequences=True``.

    Args:
        units: Positive integer, the number of reservoir neurons.
        connectivity: Fraction of reservoir connections kept, in (0, 1].
        leaky: Leaking rate in (0, 1]; 1 is the non-leaky network.
        spectral_radius: Positive number the reservoir's spectral radius is
            scaled to (its 2-norm with ``use_norm2``).
        use_norm2: Scale by the 2-norm, an upper bound of the spectral
            radius, instead of the eigenvalues.
        input_scaling: Positive factor on the input weights.
        use_bias: Whether the neurons get a fixed random bias.
        activation: Neuron nonlinearity; default ``"tanh"``.
        kernel_initializer: Input weights; default uniform on [-1, 1].
        recurrent_initializer: Draws the reservoir before thinning and
            rescaling; default uniform on [-1, 1].
        bias_initializer: Bias; default uniform on [-1, 1].
        seed: ``None`` or a non-negative integer that fixes the reservoir.
        return_sequences: Return the state at every step, not only the last.
        return_state: Also return the last state.
        go_backwards: Process the sequence backwards.
        stateful: Carry the last state of batch ``i`` into the next batch.
        unroll: Unroll the time loop (faster for short sequences).
        zero_output_for_mask: With a mask and ``return_sequences=True``,
            output zeros at masked steps. The single final output is never
            zeroed: it is the state after the last unmasked step.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).

    A stateful `ESN` refuses a batch whose size differs from the one its
    states were built for (`InvalidArgumentError`, states unchanged).
    There is no dropout: the reservoir's features are fixed, so regularise
    the readout instead.

    See `ESNCell` for the equations and the details of each argument.

    Raises:
        InvalidArgumentError: An argument is out of range.
        InvalidTypeError: An argument has the wrong type.

    Example:

    >>> import keras
    >>> from kerasweights_esn import ESN
    >>> model = keras.Sequential([
    ...     keras.Input((8, 8)),
    ...     ESN(100, spectral_radius=0.95, leaky=0.5, seed=0),
    ...     keras.layers.Dense(10, activation="softmax"),
    ... ])
    >>> len(model.layers[0].trainable_weights)
    0

    Reference:
        Jaeger, H. (2001). The "echo state" approach to analysing and
        training recurrent neural networks. GMD Report 148.
        Jaeger, H. et al. (2007). Optimization and applications of echo
        state networks with leaky-integrator neurons. Neural Networks 20(3).
    """

    plugin_kind = "recurrent"
    plugin_name = "esn"
    cell_class = ESNCell

    def __init__(
        self,
        units,
        connectivity=0.1,
        leaky=1.0,
        spectral_radius=0.9,
        use_norm2=False,
        input_scaling=1.0,
        use_bias=True,
        activation="tanh",
        kernel_initializer=None,
        recurrent_initializer=None,
        bias_initializer=None,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        cell = self.cell_class(
            units,
            connectivity=connectivity,
            leaky=leaky,
            spectral_radius=spectral_radius,
            use_norm2=use_norm2,
            input_scaling=input_scaling,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            seed=seed,
            dtype=kwargs.get("dtype"),
            name="esn_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            # Keras would also zero the single final output of a sample whose
            # last steps are masked; the flag only concerns sequences (C13).
            zero_output_for_mask=bool(zero_output_for_mask)
            and bool(return_sequences),
            **kwargs,
        )
        self.zero_output_requested = bool(zero_output_for_mask)
        self.input_spec = keras.layers.InputSpec(ndim=3)
        direction = "backward" if go_backwards else "forward"
        cell.direction = direction
        cell.weight_salt = f"{self.name}/{direction}"

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if self.stateful and initial_state is None:
            self._check_stateful_batch(sequences)
        return super().call(
            sequences, initial_state=initial_state, mask=mask, training=training
        )

    def _check_stateful_batch(self, sequences):
        """Refuse a batch size other than the stored states' (C02)."""
        states = getattr(self, "states", None) or []
        if not states:
            return
        expected = states[0].shape[0]
        received = sequences.shape[0]
        if None not in (expected, received) and expected != received:
            raise InvalidArgumentError(
                "A stateful ESN keeps one state per sample, so the batch "
                "size must not change; call `reset_state()` on a layer built "
                f"for the new size. Expected batch size: {expected}. "
                f"Received batch size: {received}"
            )

    @classmethod
    def cell_arguments(cls):
        """Names of the cell's constructor arguments (``units`` excluded)."""
        params = inspect.signature(cls.cell_class.__init__).parameters
        return [p for p in params if p not in ("self", "units", "kwargs")]

    @classmethod
    def tunable_arguments(cls, hp):
        """Constructor arguments a Keras Tuner search may vary.

        Args:
            hp: A ``keras_tuner.HyperParameters``.

        Returns:
            A dict of keyword arguments for the constructor, drawn from
            ``hp`` under names prefixed ``esn_``.
        """
        return {
            "spectral_radius": hp.Float(
                "esn_spectral_radius", 0.5, 1.2, step=0.1, default=0.9
            ),
            "leaky": hp.Float(
                "esn_leaky", 0.1, 1.0, sampling="log", default=1.0
            ),
        }

    @property
    def units(self):
        return self.cell.units

    @property
    def connectivity(self):
        return self.cell.connectivity

    @property
    def leaky(self):
        return self.cell.leaky

    @property
    def spectral_radius(self):
        return self.cell.spectral_radius

    @property
    def use_norm2(self):
        return self.cell.use_norm2

    @property
    def input_scaling(self):
        return self.cell.input_scaling

    @property
    def use_bias(self):
        return self.cell.use_bias

    @property
    def activation(self):
        return self.cell.activation

    @property
    def kernel_initializer(self):
        return self.cell.kernel_initializer

    @property
    def recurrent_initializer(self):
        return self.cell.recurrent_initializer

    @property
    def bias_initializer(self):
        return self.cell.bias_initializer

    @property
    def seed(self):
        return self.cell.seed

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {
            key: cell_config[key]
            for key in (
                "units",
                "connectivity",
                "leaky",
                "spectral_radius",
                "use_norm2",
                "input_scaling",
                "use_bias",
                "activation",
                "kernel_initializer",
                "recurrent_initializer",
                "bias_initializer",
                "seed",
            )
        }
        base_config = super().get_config()
        del base_config["cell"]
        base_config["zero_output_for_mask"] = self.zero_output_requested
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
