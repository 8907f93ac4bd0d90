"""Shared machinery of the initializer family: seeds, fans and gains.

Every random initializer of kerasweights derives one seed per call from its
own seed and a call counter, so

* the same seed gives the same sequence of draws for a fresh object
  (including one rebuilt from its config), and
* two weights initialised by the same object, seeded or not, never start
  equal, so one object can be shared by many layers: the second call
  draws with the second derived seed.

The call counter is not part of the config. An object rebuilt from its
config, in this process or after loading a ``.keras`` file in another one,
starts the sequence again from its first draw. A loaded model does not need
the draws anyway: its weights come from the file.
"""

import itertools
import math
import numbers
import re
import secrets

import keras
import numpy as np

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError

__all__ = [
    "PLUGIN_TARGETS",
    "activation_gain",
    "compute_fans",
    "SeededInitializer",
]

# Where an initializer can be used; the tuning search space reads these.
PLUGIN_TARGETS = ("dense_kernel", "conv_kernel", "recurrent_kernel", "bias")

# Gain of each activation: the factor by which the weight standard
# deviation is multiplied so that the activation keeps the signal's second
# moment. Sources are listed in docs/initializers.md.
_FIXED_GAINS = {
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
    # 1 / sqrt(E[f(x)^2]) for x ~ N(0, 1), by 200-point Gauss-Hermite
    # quadrature (the same definition gives sqrt(2) for relu).
    "gelu": 1.5335,
    "swish": 1.6765,
}
_ALIASES = {"identity": "linear", "silu": "swish", "leaky": "leaky_relu"}
ACTIVATIONS = tuple(sorted(_FIXED_GAINS)) + ("leaky_relu",)


def activation_gain(activation, negative_slope=0.01):
    """The recommended gain for the activation that follows a layer.

    Args:
        activation: One of ``"linear"`` (alias ``"identity"``),
            ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``,
            ``"selu"``, ``"gelu"``, ``"swish"`` (alias ``"silu"``).
        negative_slope: Slope of ``leaky_relu`` for negative inputs; used
            only for ``"leaky_relu"``.

    Returns:
        The gain as a Python float: ``sqrt(2 / (1 + negative_slope**2))``
        for ``leaky_relu``, otherwise the value in the gain table of
        docs/initializers.md.

    Raises:
        InvalidArgumentError: Unknown activation or a negative slope that
            is not a finite number.
    """
    if not isinstance(activation, str):
        raise InvalidTypeError(
            f"`activation` must be a string, one of {list(ACTIVATIONS)}. "
            f"Received: activation={activation!r}"
        )
    name = _ALIASES.get(activation.lower(), activation.lower())
    if name == "leaky_relu":
        slope = _finite_float("negative_slope", negative_slope)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if name not in _FIXED_GAINS:
        raise InvalidArgumentError(
            f"`activation` must be one of {list(ACTIVATIONS)}. "
            f"Received: activation={activation!r}"
        )
    return _FIXED_GAINS[name]


def compute_fans(shape):
    """Fan-in and fan-out of a kernel in Keras layout.

    Keras stores a Dense kernel as ``(in, out)`` and a ConvND kernel as
    ``(spatial..., in_channels, out_channels)``; every spatial position is
    one more input (and output) connection, so the receptive field size
    multiplies both fans. A 1-D shape (a bias) has both fans equal to its
    length; a scalar has fans of 1.

    Args:
        shape: The kernel shape, a sequence of positive integers.

    Returns:
        A tuple ``(fan_in, fan_out)`` of Python ints.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def check_shape(shape, name):
    """A shape as a tuple of positive ints, or an InvalidArgumentError."""
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{name} needs a shape of positive integers. Received: "
            f"shape={shape!r}"
        ) from None
    if any(d <= 0 for d in dims):
        raise InvalidArgumentError(
            f"{name} needs a shape of positive integers. Received: shape={dims}"
        )
    return dims


def float_dtype(dtype, name):
    """The requested floating dtype (default floatx) or an error."""
    dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
    if "float" not in dtype:
        raise InvalidArgumentError(
            f"{name} draws floating-point values; `dtype` must be a float "
            f"type. Received: dtype={dtype!r}"
        )
    return dtype


def _finite_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(
            f"`{name}` must be a real number. Received: {name}={value!r}"
        )
    if not math.isfinite(value):
        raise InvalidArgumentError(
            f"`{name}` must be finite. Received: {name}={value!r}"
        )
    return float(value)


def positive_float(name, value):
    """``value`` as a float, or an error if it is not finite and > 0."""
    value_f = _finite_float(name, value)
    if value_f <= 0:
        raise InvalidArgumentError(
            f"`{name}` must be a positive number. Received: {name}={value!r}"
        )
    return value_f


def choice(name, value, options):
    """``value`` if it is one of ``options``, or an error listing them."""
    if value not in options:
        raise InvalidArgumentError(
            f"`{name}` must be one of {list(options)}. Received: "
            f"{name}={value!r}"
        )
    return value


def hp_name(cls, argument):
    """Hyperparameter name: the plugin's short name, then the argument."""
    short = vars(cls).get("plugin_name")
    if not short:
        short = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", cls.__name__)
        short = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", short).lower()
    return f"{short}_{argument}"


class SeededInitializer(keras.initializers.Initializer):
    """Base of the random initializers: one derived seed per call.

    Subclasses call `next_seed()` once per call and pass the result to
    ``keras.random`` functions as an integer seed.

    Args:
        seed: ``None`` or a non-negative Python int. With an int, a fresh
            object draws the same sequence of values every time; without
            one, the sequence starts from fresh operating-system entropy.
    """

    plugin_targets = ()

    def __init__(self, seed=None):
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise InvalidTypeError(
                    "`seed` must be None or a non-negative integer. "
                    f"Received: seed={seed!r} of type {type(seed).__name__}"
                )
            if seed < 0:
                raise InvalidArgumentError(
                    "`seed` must be None or a non-negative integer. "
                    f"Received: seed={seed!r}"
                )
            seed = int(seed)
        self.seed = seed
        self._base_seed = seed if seed is not None else secrets.randbits(63)
        self._calls = itertools.count()

    def next_seed(self):
        """The integer seed of the next draw (advances the call counter)."""
        index = next(self._calls)
        state = np.random.SeedSequence([self._base_seed, index])
        return int(state.generate_state(1, dtype=np.uint32)[0])

    def get_config(self):
        return {"seed": self.seed}

    @classmethod
    def tunable_arguments(cls, hp):
        """Constructor kwargs drawn from a keras_tuner HyperParameters.

        The base class tunes nothing and returns an empty dict.
        """
        del hp
        return {}
