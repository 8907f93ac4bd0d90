"""The ``--data`` files of the CLI: one reader, one wording per failure.

``export``, ``health`` and ``compress`` all read their ``--data`` file
here, so a bad file gets the same one-line `InputDataError` (exit 2) from
each of them. The file is a NumPy ``.npz`` (``numpy.savez``) or, where a
command takes one, a ``.npy`` (``numpy.save``). It is never unpickled:
object arrays are refused, not loaded.

Every array of the file must be numeric (bool, integer or float), finite
and hold at least one example along its first axis, whether or not the
command reads it. Which arrays a command reads, and how they must fit its
model, is checked by the functions below; the format is documented once,
in docs/getting-started.md ("--data files").

Nothing here imports TensorFlow: only NumPy, when a file is read.
"""

import os

__all__ = [
    "DataFile",
    "read_data_file",
    "arrays_named",
    "check_same_length",
    "check_input_shape",
    "check_class_labels",
    "with_file",
]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NUMERIC = "biuf"


class DataFile:
    """The arrays of one ``--data`` file.

    Attributes:
        path: The path as the user gave it.
        arrays: ``{name: numpy array}`` of a ``.npz``; for a ``.npy``, one
            entry whose name is ``None``.
        single: Whether the file is a ``.npy`` (one unnamed array).
    """

    def __init__(self, path, arrays, single):
        self.path = path
        self.arrays = arrays
        self.single = single

    @property
    def prefix(self):
        return f"--data file {self.path!r}"


def _error(text):
    from kerasweights.errors import InputDataError

    return InputDataError(text)


def _one_line(exc, limit=120):
    text = " ".join(str(exc).split())[:limit]
    return text or type(exc).__name__


def _array_name(key):
    return "its array" if key is None else f"array {key!r}"


def _index(key, flat, shape):
    """``key[i, j]`` for the element at flat position ``flat``."""
    import numpy as np

    where = np.unravel_index(flat, shape) if len(shape) > 1 else (flat,)
    name = "array" if key is None else key
    return f"{name}[{', '.join(str(int(i)) for i in where)}]"


def _shape(dims):
    """``(-1, 8, 8)`` for a batch axis followed by ``dims``."""
    shown = ["-1"] + ["-1" if d is None else str(d) for d in dims]
    return "(" + ", ".join(shown) + (",)" if len(shown) == 1 else ")")


def read_data_file(path):
    """Read a ``--data`` file and check every array in it.

    Args:
        path: The path the user gave.

    Returns:
        A `DataFile`.

    Raises:
        InputDataError: The file is missing, a folder, not a NumPy file,
            truncated or damaged, holds object arrays or zip members that
            are not arrays, or an array that is not numeric, holds NaN or
            infinite values, or holds no example (a scalar or an empty
            first axis).
    """
    import zipfile
    import zlib

    import numpy as np

    prefix = f"--data file {path!r}"
    written = "expected a file written by numpy.savez or numpy.save"
    if os.path.isdir(path):
        raise _error(
            f"{prefix} is a folder; expected a NumPy .npz or .npy file."
        )
    if not os.path.isfile(path):
        raise _error(
            f"{prefix} does not exist; expected the path of a NumPy .npz or "
            ".npy file."
        )
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith(_NPY_MAGIC) and head[:4] not in _ZIP_MAGICS:
        raise _error(
            f"{prefix} is not a NumPy file (it starts with neither the .npy "
            f"nor the .npz header); {written}."
        )

    def objects(key):
        return _error(
            f"{prefix}: {_array_name(key)} holds Python objects "
            "(dtype=object), which are never loaded; expected a numeric "
            "array."
        )

    damaged = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)
    key = None
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays, single = {None: loaded}, True
        else:
            arrays, single = {}, False
            with loaded:
                for key in loaded.files:
                    value = loaded[key]
                    if not isinstance(value, np.ndarray):
                        raise _error(
                            f"{prefix}: member {key!r} is not a NumPy array; "
                            "expected a .npz written by numpy.savez."
                        )
                    arrays[key] = value
    except damaged as exc:
        from kerasweights.errors import InputDataError

        if isinstance(exc, InputDataError):
            raise
        if isinstance(exc, ValueError) and "pickle" in str(exc):
            raise objects(key) from None
        raise _error(
            f"{prefix} is truncated or damaged ({_one_line(exc)}); expected "
            "a complete file written by numpy.savez or numpy.save."
        ) from None
    for key, array in arrays.items():
        _check_array(prefix, key, array)
    return DataFile(path, arrays, single)


def _check_array(prefix, key, array):
    import numpy as np

    if array.dtype.kind not in _NUMERIC:
        raise _error(
            f"{prefix}: {_array_name(key)} holds {array.dtype} values; "
            "expected numbers (bool, integer or float)."
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise _error(
            f"{prefix}: {_array_name(key)} has shape {array.shape}; expected "
            "at least one example along the first axis."
        )
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise _error(
                f"{prefix}: {_array_name(key)} holds {bad.size} NaN or "
                f"infinite values (the first at "
                f"{_index(key, bad[0], array.shape)}); expected finite "
                "numbers."
            )


def arrays_named(data, command, choices):
    """The arrays a command reads, by name.

    Args:
        data: A `DataFile`.
        command: The subcommand, for the message (``"health"``).
        choices: The accepted sets of names, preferred first, e.g.
            ``(("x_train", "y_train", "x_test", "y_test"), ("x", "y"))``.

    Returns:
        ``(names, arrays)``: the first set found whole, and its arrays in
        that order.

    Raises:
        InputDataError: The file is a ``.npy``, or holds no whole set; the
            message names the first missing array of the set the file
            comes closest to.
    """
    reads = " or ".join(
        ", ".join(repr(n) for n in names[:-1]) + f" and {names[-1]!r}"
        for names in choices
    )
    if data.single:
        raise _error(
            f"{data.prefix} holds one array (a .npy file); kerasweights "
            f"{command} reads a .npz with arrays {reads}."
        )
    for names in choices:
        if all(n in data.arrays for n in names):
            return names, tuple(data.arrays[n] for n in names)
    # The set most of whose names are present (the first on a tie).
    closest = max(
        choices, key=lambda names: sum(n in data.arrays for n in names)
    )
    missing = next(n for n in closest if n not in data.arrays)
    raise _error(
        f"{data.prefix} has no array named {missing!r}; kerasweights "
        f"{command} reads arrays {reads}. Received: {sorted(data.arrays)}"
    )


def check_same_length(data, first, second):
    """Two arrays of the file hold the same number of examples."""
    a, b = data.arrays[first], data.arrays[second]
    if len(a) != len(b):
        raise _error(
            f"{data.prefix}: arrays {first!r} and {second!r} must hold the "
            f"same number of examples (first axis). Received: "
            f"{first}.shape={a.shape}, {second}.shape={b.shape}"
        )


def check_input_shape(data, key, model):
    """Array ``key`` fits a single-input model's input (batch axis free).

    Models with several inputs are left to the command (and Keras).
    """
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        return
    array = data.arrays[key]
    try:
        want = tuple(inputs[0].shape[1:])
    except (TypeError, ValueError, AttributeError):
        return
    got = array.shape[1:]
    fits = len(got) == len(want) and all(
        w is None or w == g for w, g in zip(want, got, strict=True)
    )
    if not fits:
        name = getattr(inputs[0], "name", None) or "input"
        raise _error(
            f"{data.prefix}: array {key!r} has shape {array.shape}; the "
            f"model's input {name!r} takes {_shape(want)} (-1: any length)."
        )


def check_class_labels(data, key, classes):
    """Array ``key`` holds class indices, whole numbers in ``[0, classes)``.

    Float arrays are accepted when every value is a whole number
    (``3.0``); nothing is rounded.
    """
    import numpy as np

    y = data.arrays[key]
    flat = np.ravel(y)
    bad = (flat < 0) | (flat >= classes)
    if y.dtype.kind == "f":
        bad |= flat != np.trunc(flat)
    where = np.flatnonzero(bad)
    if where.size:
        i = int(where[0])
        value = flat[i].item()
        raise _error(
            f"{data.prefix}: array {key!r} must hold class labels, whole "
            f"numbers from 0 to {classes - 1} for the model's {classes} "
            f"output units. Received: {_index(key, i, y.shape)}={value!r}"
        )


def with_file(path, exc):
    """``exc``'s message as one line that names the ``--data`` file."""
    from kerasweights.errors import InputDataError

    text = " ".join(str(exc).split())
    if text.startswith("--data file "):
        return InputDataError(text)
    return InputDataError(f"--data file {path!r}: {text[:1].lower()}{text[1:]}")
