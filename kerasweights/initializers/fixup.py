"""Fixup: rescale residual branches so deep residual nets train unnormalized.

Two ways to apply it: the `Fixup` initializer plugin, set on each layer of
a residual branch before the model is built, and the `fixup_scale` helper,
which rescales the kernels of a model that is already built.
"""

import dataclasses
import math

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.initializers import base
from kerasweights.initializers.variance_scaling import DISTRIBUTIONS
from kerasweights.initializers.variance_scaling import draw_scaled

__all__ = ["Fixup", "FixupResult", "fixup_factor", "fixup_scale"]


def fixup_factor(num_branches, layers_per_branch):
    """The Fixup scale ``L^(-1 / (2m - 2))`` of Zhang et al. 2019.

    Args:
        num_branches: ``L``, the number of residual branches, >= 1.
        layers_per_branch: ``m``, the number of weight layers in each
            branch, >= 2 (with ``m = 1`` the branch is only its last layer,
            which Fixup sets to zero, so no factor applies; this returns
            1.0 then).

    Returns:
        The factor as a Python float.

    Raises:
        InvalidArgumentError: A count below 1.
    """
    for name, value in (
        ("num_branches", num_branches),
        ("layers_per_branch", layers_per_branch),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(
                f"`{name}` must be a positive integer. Received: "
                f"{name}={value!r}"
            )
    if layers_per_branch == 1:
        return 1.0
    return float(num_branches) ** (-1.0 / (2 * layers_per_branch - 2))


@dataclasses.dataclass(frozen=True)
class FixupResult:
    """What `fixup_scale` did.

    Attributes:
        num_branches: ``L`` used in the factor.
        factors: One factor per branch (``L^(-1/(2m-2))`` with that
            branch's ``m``).
        zeroed: Names of the layers whose kernel was set to zero.
        scaled: Names of the layers whose kernel was multiplied.
    """

    num_branches: int
    factors: tuple
    zeroed: tuple
    scaled: tuple


def fixup_scale(branches, num_branches=None):
    """Apply Fixup's rescaling to the residual branches of a built model.

    For each branch (a sequence of layers with a ``kernel``, in the order
    the signal goes through them): the last layer's kernel is set to zero,
    so every branch starts as the identity map, and every other layer's
    kernel is multiplied by ``L^(-1 / (2m - 2))``, where ``L`` is the
    number of branches and ``m`` the number of layers in that branch.
    Initialize the kernels the usual way first (e.g. He); Fixup's extra
    scalar biases and multipliers, and zeroing the classifier, are part of
    the architecture and stay the model author's job.

    Args:
        branches: A sequence of branches, each a sequence of built layers
            that have a ``kernel`` weight.
        num_branches: ``L``; defaults to ``len(branches)``. Pass the
            network's total when rescaling only some of its branches.

    Returns:
        A `FixupResult`.

    Raises:
        InvalidArgumentError: No branches, an empty branch, or a layer
            without a built ``kernel``.

    Example:

    >>> import keras
    >>> from kerasweights.initializers import fixup_scale
    >>> blocks = [[keras.layers.Dense(8), keras.layers.Dense(8)]
    ...           for _ in range(4)]
    >>> for block in blocks:
    ...     for layer in block:
    ...         layer.build((None, 8))
    >>> fixup_scale(blocks).factors[0]
    0.5

    Reference:
        Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning
        Without Normalization", ICLR 2019.
    """
    if isinstance(branches, (str, bytes)) or not hasattr(branches, "__len__"):
        raise InvalidTypeError(
            "`branches` must be a sequence of sequences of layers. "
            f"Received: branches of type {type(branches).__name__}"
        )
    branches = [list(b) for b in branches]
    if not branches or any(not b for b in branches):
        raise InvalidArgumentError(
            "`branches` must hold at least one non-empty branch. Received: "
            f"branch sizes {[len(b) for b in branches]}"
        )
    total = len(branches) if num_branches is None else num_branches
    for branch in branches:
        for layer in branch:
            kernel = getattr(layer, "kernel", None)
            if not isinstance(kernel, keras.Variable):
                raise InvalidArgumentError(
                    "Every layer of a branch must be built and have a "
                    f"`kernel`. Received: {layer!r}"
                )

    factors, zeroed, scaled = [], [], []
    for branch in branches:
        factor = fixup_factor(total, len(branch))
        factors.append(factor)
        for layer in branch[:-1]:
            layer.kernel.assign(layer.kernel * factor)
            scaled.append(layer.name)
        last = branch[-1].kernel
        last.assign(keras.ops.zeros(last.shape, last.dtype))
        zeroed.append(branch[-1].name)
    return FixupResult(total, tuple(factors), tuple(zeroed), tuple(scaled))


@keras.saving.register_keras_serializable(package="kerasweights")
class Fixup(base.SeededInitializer):
    """Fixup kernel for a layer inside a residual branch (Zhang et al. 2019).

    Fixup starts a network of ``L`` residual branches, each made of ``m``
    weight layers, without any normalization layer:

    * the **last** layer of every branch starts at zero (``last=True``), so
      every branch starts as the identity map;
    * every **other** layer of a branch draws from the base distribution
      (He et al.'s, the paper's choice) scaled by the Fixup factor::

          std = gain / sqrt(fan_in) * L^(-1 / (2m - 2))

      with ``gain`` the gain of ``activation`` (sqrt(2) for relu) and
      ``fan_in`` computed in Keras' kernel layout: ``in`` for a Dense
      kernel ``(in, out)``, ``k_1 * ... * k_d * in`` for a ConvND kernel
      ``(k_1, ..., k_d, in, out)``.

    Layers outside the residual branches (the stem, the downsampling
    shortcuts) are not Fixup's business: use He's initialization there.
    Fixup also zeroes the classifier and adds scalar biases and a scalar
    multiplier per branch; those are part of the architecture, not of an
    initializer. With the default ``num_branches=1`` the factor is 1 and
    this is He's initialization: pass the network's ``L``.

    ``layers_per_branch=1`` (a branch made of its last layer only) leaves
    the factor ``L^(-1/0)`` undefined; such a branch has no non-last layer,
    so ``Fixup(layers_per_branch=1)`` requires ``last=True`` and raises an
    error otherwise. (The helper `fixup_factor` returns 1.0 for ``m = 1``,
    which no layer of such a branch uses.)

    Args:
        num_branches: ``L``, the number of residual branches of the whole
            network, a positive int.
        layers_per_branch: ``m``, the number of weight layers in each
            branch, a positive int (2 for a basic ResNet block, 3 for a
            bottleneck block).
        last: Whether this is the last layer of its branch (starts at
            zero).
        activation: The activation whose gain scales the base draw;
            ``"relu"`` (default) gives He's initialization. See
            `activation_gain`.
        negative_slope: Slope of ``leaky_relu`` for negative inputs.
        distribution: ``"normal"`` (default, as He et al. and the paper),
            ``"truncated_normal"`` (Keras' ``he_normal``) or
            ``"uniform"``; each has the standard deviation above.
        seed: ``None`` or a non-negative int; see docs/initializers.md.

    Raises:
        InvalidArgumentError: A count below 1, ``layers_per_branch=1``
            without ``last=True``, an unknown activation or distribution,
            or a shape that is not a Dense or Conv1D/2D/3D kernel.
        InvalidTypeError: ``last`` is not a bool.

    Example:

    >>> import keras
    >>> from kerasweights.initializers import Fixup
    >>> inputs = keras.Input((16,))
    >>> h = inputs
    >>> for _ in range(8):
    ...     a = keras.layers.Dense(16, activation="relu",
    ...         kernel_initializer=Fixup(8, 2))
    ...     b = keras.layers.Dense(16,
    ...         kernel_initializer=Fixup(8, 2, last=True))
    ...     h = keras.layers.Add()([h, b(a(h))])
    >>> model = keras.Model(inputs, h)

    Reference:
        Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning
        Without Normalization", ICLR 2019.
    """

    plugin_kind = "initializer"
    plugin_targets = ("dense_kernel", "conv_kernel")

    def __init__(
        self,
        num_branches=1,
        layers_per_branch=2,
        last=False,
        activation="relu",
        negative_slope=0.01,
        distribution="normal",
        seed=None,
    ):
        fixup_factor(num_branches, layers_per_branch)
        if not isinstance(last, bool):
            raise InvalidTypeError(
                f"`last` must be True or False. Received: last={last!r}"
            )
        if layers_per_branch == 1 and not last:
            raise InvalidArgumentError(
                "With layers_per_branch=1 a branch is only its last layer, "
                "which Fixup sets to zero, and the factor L^(-1/(2m-2)) is "
                "undefined; pass last=True or layers_per_branch >= 2. "
                "Received: layers_per_branch=1, last=False"
            )
        base.activation_gain(activation, negative_slope)
        base.choice("distribution", distribution, DISTRIBUTIONS)
        super().__init__(seed=seed)
        self.num_branches = num_branches
        self.layers_per_branch = layers_per_branch
        self.last = last
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.distribution = distribution

    @property
    def factor(self):
        """The Fixup factor ``L^(-1/(2m-2))``; 0.0 for a last layer."""
        if self.last:
            return 0.0
        return fixup_factor(self.num_branches, self.layers_per_branch)

    def stddev(self, shape):
        """The standard deviation of the draws for ``shape``."""
        fan_in, _ = base.compute_fans(shape)
        gain = base.activation_gain(self.activation, self.negative_slope)
        return gain / math.sqrt(fan_in) * self.factor

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "Fixup")
        dtype = base.float_dtype(dtype, "Fixup")
        if not 2 <= len(shape) <= 5:
            raise InvalidArgumentError(
                "Fixup initializes a Dense kernel (in, out) or a "
                "Conv1D/2D/3D kernel (spatial..., in, out). Received: "
                f"shape={shape}"
            )
        if self.last:
            return keras.ops.zeros(shape, dtype=dtype)
        return draw_scaled(
            shape,
            self.stddev(shape),
            self.distribution,
            self.next_seed(),
            dtype,
        )

    def get_config(self):
        return {
            "num_branches": self.num_branches,
            "layers_per_branch": self.layers_per_branch,
            "last": self.last,
            "activation": self.activation,
            "negative_slope": self.negative_slope,
            "distribution": self.distribution,
            "seed": self.seed,
        }

    @classmethod
    def tunable_arguments(cls, hp):
        """Draws ``distribution`` as ``fixup_distribution``.

        ``num_branches`` and ``layers_per_branch`` describe the network and
        ``last`` the layer's place in it, so none of them is tuned.
        """
        return {
            "distribution": hp.Choice(
                base.hp_name(cls, "distribution"), list(DISTRIBUTIONS)
            )
        }
