"""Orthogonal initializers: orthogonal with gain, and delta-orthogonal."""

import math

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.initializers import base

__all__ = ["OrthogonalGain", "DeltaOrthogonal", "semi_orthogonal"]


def semi_orthogonal(rows, cols, seed):
    """A Haar-random matrix with orthonormal rows or columns, in float64.

    Draws a Gaussian matrix, takes the Q factor of its QR decomposition and
    multiplies each column of Q by the sign of the matching diagonal entry
    of R, which makes the result uniformly distributed over the (Stiefel)
    set of such matrices.

    Args:
        rows: Number of rows.
        cols: Number of columns.
        seed: Integer seed of the Gaussian draw.

    Returns:
        A float64 tensor of shape ``(rows, cols)``: ``Q^T Q = I`` when
        ``rows >= cols``, ``Q Q^T = I`` when ``rows < cols``.
    """
    tall = rows >= cols
    big, small = (rows, cols) if tall else (cols, rows)
    gaussian = keras.random.normal((big, small), dtype="float64", seed=seed)
    q, r = keras.ops.linalg.qr(gaussian, mode="reduced")
    signs = keras.ops.where(keras.ops.diagonal(r) < 0, -1.0, 1.0)
    q = q * keras.ops.cast(signs, "float64")[None, :]
    return q if tall else keras.ops.transpose(q)


@keras.saving.register_keras_serializable(package="kerasweights")
class OrthogonalGain(base.SeededInitializer):
    """A random (semi-)orthogonal matrix times a gain.

    The kernel is flattened to a matrix of shape
    ``(prod(shape[:-1]), shape[-1])`` = ``(rows, cols)``; for a Dense or a
    recurrent kernel that is ``(in, out)``. The result ``W`` satisfies

    * ``rows >= cols``: ``W^T W = gain^2 I`` (orthonormal columns). The
      backward pass preserves gradient norms exactly; the forward map
      ``x -> x W`` is ``gain`` times an orthogonal projection.
    * ``rows < cols`` (more outputs than inputs): an exactly orthogonal
      square matrix cannot exist, and ``W^T W = gain^2 I`` is impossible
      because its rank is at most ``rows``. We return orthonormal rows
      instead, ``W W^T = gain^2 I``: the forward map ``x -> x W`` then
      preserves norms exactly (times ``gain``), and ``W^T W`` is ``gain^2``
      times a projection of rank ``rows``. No error and no warning: this is
      the closest semi-orthogonal matrix to the request.

    With ``blocks > 1`` the last axis is split into ``blocks`` equal parts
    and each part is an independent semi-orthogonal matrix: use
    ``blocks=4`` for an LSTM recurrent kernel ``(units, 4 units)`` and
    ``blocks=3`` for a GRU's, so that every gate's square block is
    orthogonal on its own.

    Args:
        gain: Positive multiplier of the orthogonal matrix.
        blocks: Number of equal blocks along the last axis, each orthogonal.
        seed: ``None`` or a non-negative int; see docs/initializers.md.

    Raises:
        InvalidArgumentError: Non-positive gain or blocks, a shape of rank
            below 2, or a last axis not divisible by ``blocks``.

    Example:

    >>> import keras
    >>> from kerasweights.initializers import OrthogonalGain
    >>> lstm = keras.layers.LSTM(
    ...     8, recurrent_initializer=OrthogonalGain(blocks=4, seed=1))

    Reference:
        Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear
        dynamics of learning in deep linear neural networks", ICLR 2014.
    """

    plugin_kind = "initializer"
    plugin_targets = ("dense_kernel", "conv_kernel", "recurrent_kernel")

    def __init__(self, gain=1.0, blocks=1, seed=None):
        gain = base.positive_float("gain", gain)
        if (
            isinstance(blocks, bool)
            or not isinstance(blocks, int)
            or blocks < 1
        ):
            raise InvalidArgumentError(
                "`blocks` must be a positive integer. "
                f"Received: blocks={blocks!r}"
            )
        super().__init__(seed=seed)
        self.gain = gain
        self.blocks = blocks

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "OrthogonalGain")
        dtype = base.float_dtype(dtype, "OrthogonalGain")
        if len(shape) < 2:
            raise InvalidArgumentError(
                "OrthogonalGain needs a kernel of rank 2 or more, such as a "
                f"Dense kernel (in, out). Received: shape={shape}"
            )
        if shape[-1] % self.blocks:
            raise InvalidArgumentError(
                f"OrthogonalGain with blocks={self.blocks} needs a last axis "
                f"divisible by {self.blocks}. Received: shape={shape}"
            )
        rows = math.prod(shape[:-1])
        width = shape[-1] // self.blocks
        parts = [
            semi_orthogonal(rows, width, self.next_seed())
            for _ in range(self.blocks)
        ]
        matrix = (
            parts[0] if self.blocks == 1 else keras.ops.concatenate(parts, 1)
        )
        matrix = keras.ops.reshape(matrix * self.gain, shape)
        return keras.ops.cast(matrix, dtype)

    def get_config(self):
        return {"gain": self.gain, "blocks": self.blocks, "seed": self.seed}

    @classmethod
    def tunable_arguments(cls, hp):
        """Draws ``gain`` as ``orthogonal_gain_gain`` in [0.5, 2.0]."""
        return {
            "gain": hp.Float(base.hp_name(cls, "gain"), 0.5, 2.0, step=0.25)
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class DeltaOrthogonal(base.SeededInitializer):
    """Delta-orthogonal convolution kernel (Xiao et al. 2018).

    For a ConvND kernel of shape ``(k_1, ..., k_d, in, out)`` with d in
    {1, 2, 3}, every spatial tap is zero except the centre, which holds
    ``gain`` times a random semi-orthogonal ``(in, out)`` matrix (see
    `OrthogonalGain` for ``in < out`` and ``in > out``). The centre of an
    axis of size ``k`` is index ``(k - 1) // 2``: for odd ``k`` the middle,
    for even ``k`` the tap that ``padding="same"`` aligns with the output
    position. A stride-1 convolution with ``padding="same"`` then maps
    each position's channel vector through the same matrix, so when
    ``in <= out`` it preserves the norm of every input exactly (times
    ``gain``); when ``in > out`` only ``W^T W = gain^2 I`` holds.

    Args:
        gain: Positive multiplier of the centre matrix.
        seed: ``None`` or a non-negative int; see docs/initializers.md.

    Raises:
        InvalidArgumentError: A shape that is not a Conv1D/2D/3D kernel,
            e.g. a Dense kernel of rank 2.

    Example:

    >>> import keras
    >>> conv = keras.layers.Conv2D(
    ...     16, 3, padding="same",
    ...     kernel_initializer="kerasweights>DeltaOrthogonal")

    Reference:
        Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington, "Dynamical
        Isometry and a Mean Field Theory of CNNs: How to Train 10,000-Layer
        Vanilla Convolutional Neural Networks", ICML 2018.
    """

    plugin_kind = "initializer"
    plugin_targets = ("conv_kernel",)

    def __init__(self, gain=1.0, seed=None):
        gain = base.positive_float("gain", gain)
        super().__init__(seed=seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "DeltaOrthogonal")
        dtype = base.float_dtype(dtype, "DeltaOrthogonal")
        if not 3 <= len(shape) <= 5:
            raise InvalidArgumentError(
                "DeltaOrthogonal needs a Conv1D/2D/3D kernel of shape "
                "(spatial..., in_channels, out_channels), of rank 3 to 5; a "
                "Dense kernel (in, out) has no spatial centre, use "
                f"OrthogonalGain there. Received: shape={shape}"
            )
        centre = semi_orthogonal(shape[-2], shape[-1], self.next_seed())
        centre = keras.ops.cast(centre * self.gain, dtype)
        spatial = shape[:-2]
        start = [(k - 1) // 2 for k in spatial] + [0, 0]
        block = keras.ops.reshape(centre, (1,) * len(spatial) + shape[-2:])
        kernel = keras.ops.zeros(shape, dtype=dtype)
        return keras.ops.slice_update(kernel, start, block)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}

    @classmethod
    def tunable_arguments(cls, hp):
        """Draws ``gain`` as ``delta_orthogonal_gain`` in [0.5, 2.0]."""
        return {
            "gain": hp.Float(base.hp_name(cls, "gain"), 0.5, 2.0, step=0.25)
        }
