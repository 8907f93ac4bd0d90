"""Fixup: rescale residual branches so deep residual nets train unnormalized."""

import dataclasses

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError

__all__ = ["FixupResult", "fixup_factor", "fixup_scale"]


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
