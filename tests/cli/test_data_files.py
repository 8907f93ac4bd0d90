"""One `--data` reader for `export`, `health` and `compress`: the same bad
file gets the same one line (exit 2, no traceback) from each command."""

import errno
import os
import struct
import warnings
import zipfile

import keras
import numpy as np
import pytest

from kerasweights.cli import main

COMMANDS = ("export", "health", "compress")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """Input 'x' of 4 features, 3 softmax units, sparse cross-entropy."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("model") / "m.keras"
    model.save(path)
    return path


def _argv(command, model, data, out):
    argv = [command, str(model)]
    if command != "health":
        argv.append(str(out))
    argv += ["--data", str(data)]
    if command == "compress":
        argv += ["--prune", "0.5"]
    if command == "health":
        argv += ["--epochs", "1"]
    return argv


def _run(command, model, data, tmp_path, capsys):
    """Exit code and the one error line; nothing may be written."""
    out = tmp_path / f"out-{command}"
    code = main(_argv(command, model, data, out))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: --data file "), lines[0]
    assert "Traceback" not in captured.err and "pickle" not in lines[0]
    assert not out.exists()
    return code, lines[0]


def _x(n=12):
    return np.random.default_rng(0).normal(size=(n, 4)).astype("float32")


def _y(n=12):
    return np.arange(n) % 3


# Each maker writes a bad file at `path` and returns the words the one
# line must hold. Every command reads the file before it loads the model.
def _missing(path):
    return "does not exist; expected the path of a NumPy .npz or .npy file"


def _folder(path):
    path.mkdir()
    return "is a folder; expected a NumPy .npz or .npy file"


def _text(path):
    path.write_text("x,y\n1,2\n")
    return "is not a NumPy file (it starts with neither"


def _empty(path):
    path.write_bytes(b"")
    return "is not a NumPy file"


def _truncated(path):
    np.savez(path, x=_x(), y=_y())
    path.write_bytes(path.read_bytes()[:300])
    return "is truncated or damaged ("


def _zip_of_text(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.txt", "1 2 3")
    return "member 'x.txt' is not a NumPy array"


def _objects(path):
    np.savez(path, x=np.array([1, "a", None], dtype=object), y=_y(3))
    return "array 'x' holds Python objects (dtype=object), which are never"


def _object_npy(path):
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return "its array holds Python objects"


def _strings(path):
    np.savez(path, x=_x(), y=np.array(["cat"] * 12))
    return "array 'y' holds <U3 values; expected numbers (bool, integer or"


def _complex(path):
    np.savez(path, x=_x().astype("c8"), y=_y())
    return "array 'x' holds complex64 values"


def _nan(path):
    x = _x()
    x[5, 2] = np.nan
    np.savez(path, x=x, y=_y())
    return "array 'x' holds 1 NaN or infinite values (the first at x[5, 2])"


def _inf_labels(path):
    np.savez(path, x=_x(), y=np.r_[np.zeros(11), np.inf])
    return "array 'y' holds 1 NaN or infinite values (the first at y[11])"


def _empty_array(path):
    np.savez(path, x=np.zeros((0, 4), "float32"), y=_y())
    return "array 'x' has shape (0, 4); expected at least one example"


def _scalar(path):
    np.savez(path, x=_x(), y=np.float32(3))
    return "array 'y' has shape (); expected at least one example"


def _npy_header(shape, descr="<f8"):
    """A version 1.0 .npy header declaring ``shape``, then 64 zero bytes."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape})
    header = header.encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _npy_bytes(array):
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _huge_npy(path):
    # Loading it would allocate 24 TB (MemoryError) or read a short file.
    path.write_bytes(_npy_header((10**12, 3)) + bytes(64))
    return (
        "is truncated or damaged (an array header declares shape "
        "(1000000000000, 3) of float64, 24000000000000 bytes, but 64 bytes "
        "follow it)"
    )


def _huge_member(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy_header((2**62, 2**62)) + bytes(64))
        z.writestr("y.npy", _npy_bytes(_y()))
    return "(member 'x': an array header declares shape (4611686018427387904"


def _patched_zip(path, local, central):
    """A .npz of 'x' and 'y' with bytes of the first member's headers
    changed: ``local(raw, i)`` and ``central(raw, j)`` at their offsets."""
    np.savez(path, x=_x(), y=_y())
    raw = bytearray(path.read_bytes())
    local(raw, raw.find(b"PK\x03\x04"))
    central(raw, raw.find(b"PK\x01\x02"))
    path.write_bytes(bytes(raw))


def _encrypted(path):
    def flag(offset):
        def set_bit(raw, i):
            raw[i + offset] |= 1

        return set_bit

    _patched_zip(path, flag(6), flag(8))
    return "is truncated or damaged (member 'x' is encrypted)"


def _unknown_method(path):
    def method(offset):
        def put(raw, i):
            raw[i + offset : i + offset + 2] = struct.pack("<H", 99)

        return put

    _patched_zip(path, method(8), method(10))
    return "(member 'x' uses compression method 99, which zip cannot read)"


def _stored_size_lie(path):
    # A stored member whose directory entry claims 2 GiB: the sizes in the
    # directory are checked before they bound an allocation.
    np.savez(path, x=_x(), y=_y())
    raw = bytearray(path.read_bytes())
    j = raw.find(b"PK\x01\x02")
    raw[j + 24 : j + 28] = struct.pack("<I", 2**31)
    path.write_bytes(bytes(raw))
    return "(member 'x' claims 2147483648 bytes that the file does not hold)"


def _zero_axis(path):
    np.savez(path, x=np.zeros((12, 0), "float32"), y=_y())
    return (
        "array 'x' has shape (12, 0), which holds no values (axis 1 has "
        "length 0)"
    )


def _fifo(path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(path)  # never opened for reading: that would block
    return "is not a regular file (a FIFO); expected a NumPy .npz or .npy"


def _link_loop(path):
    path.symlink_to(path.name)
    return "is not a regular file (a symbolic link loop)"


def _dangling_link(path):
    path.symlink_to(path.parent / "gone.npz")
    return "is a symbolic link to a missing file"


def _unreadable(path):
    np.savez(path, x=_x(), y=_y())
    path.chmod(0)
    return "cannot be read (permission denied); expected a NumPy .npz or"


FILE_FAULTS = [
    _missing,
    _folder,
    _text,
    _empty,
    _truncated,
    _zip_of_text,
    _objects,
    _object_npy,
    _strings,
    _complex,
    _nan,
    _inf_labels,
    _empty_array,
    _scalar,
    _huge_npy,
    _huge_member,
    _encrypted,
    _unknown_method,
    _stored_size_lie,
    _zero_axis,
    _fifo,
    _link_loop,
    _dangling_link,
    _unreadable,
]


def _deny(path):
    """``os.open`` that refuses ``path`` as a file without read permission
    would (for a run as root, whom permissions do not stop)."""
    real = os.open

    def fake(name, *args, **kwargs):
        if os.fspath(name) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real(name, *args, **kwargs)

    return fake


@pytest.mark.parametrize("make", FILE_FAULTS, ids=lambda f: f.__name__[1:])
def test_a_bad_file_is_the_same_line_from_every_command(
    model_file, tmp_path, capsys, monkeypatch, make
):
    npy = make in (_object_npy, _huge_npy)
    path = tmp_path / ("d.npy" if npy else "d.npz")
    words = make(path)
    if make is _unreadable and os.access(path, os.R_OK):
        monkeypatch.setattr(os, "open", _deny(path))
    said = {}
    for command in COMMANDS:
        code, line = _run(command, model_file, path, tmp_path, capsys)
        assert code == 2, (command, line)
        said[command] = line
    assert len(set(said.values())) == 1, said
    line = said["export"]
    assert line.startswith(f"error: --data file {str(path)!r}"), line
    assert words in line, line


# Faults that need the model: `health` and `compress` read arrays 'x' and
# 'y' and check them against the model they load, with the same words.
def _wrong_shape(path):
    np.savez(path, x=np.zeros((12, 5), "float32"), y=_y())
    return (
        "array 'x' has shape (12, 5); the model's input 'x' takes (-1, 4) "
        "(-1: any length)."
    )


def _label_too_big(path):
    np.savez(path, x=_x(), y=np.r_[_y(11), 7])
    return (
        "array 'y' must hold class labels, whole numbers from 0 to 2 for "
        "the model's 3 output units. Received: y[11]=7"
    )


def _label_negative(path):
    np.savez(path, x=_x(), y=np.r_[-1, _y(11)])
    return "Received: y[0]=-1"


def _label_fraction(path):
    np.savez(path, x=_x(), y=np.r_[_y(11), 1.5])
    return "whole numbers from 0 to 2 for the model's 3 output units. " + (
        "Received: y[11]=1.5"
    )


def _lengths(path):
    np.savez(path, x=_x(), y=_y(11))
    return (
        "arrays 'x' and 'y' must hold the same number of examples (first "
        "axis). Received: x.shape=(12, 4), y.shape=(11,)"
    )


def _no_y(path):
    np.savez(path, x=_x())
    return "has no array named 'y'; kerasweights "


def _one_npy(path):
    np.save(path, _x())
    return "holds one array (a .npy file); kerasweights "


def _beyond_float32(path):
    # Finite as float64, infinite once Keras casts it to float32.
    x = _x().astype("float64")
    x[3, 1] = -1e300
    np.savez(path, x=x, y=_y())
    return (
        "array 'x' holds 1 values beyond float32's range (the first at "
        "x[3, 1]=-1e+300); expected magnitudes up to 3.403e+38, since Keras "
        "casts it to float32 to train the model"
    )


MODEL_FAULTS = [
    _beyond_float32,
    _wrong_shape,
    _label_too_big,
    _label_negative,
    _label_fraction,
    _lengths,
    _no_y,
    _one_npy,
]


@pytest.mark.parametrize("make", MODEL_FAULTS, ids=lambda f: f.__name__[1:])
def test_health_and_compress_say_the_same_about_x_and_y(
    model_file, tmp_path, capsys, make
):
    path = tmp_path / ("d.npy" if make is _one_npy else "d.npz")
    words = make(path)
    said = {}
    for command in ("health", "compress"):
        code, line = _run(command, model_file, path, tmp_path, capsys)
        assert code == 2, (command, line)
        assert words in line, line
        # The part before the command's own list of the arrays it reads.
        said[command] = line.split("; kerasweights ")[0]
    assert said["health"] == said["compress"], said


def test_which_arrays_each_command_reads_is_named(model_file, tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=_x(), y_train=_y())
    _, line = _run("health", model_file, path, tmp_path, capsys)
    assert line.endswith(
        "has no array named 'x'; kerasweights health reads arrays 'x' and "
        "'y'. Received: ['x_train', 'y_train']"
    )
    _, line = _run("compress", model_file, path, tmp_path, capsys)
    assert line.endswith(
        "has no array named 'x_test'; kerasweights compress reads arrays "
        "'x_train', 'y_train', 'x_test' and 'y_test' or 'x' and 'y'. "
        "Received: ['x_train', 'y_train']"
    )


def test_compress_needs_ten_examples_to_split(model_file, tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(9), y=_y(9))
    code, line = _run("compress", model_file, path, tmp_path, capsys)
    assert code == 2
    assert (
        "arrays 'x' and 'y' hold 9 examples; kerasweights compress needs"
        in (line)
    )


def test_compress_checks_test_labels_too(model_file, tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=_x(), y_train=_y(), x_test=_x(), y_test=_y() + 1)
    code, line = _run("compress", model_file, path, tmp_path, capsys)
    assert code == 2
    assert "array 'y_test' must hold class labels" in line
    assert line.endswith("Received: y_test[2]=3")


def test_export_names_the_file_and_the_shape_it_expected(
    model_file, tmp_path, capsys
):
    # Export's shape check is the library's (`validate_check_data`): other
    # words, the same one line naming the file, the array and the shape.
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((12, 5), "float32"))
    code, line = _run("export", model_file, path, tmp_path, capsys)
    assert code == 2
    assert "'x' has shape (12, 5)" in line and "(-1, 4)" in line


def test_whole_number_float_labels_and_one_hot_rows_pass_the_checks(
    model_file, tmp_path
):
    from kerasweights.cli import _data
    from kerasweights.saving import load_model

    model = load_model(model_file, compile=False)
    path = tmp_path / "d.npz"
    np.savez(path, x=_x(), y=_y().astype("float32"), y1=np.eye(3)[_y()])
    data = _data.read_data_file(str(path))
    _data.check_input_shape(data, "x", model)
    _data.check_class_labels(data, "y", 3)
    _data.check_same_length(data, "x", "y1")


def test_export_refuses_values_beyond_its_input_dtype(
    model_file, tmp_path, capsys
):
    path = tmp_path / "d.npz"
    _beyond_float32(path)
    np.savez(path, x=np.load(path)["x"])  # export reads one array per input
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow warning
        code, line = _run("export", model_file, path, tmp_path, capsys)
    assert code == 2
    assert "beyond float32's range" in line and "x[3, 1]" in line


def test_the_float_range_follows_the_dtype_of_the_cast(tmp_path):
    from kerasweights.cli import _data
    from kerasweights.errors import InputDataError

    path = tmp_path / "d.npz"
    _beyond_float32(path)
    # The reader alone does not refuse: a float64 model takes 1e300.
    data = _data.read_data_file(str(path))
    _data.check_float_range(data, "x", "float64")
    _data.check_float_range(data, "y", "float32")  # integers: no cast
    with pytest.raises(InputDataError, match=r"beyond float16's range"):
        _data.check_float_range(data, "x", "float16")
    # Keras casts to floatx: with floatx float64, nothing overflows.
    floatx = keras.config.floatx()
    try:
        keras.config.set_floatx("float64")
        assert _data.fit_float_dtype() == "float64"
        _data.arrays_named(data, "health", (("x", "y"),))
    finally:
        keras.config.set_floatx(floatx)
    assert _data.fit_float_dtype() == floatx
    with pytest.raises(InputDataError, match=r"x\[3, 1\]=-1e\+300"):
        _data.arrays_named(data, "health", (("x", "y"),))
    # Values that round to float32's largest number stay finite.
    np.savez(path, x=np.full((12, 4), 3.4028235e38), y=_y())
    data = _data.read_data_file(str(path))
    _data.arrays_named(data, "health", (("x", "y"),))


def test_an_array_too_big_for_memory_is_one_line(tmp_path, monkeypatch):
    # A header within the file's size can still ask for more memory than
    # the machine has (a well-compressed member): NumPy's MemoryError.
    from kerasweights.cli import _data
    from kerasweights.errors import InputDataError

    path = tmp_path / "d.npy"
    np.save(path, _x())

    def load(*args, **kwargs):
        raise MemoryError("Unable to allocate 22 TiB for an array")

    monkeypatch.setattr(np, "load", load)
    with pytest.raises(InputDataError) as caught:
        _data.read_data_file(str(path))
    assert str(caught.value) == (
        f"--data file {str(path)!r}: its array does not fit in memory "
        "(Unable to allocate 22 TiB for an array); expected arrays this "
        "machine can hold."
    )
