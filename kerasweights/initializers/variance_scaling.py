"""Variance scaling with the gain of the activation that follows."""

import math

import keras

from kerasweights.initializers import base

__all__ = ["GainVarianceScaling", "draw_scaled"]

# Standard deviation of a standard normal truncated to [-2, 2], which is
# where keras.random.truncated_normal cuts.
_TRUNCATED_STD = 0.87962566103423978

_MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


def draw_scaled(shape, std, distribution, seed, dtype):
    """Zero-mean draws of standard deviation ``std``.

    Args:
        shape: The shape to draw.
        std: The target standard deviation.
        distribution: ``"normal"``, ``"truncated_normal"`` (cut at two of
            its standard deviations and widened so that the result still
            has ``std``) or ``"uniform"``.
        seed: Integer seed of the draw.
        dtype: Floating dtype of the result.
    """
    if distribution == "normal":
        return keras.random.normal(shape, 0.0, std, dtype=dtype, seed=seed)
    if distribution == "truncated_normal":
        return keras.random.truncated_normal(
            shape, 0.0, std / _TRUNCATED_STD, dtype=dtype, seed=seed
        )
    limit = math.sqrt(3.0) * std
    return keras.random.uniform(shape, -limit, limit, dtype=dtype, seed=seed)


@keras.saving.register_keras_serializable(package="kerasweights")
class GainVarianceScaling(base.SeededInitializer):
    """Variance scaling whose gain comes from the activation that follows.

    Draws weights with zero mean and standard deviation

        std = gain / sqrt(fan)

    where ``fan`` is the fan-in, the fan-out or their mean (``mode``),
    computed for Keras' kernel layout: ``(in, out)`` for Dense and
    ``(spatial..., in_channels, out_channels)`` for Conv1D/2D/3D, where the
    receptive field size multiplies both fans. ``gain`` defaults to the
    gain of ``activation`` (table in docs/initializers.md): 1 for linear
    and sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + a^2)) for
    leaky_relu with slope a, 3/4 for selu, 1.5335 for gelu and 1.6765 for
    swish.

    ``distribution="normal"`` draws N(0, std^2); ``"truncated_normal"``
    draws a normal cut at two of its standard deviations, widened by
    1 / 0.8796 so that the truncated draw still has standard deviation
    ``std``; ``"uniform"`` draws U(-sqrt(3) std, sqrt(3) std).

    With ``activation="relu"`` and ``mode="fan_in"`` this is He et al.'s
    initialization; with ``"linear"`` and ``"fan_avg"`` and a uniform
    distribution it is Glorot's.

    Args:
        activation: Name of the activation that follows the layer.
        negative_slope: Slope of ``leaky_relu`` for negative inputs.
        gain: A positive float that overrides the activation's gain;
            ``None`` uses the activation's gain.
        mode: ``"fan_in"`` (keeps the forward signal), ``"fan_out"``
            (keeps the backward gradient) or ``"fan_avg"``.
        distribution: ``"normal"``, ``"truncated_normal"`` or
            ``"uniform"``.
        seed: ``None`` or a non-negative int; see the family's seeding rules
            in docs/initializers.md.

    Raises:
        InvalidArgumentError: An unknown activation, mode or distribution,
            a non-positive gain, or a shape with a zero dimension.

    Example:

    >>> import keras
    >>> from kerasweights.initializers import GainVarianceScaling
    >>> init = GainVarianceScaling(activation="tanh", seed=0)
    >>> layer = keras.layers.Dense(64, activation="tanh",
    ...                            kernel_initializer=init)

    Reference:
        He et al., "Delving Deep into Rectifiers", ICCV 2015;
        Glorot & Bengio, "Understanding the difficulty of training deep
        feedforward neural networks", AISTATS 2010.
    """

    plugin_kind = "initializer"
    plugin_targets = ("dense_kernel", "conv_kernel", "recurrent_kernel")

    def __init__(
        self,
        activation="linear",
        negative_slope=0.01,
        gain=None,
        mode="fan_in",
        distribution="truncated_normal",
        seed=None,
    ):
        base.activation_gain(activation, negative_slope)
        if gain is not None:
            gain = base.positive_float("gain", gain)
        base.choice("mode", mode, _MODES)
        base.choice("distribution", distribution, DISTRIBUTIONS)
        super().__init__(seed=seed)
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.gain = gain
        self.mode = mode
        self.distribution = distribution

    @property
    def effective_gain(self):
        """The gain in use: ``gain`` if given, else the activation's."""
        if self.gain is not None:
            return self.gain
        return base.activation_gain(self.activation, self.negative_slope)

    def stddev(self, shape):
        """The target standard deviation of the weights for ``shape``."""
        fan_in, fan_out = base.compute_fans(shape)
        fan = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "fan_avg": (fan_in + fan_out) / 2.0,
        }[self.mode]
        return self.effective_gain / math.sqrt(fan)

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "GainVarianceScaling")
        dtype = base.float_dtype(dtype, "GainVarianceScaling")
        return draw_scaled(
            shape,
            self.stddev(shape),
            self.distribution,
            self.next_seed(),
            dtype,
        )

    def get_config(self):
        return {
            "activation": self.activation,
            "negative_slope": self.negative_slope,
            "gain": self.gain,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }

    @classmethod
    def tunable_arguments(cls, hp):
        """Draws ``gain``, ``mode`` and ``distribution`` from ``hp``.

        Names: ``gain_variance_scaling_gain`` (float in [0.5, 2.0]),
        ``gain_variance_scaling_mode`` and
        ``gain_variance_scaling_distribution``.
        """
        return {
            "gain": hp.Float(base.hp_name(cls, "gain"), 0.5, 2.0, step=0.25),
            "mode": hp.Choice(base.hp_name(cls, "mode"), list(_MODES)),
            "distribution": hp.Choice(
                base.hp_name(cls, "distribution"), list(DISTRIBUTIONS)
            ),
        }
