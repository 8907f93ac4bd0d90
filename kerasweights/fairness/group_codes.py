"""Checking the group codes a penalty, metric or training model receives.

The penalties, streaming metrics and training models of
`kerasweights.fairness` take the sensitive attribute as integer codes
``0, 1, ..., num_groups - 1`` (``0`` and ``1`` for the two-group
penalties). Any other value (a code of 2 with two groups, groups coded
1/2, a negative or fractional code, NaN) would otherwise fall outside every
group and silently turn the penalty into 0, so it is refused:

* on concrete values (NumPy arrays, lists, eager tensors) with an
  `InvalidArgumentError` naming the codes received and the codes expected;
* inside a traced TensorFlow function with a runtime assertion carrying the
  same message; XLA (``jit_compile=True``) compiles assertions away, so
  there the caller also receives a validity flag and turns its value into
  NaN instead of 0 (the training loss then shows ``nan``).

Recode any other coding first, for example
``np.unique(groups, return_inverse=True)[1]``.
"""

import numpy as np
from keras import ops

from kerasweights.errors import InvalidArgumentError

__all__ = ["check_group_codes", "expected_codes", "group_codes"]

_HINT = "recode them first, e.g. np.unique(groups, return_inverse=True)[1]"


def expected_codes(num_groups):
    """The allowed codes as text: ``{0, 1}`` or ``{0, 1, ..., 4}``."""
    if num_groups <= 3:
        return "{" + ", ".join(str(i) for i in range(num_groups)) + "}"
    return "{0, 1, ..., " + str(num_groups - 1) + "}"


def _message(owner, num_groups, received):
    return (
        f"`{owner}` needs integer group codes in {expected_codes(num_groups)}"
        f" (num_groups={num_groups}); {_HINT}. Received: group codes "
        f"{received}"
    )


def _concrete(groups):
    """``groups`` as a NumPy array if its values are known now, else None."""
    if isinstance(groups, (list, tuple, int, float, np.ndarray, np.generic)):
        return np.asarray(groups)
    numpy = getattr(groups, "numpy", None)
    if callable(numpy):
        try:
            return np.asarray(numpy())
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            return None
    return None


def check_group_codes(groups, num_groups, owner):
    """Raise if concrete ``groups`` hold a value outside the allowed codes.

    Args:
        groups: Group codes; symbolic tensors are not checked here.
        num_groups: The number of codes allowed (``0 .. num_groups - 1``).
        owner: The name of what needs the codes, for the message.

    Raises:
        InvalidArgumentError: A code is not an integer in
            ``[0, num_groups)``.
    """
    values = _concrete(groups)
    if values is None:
        return
    try:
        values = values.astype(np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            _message(owner, num_groups, f"of dtype {values.dtype}")
        ) from exc
    ok = (
        np.isfinite(values)
        & (values == np.round(values))
        & (values >= 0)
        & (values < num_groups)
    )
    if not ok.all():
        found = np.unique(values[np.isfinite(values)])
        shown = [int(v) if v == int(v) else float(v) for v in found[:8]]
        if not np.isfinite(values).all():
            shown.append("nan/inf")
        more = " ..." if found.size > 8 else ""
        raise InvalidArgumentError(
            _message(owner, num_groups, f"{shown}{more}")
        )


def group_codes(groups, num_groups, owner):
    """Flat int32 codes and a scalar flag, True when all codes are valid.

    Concrete values are checked at once (`check_group_codes`). Symbolic
    ones get a runtime assertion on the TensorFlow backend outside XLA; the
    flag lets the caller make its value NaN where assertions do not run.
    """
    check_group_codes(groups, num_groups, owner)
    raw = ops.reshape(ops.cast(groups, "float32"), (-1,))
    valid = ops.all(
        ops.logical_and(
            ops.logical_and(raw >= 0, raw < num_groups),
            ops.equal(raw, ops.floor(raw)),
        )
    )
    codes = ops.cast(raw, "int32")
    if _symbolic(groups):
        message = _message(owner, num_groups, "of this batch:")
        codes = _assert(codes, valid, message, raw)
    return codes, valid


def _symbolic(groups):
    return _concrete(groups) is None


def _assert(codes, valid, message, raw):
    import keras

    if keras.backend.backend() != "tensorflow":
        return codes
    import tensorflow as tf

    if tf.executing_eagerly():
        return codes
    check = tf.debugging.Assert(valid, [message, raw], summarize=16)
    with tf.control_dependencies([check]):
        return tf.identity(codes)


def nan_unless(valid, value):
    """``value`` where ``valid``, NaN otherwise (same dtype)."""
    value = ops.convert_to_tensor(value)
    return ops.where(valid, value, ops.cast(float("nan"), value.dtype))
