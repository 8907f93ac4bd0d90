"""The ``--data`` files of the CLI: one reader, one wording per failure.

``export``, ``health`` and ``compress`` all read their ``--data`` file
here, so a bad file gets the same one-line `InputDataError` (exit 2) from
each of them. The file is a NumPy ``.npz`` (``numpy.savez``) or, where a
command takes one, a ``.npy`` (``numpy.save``). It is never unpickled:
object arrays are refused, not loaded.

The path must name a regular file (never a FIFO, which is not even
opened for reading). Before anything is loaded, each array header is read
and the bytes it declares (shape times item size) compared with the bytes
that follow it, so a damaged or hostile header cannot make NumPy allocate
more than the file holds. Every array of the file must be numeric (bool,
integer or float), finite and hold at least one value (at least one
example along its first axis, no axis of length 0), whether or not the
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
    "check_float_range",
    "fit_float_dtype",
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
        InputDataError: The file is missing, a folder or not a regular file
            (a FIFO, a device, a symbolic link loop), cannot be read, is
            not a NumPy file, is truncated or damaged (an array header
            declaring more bytes than follow it, an encrypted zip member or
            one compressed by a method zip cannot read), holds object
            arrays or zip members that are not arrays, or an array that is
            not numeric, holds NaN or infinite values, or holds no value (a
            scalar, or an axis of length 0).
    """
    import zipfile
    import zlib

    import numpy as np

    prefix = f"--data file {path!r}"
    written = "expected a file written by numpy.savez or numpy.save"

    def objects(key):
        return _error(
            f"{prefix}: {_array_name(key)} holds Python objects "
            "(dtype=object), which are never loaded; expected a numeric "
            "array."
        )

    def damaged(reason):
        return _error(
            f"{prefix} is truncated or damaged ({reason}); expected a "
            "complete file written by numpy.savez or numpy.save."
        )

    f = _open_regular_file(path, prefix)
    with f:
        head = f.read(6)
        if not head.startswith(_NPY_MAGIC) and head[:4] not in _ZIP_MAGICS:
            raise _error(
                f"{prefix} is not a NumPy file (it starts with neither the "
                f".npy nor the .npz header); {written}."
            )
        # Nothing is loaded before every array header has been read and
        # the bytes it declares are known to be there: a damaged or
        # hostile header must not make NumPy allocate terabytes.
        failures = (
            OSError,
            EOFError,
            ValueError,
            RuntimeError,  # an encrypted zip member
            NotImplementedError,  # a compression method zip cannot read
            MemoryError,
            zipfile.BadZipFile,
            zlib.error,
        )
        key = None
        try:
            f.seek(0)
            if head.startswith(_NPY_MAGIC):
                _check_declared_size(f, os.fstat(f.fileno()).st_size)
            else:
                _check_zip_members(f)
            f.seek(0)
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                arrays, single = {None: loaded}, True
            else:
                arrays, single = {}, False
                with loaded:
                    for key in loaded.files:
                        value = loaded[key]
                        if not isinstance(value, np.ndarray):
                            raise _error(
                                f"{prefix}: member {key!r} is not a NumPy "
                                "array; expected a .npz written by "
                                "numpy.savez."
                            )
                        arrays[key] = value
        except _Damaged as exc:
            raise damaged(exc.reason) from None
        except _Objects as exc:
            raise objects(exc.key) from None
        except failures as exc:
            from kerasweights.errors import InputDataError

            if isinstance(exc, InputDataError):
                raise
            if isinstance(exc, ValueError) and "pickle" in str(exc):
                raise objects(key) from None
            if isinstance(exc, MemoryError):
                raise _error(
                    f"{prefix}: {_array_name(key)} does not fit in memory "
                    f"({_one_line(exc)}); expected arrays this machine can "
                    "hold."
                ) from None
            raise damaged(_one_line(exc)) from None
    for key, array in arrays.items():
        _check_array(prefix, key, array)
    return DataFile(path, arrays, single)


class _Damaged(Exception):
    """A file found damaged before loading; ``reason`` says how."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class _Objects(Exception):
    """An array header declaring Python objects; ``key`` names the array."""

    def __init__(self, key):
        super().__init__(key)
        self.key = key


def _open_regular_file(path, prefix):
    """``path`` opened for reading, once it is known to be a regular file.

    It is opened without blocking and checked on the open descriptor, so a
    FIFO is never waited on and a path swapped after the check is still
    refused.
    """
    import errno
    import stat

    expected = "expected a NumPy .npz or .npy file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _error(
                f"{prefix} is not a regular file (a symbolic link loop); "
                f"{expected}."
            ) from None
        if os.path.isdir(path):
            raise _error(f"{prefix} is a folder; {expected}.") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not (
            os.path.lexists(path)
        ):
            raise _error(
                f"{prefix} does not exist; expected the path of a NumPy "
                ".npz or .npy file."
            ) from None
        if exc.errno == errno.ENOENT:
            raise _error(
                f"{prefix} is a symbolic link to a missing file; {expected}."
            ) from None
        reason = exc.strerror or type(exc).__name__
        raise _error(
            f"{prefix} cannot be read ({reason.lower()}); {expected} "
            "that you may read."
        ) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise _error(f"{prefix} is a folder; {expected}.")
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
        )
        raise _error(f"{prefix} is not a regular file ({kind}); {expected}.")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _check_declared_size(fp, available):
    """The ``.npy`` at ``fp`` declares no more bytes than ``available``.

    ``available`` counts the bytes of the file (or zip member) from
    ``fp``'s position, header included. Raises `_Damaged` or `_Objects`.
    """
    import math

    from numpy.lib import format as npy

    start = fp.tell()
    try:
        version = npy.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fp)
        else:
            shape, _, dtype = npy.read_array_header_2_0(fp)
    except (ValueError, EOFError, OSError) as exc:
        raise _Damaged(f"unreadable array header: {_one_line(exc)}") from None
    if dtype.hasobject:
        raise _Objects(None)
    declared = math.prod(shape) * dtype.itemsize
    left = available - (fp.tell() - start)
    if declared > left:
        raise _Damaged(
            f"an array header declares shape {shape} of {dtype}, "
            f"{declared} bytes, but {max(left, 0)} bytes follow it"
        )


# Compression methods Python's zipfile reads: stored, deflated, bzip2, lzma.
_ZIP_METHODS = (0, 8, 12, 14)


def _check_zip_members(fp):
    """Every ``.npy`` member of the zip at ``fp`` is readable and declares
    no more bytes than the member holds. Raises `_Damaged`, `_Objects` or
    zip's own errors."""
    import zipfile

    size = os.fstat(fp.fileno()).st_size
    with zipfile.ZipFile(fp) as archive:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if info.flag_bits & 0x1:
                raise _Damaged(f"member {key!r} is encrypted")
            if info.compress_type not in _ZIP_METHODS:
                raise _Damaged(
                    f"member {key!r} uses compression method "
                    f"{info.compress_type}, which zip cannot read"
                )
            if info.header_offset + info.compress_size > size or (
                info.compress_type == zipfile.ZIP_STORED
                and info.compress_size != info.file_size
            ):
                # The sizes the directory gives bound what is allocated.
                raise _Damaged(
                    f"member {key!r} claims {info.file_size} bytes that "
                    "the file does not hold"
                )
            with archive.open(info) as member:
                if member.read(6) != _NPY_MAGIC:
                    continue  # refused as "not a NumPy array" on loading
            with archive.open(info) as member:
                try:
                    _check_declared_size(member, info.file_size)
                except _Objects:
                    raise _Objects(key) from None
                except _Damaged as exc:
                    raise _Damaged(f"member {key!r}: {exc.reason}") from None


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
    if array.size == 0:
        axis = array.shape.index(0)
        raise _error(
            f"{prefix}: {_array_name(key)} has shape {array.shape}, which "
            f"holds no values (axis {axis} has length 0); expected every "
            "axis to have a length of at least 1."
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


def fit_float_dtype():
    """The float dtype Keras's ``fit`` and ``evaluate`` cast arrays to.

    Keras casts every float array of another precision to ``floatx``
    (``float32`` unless configured), whatever the model's own dtype.
    Read without importing Keras when it is not imported yet: from the
    ``floatx`` entry of Keras's ``keras.json``.
    """
    import sys

    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return str(keras.config.floatx())
        except AttributeError:
            pass
    import json

    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    try:
        with open(os.path.join(home, "keras.json")) as f:
            value = json.load(f).get("floatx", "float32")
    except (OSError, ValueError, AttributeError):
        return "float32"
    return (
        value
        if value in ("float16", "bfloat16", "float32", "float64")
        else ("float32")
    )


def check_float_range(data, key, dtype, why=None):
    """Float array ``key`` keeps every value finite when cast to ``dtype``.

    A finite ``float64`` of ``1e300`` becomes infinite as ``float32``; it
    is refused here rather than fed to the model as infinity.

    Args:
        data: A `DataFile`.
        key: The array's name (``None`` for a ``.npy``).
        dtype: The dtype the command casts the array to.
        why: Why it is cast, for the message; by default, that Keras
            casts it to ``dtype`` to train.
    """
    import numpy as np

    array = data.arrays[key]
    if array.dtype.kind != "f":
        return
    try:
        target = np.dtype(dtype)
    except TypeError:
        return  # bfloat16 and other dtypes NumPy does not know
    if target.kind != "f" or np.finfo(array.dtype).max <= np.finfo(target).max:
        return
    with np.errstate(over="ignore"):
        bad = np.flatnonzero(np.isinf(array.astype(target)))
    if bad.size:
        i = int(bad[0])
        value = array.flat[i].item()
        why = why or f"Keras casts it to {target} to train the model"
        raise _error(
            f"{data.prefix}: {_array_name(key)} holds {bad.size} values "
            f"beyond {target}'s range (the first at "
            f"{_index(key, i, array.shape)}={value:g}); expected magnitudes "
            f"up to {float(np.finfo(target).max):.4g}, since {why}, which "
            "would make them infinite."
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
        InputDataError: The file is a ``.npy``, or holds no whole set (the
            message names the first missing array of the set the file
            comes closest to), or a float array of the set holds values
            that Keras's cast to ``floatx`` (`fit_float_dtype`) would make
            infinite: the commands that call this train or evaluate the
            model with Keras.
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
            # Keras's fit and evaluate cast each float array to floatx.
            dtype = fit_float_dtype()
            for n in names:
                check_float_range(data, n, dtype)
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
