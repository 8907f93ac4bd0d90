"""ZerO: deterministic initialization from zeros, ones and Hadamard."""

import math

import keras
import numpy as np

from kerasweights.errors import InvalidArgumentError
from kerasweights.initializers import base

__all__ = ["ZerO", "zero_matrix"]


def _sylvester_hadamard(order):
    """The 2^order x 2^order Sylvester Hadamard matrix (entries +-1)."""
    matrix = np.ones((1, 1))
    for _ in range(order):
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def zero_matrix(fan_in, fan_out):
    """The ZerO matrix in Keras layout ``(fan_in, fan_out)``, as NumPy.

    In the paper's layout ``W`` is ``(out, in)``; this returns ``W^T``:

    * ``in == out``: the identity.
    * ``in > out``: the partial identity, ones on the main diagonal (the
      layer keeps the first ``out`` inputs).
    * ``in < out``: ``c * H[:in, :out]`` with ``H`` the Sylvester Hadamard
      matrix of order ``m = ceil(log2(out))`` and ``c = 2^(-(m - 1) / 2)``.
    """
    if fan_in >= fan_out:
        return np.eye(fan_in, fan_out)
    order = math.ceil(math.log2(fan_out))
    scale = 2.0 ** (-(order - 1) / 2.0)
    return scale * _sylvester_hadamard(order)[:fan_in, :fan_out]


@keras.saving.register_keras_serializable(package="kerasweights")
class ZerO(keras.initializers.Initializer):
    """ZerO initialization: identity and Hadamard blocks (Zhao et al. 2022).

    Deterministic and seed-free. For a Dense kernel ``(in, out)``
    (Algorithm 1 of the paper, transposed to Keras' layout):

    * ``in == out``: ``W = I``;
    * ``in > out``: ``W`` is the partial identity ``I*`` (ones on the main
      diagonal, zeros elsewhere);
    * ``in < out``: ``W = c * H_m[:in, :out]`` with ``H_m`` the Sylvester
      Hadamard matrix of size ``2^m``, ``m = ceil(log2(out))`` and
      ``c = 2^(-(m-1)/2)``. The Hadamard block breaks the symmetry a plain
      partial identity would leave between the extra output units.

    For a Conv1D/2D/3D kernel ``(spatial..., in, out)`` every spatial tap
    is zero except the centre (index ``(k - 1) // 2`` on each axis), which
    holds the Dense matrix above (the paper's convolutional variant).

    Because it is deterministic, two layers of the same shape that share
    the object start equal by design; the paper relies on the residual
    structure and on training dynamics to break that symmetry.

    Raises:
        InvalidArgumentError: A shape of rank below 2 or above 5.

    Example:

    >>> import keras
    >>> layer = keras.layers.Dense(
    ...     64, kernel_initializer="kerasweights>ZerO")

    Reference:
        Zhao, Schäfer & Anandkumar, "ZerO Initialization: Initializing
        Neural Networks with only Zeros and Ones", TMLR 2022.
        https://arxiv.org/abs/2110.12661
    """

    plugin_kind = "initializer"
    plugin_name = "zero"
    plugin_targets = ("dense_kernel", "conv_kernel")

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "ZerO")
        dtype = base.float_dtype(dtype, "ZerO")
        if not 2 <= len(shape) <= 5:
            raise InvalidArgumentError(
                "ZerO needs a Dense kernel (in, out) or a Conv1D/2D/3D "
                "kernel (spatial..., in, out). Received: "
                f"shape={shape}"
            )
        kernel = np.zeros(shape)
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        kernel[centre] = zero_matrix(shape[-2], shape[-1])
        return keras.ops.convert_to_tensor(kernel, dtype=dtype)

    def get_config(self):
        return {}
