"""TFLite conversion that runs on the stock interpreter (no Flex delegate).

The TFLite converter cannot lower the loop of a recurrent layer when the
batch size is unknown: the loop's tensor list needs a static element
shape, and the usual workaround (``SELECT_TF_OPS``) produces a model the
stock interpreter cannot run. We therefore only ever convert with the
built-in TFLite operators, and pick the first way that works:

1. **batch pinned**: the batch axis is fixed to ``batch_size`` (1 by
   default) and every other axis stays as the model declares it, so a
   recurrent model on ``Input((None, 8))`` still takes any sequence length
   (the interpreter resizes its input per call);
2. **batch and time pinned, loops unrolled**: with ``time_steps`` given,
   unknown non-batch axes are fixed to it as well, and when the pinned
   loop does not convert or serve, every recurrent layer that takes an
   ``unroll`` argument is rebuilt with ``unroll=True`` (same weights), so
   the graph holds no loop at all.

Whichever way is used is recorded in the report (``"strategy"``), and the
converted model is run in ``tf.lite.Interpreter`` with the built-in op
resolver on the check data and compared with the Keras model, example
group by example group. When no way converts and matches, one
`ExportVerificationError` says what was tried and what to do.
"""

import contextlib
import os
import re
import shutil
import sys
import tempfile
import warnings

import numpy as np

from kerasweights.errors import ExportVerificationError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import OutputExistsError

__all__ = ["TFLITE_NAME", "check_tflite_options", "export_tflite"]

TFLITE_NAME = "model.tflite"


def _positive(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    if value < 1:
        raise InvalidArgumentError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def check_tflite_options(signature, batch_size=1, time_steps=None):
    """Validate the TFLite options against a model's serving signature.

    Args:
        signature: `model_signature` of the model.
        batch_size: The batch size the TFLite model will take.
        time_steps: A length for every unknown non-batch axis, or ``None``
            to keep those axes dynamic.

    Returns:
        ``(batch_size, time_steps)`` as ints (``time_steps`` may be None).

    Raises:
        InvalidTypeError, InvalidArgumentError: A value is not a positive
            integer, or ``time_steps`` is given for a model without an
            unknown non-batch axis.
    """
    batch_size = _positive("batch_size", batch_size)
    time_steps = _positive("time_steps", time_steps)
    if time_steps is not None and not any(
        d is None for s in signature["inputs"].values() for d in s["shape"][1:]
    ):
        shapes = {n: s["shape"] for n, s in signature["inputs"].items()}
        raise InvalidArgumentError(
            f"`time_steps` (--tflite-time-steps) {time_steps} pins unknown "
            f"axes, but the model's inputs {shapes} have none besides the "
            "batch axis; leave it out."
        )
    return batch_size, time_steps


def _pinned_signature(signature, batch_size, time_steps):
    inputs = {}
    for name, spec in signature["inputs"].items():
        rest = [
            time_steps if (d is None and time_steps) else d
            for d in spec["shape"][1:]
        ]
        inputs[name] = {**spec, "shape": [batch_size, *rest]}
    return {**signature, "inputs": inputs}


def _loops(model):
    """The recurrent layers of ``model`` that take an ``unroll`` flag."""
    import keras

    from kerasweights.export.graph_fixes import all_layers

    return [
        layer
        for layer in all_layers(model)
        if isinstance(layer, keras.layers.RNN)
        and "unroll" in layer.get_config()
    ]


def _unrolled_copy(model, pinned):
    """A copy of ``model`` whose recurrent layers unroll their loop.

    The copy is built on inputs with the pinned shapes, so that no trace of
    it ever sees an unknown time axis (an unrolled loop needs its length).
    """
    import keras

    inputs = [
        keras.Input(batch_shape=spec["shape"], dtype=spec["dtype"], name=name)
        for name, spec in pinned["inputs"].items()
    ]
    if pinned["structure"] == "dict":
        inputs = dict(zip(pinned["inputs"], inputs, strict=True))
    elif pinned["structure"] == "single":
        inputs = inputs[0]

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.RNN) and "unroll" in config:
            config["unroll"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(
        model, input_tensors=inputs, clone_function=clone, recursive=True
    )
    copy.set_weights(model.get_weights())
    return copy


@contextlib.contextmanager
def _quiet_stderr():
    """Keep the converter's native log lines off the user's terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _convert(model, signature, workdir):
    import tensorflow as tf

    from kerasweights.export.saved_model import _write

    folder = tempfile.mkdtemp(prefix="saved-model-", dir=workdir)
    _write(model, folder, signature)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        folder, signature_keys=["serving_default"]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with _quiet_stderr():
        return converter.convert()


def _fit_axis(value, axis, length):
    have = value.shape[axis]
    if have < length:
        value = np.concatenate([value] * -(-length // have), axis=axis)
    return np.take(value, np.arange(length), axis=axis)


def _tflite_cases(signature, pinned, data, batch_size, seed=0):
    """Check batches shaped for the pinned signature: (inputs, groups)."""
    from kerasweights.export.verification import check_inputs

    cases = check_inputs(signature["inputs"], data=data, seed=seed)
    shaped = []
    for case in cases:
        batch = {}
        for name, value in case.items():
            for axis, dim in enumerate(pinned["inputs"][name]["shape"][1:], 1):
                if dim is not None and value.shape[axis] != dim:
                    value = _fit_axis(value, axis, dim)
            batch[name] = value
        n = min(len(v) for v in batch.values())
        groups = max(1, min(n // batch_size, 4))
        if n < batch_size:
            batch = {k: _fit_axis(v, 0, batch_size) for k, v in batch.items()}
        shaped.append((batch, groups))
    # Two batches that pin every axis the same way are one check.
    unique, seen = [], set()
    for batch, groups in shaped:
        key = tuple((k, v.shape) for k, v in sorted(batch.items()))
        if key not in seen:
            seen.add(key)
            unique.append((batch, groups))
    return unique


def _keras_outputs(model, signature, batch):
    from kerasweights.export.verification import _model_outputs

    return _model_outputs(
        model, signature["outputs"], signature["structure"], batch
    )


def _check(content, model, signature, pinned, data, batch_size, rtol, atol):
    import tensorflow as tf

    resolver = tf.lite.experimental.OpResolverType
    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to ai_edge_litert.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            model_content=content,
            experimental_op_resolver_type=(
                resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        )
    runner = interpreter.get_signature_runner("serving_default")
    worst, shapes = 0.0, []
    for batch, groups in _tflite_cases(signature, pinned, data, batch_size):
        for g in range(groups):
            part = {
                name: np.ascontiguousarray(
                    value[g * batch_size : (g + 1) * batch_size]
                ).astype(pinned["inputs"][name]["dtype"])
                for name, value in batch.items()
            }
            got = runner(**part)
            want = _keras_outputs(model, signature, part)
            shapes.append({n: list(v.shape) for n, v in part.items()})
            for name in signature["outputs"]:
                if got[name].shape != want[name].shape:
                    raise ExportVerificationError(
                        f"TFLite output {name!r} has shape {got[name].shape} "
                        f"on inputs {shapes[-1]}; the Keras model gives "
                        f"{want[name].shape}."
                    )
                diff = float(np.max(np.abs(got[name] - want[name])))
                if not np.allclose(got[name], want[name], rtol, atol):
                    raise ExportVerificationError(
                        f"TFLite output {name!r} differs from the Keras model "
                        f"by up to {diff:.3g} on inputs {shapes[-1]} "
                        f"(tolerance rtol={rtol}, atol={atol})."
                    )
                worst = max(worst, diff)
    return worst, shapes


def _short(exc):
    """One readable reason from a converter or interpreter error."""
    text = str(exc)
    ops = []
    for op in re.findall(r"'tf\.(\w+)' op is neither", text) + re.findall(
        r"Custom ops: ([\w, ]+)", text
    ):
        for name in op.split(","):
            if name.strip() and name.strip() not in ops:
                ops.append(name.strip())
    if ops:
        places = []
        for op, path in re.findall(r'fused\["(\w+):", "([^"@]+)@', text):
            if op in ops:
                where = path.rsplit("/", 1)[0]
                if where not in places:
                    places.append(where)
        where = f" (in {', '.join(places[:3])})" if places else ""
        return (
            f"TensorFlow ops {', '.join(ops)}{where} have no built-in "
            "TFLite kernel"
        )
    lines = [
        line.strip()
        for line in text.splitlines()
        if "error" in line.lower() and line.strip()
    ]
    text = " ".join((lines[0] if lines else text).split())
    text = re.sub(r"loc\(.*?\)\)+:?", "", text).strip()
    return text[:200]


def convert_tflite(
    model,
    batch_size=1,
    time_steps=None,
    data=None,
    rtol=1e-4,
    atol=1e-5,
):
    """Convert ``model`` to TFLite and check it; return bytes and report.

    See the module docstring for the ways tried. Arguments as
    `export_tflite`.

    Returns:
        ``(content, report)``: the ``.tflite`` bytes and a dict with
        ``"strategy"``, ``"batch_size"``, ``"inputs"`` (pinned shapes),
        ``"outputs"``, ``"checked"`` (input shapes fed) and
        ``"max_abs_diff"``.
    """
    from kerasweights.export.saved_model import ServingModelNote
    from kerasweights.export.saved_model import model_signature
    from kerasweights.export.saved_model import serving_model
    from kerasweights.export.verification import check_model_runs
    from kerasweights.export.verification import validate_check_data

    model, data, note = serving_model(model, data)
    if note:
        warnings.warn(note, ServingModelNote, stacklevel=2)
    signature = model_signature(model)
    batch_size, time_steps = check_tflite_options(
        signature, batch_size, time_steps
    )
    if data is not None:
        validate_check_data(signature["inputs"], data)
        check_model_runs(model, data)
    pinned = _pinned_signature(signature, batch_size, time_steps)
    dynamic = any(
        d is None for s in pinned["inputs"].values() for d in s["shape"][1:]
    )
    ways = ["batch pinned"]
    if not dynamic and _loops(model):
        ways.append("loops unrolled")
    failures = []
    with tempfile.TemporaryDirectory(prefix="kerasweights-tflite-") as tmp:
        for way in ways:
            try:
                candidate = model
                if way == "loops unrolled":
                    candidate = _unrolled_copy(model, pinned)
                content = _convert(candidate, pinned, tmp)
                worst, shapes = _check(
                    content,
                    model,
                    signature,
                    pinned,
                    data,
                    batch_size,
                    rtol,
                    atol,
                )
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(f"{way}: {_short(exc)}")
                continue
            strategy = f"batch pinned to {batch_size}"
            if time_steps:
                strategy += f", unknown axes pinned to {time_steps}"
            else:
                strategy += ", other axes as the model declares"
            if way == "loops unrolled":
                strategy += ", recurrent loops unrolled"
            return content, {
                "strategy": strategy,
                "batch_size": batch_size,
                "time_steps": time_steps,
                "inputs": pinned["inputs"],
                "outputs": signature["outputs"],
                "checked": shapes,
                "max_abs_diff": worst,
                "tolerance": (rtol, atol),
            }
    hint = (
        ""
        if time_steps
        or not any(
            d is None
            for s in signature["inputs"].values()
            for d in s["shape"][1:]
        )
        else "; pass time_steps (--tflite-time-steps) to pin the time "
        "length and unroll the recurrent loops"
    )
    raise ExportVerificationError(
        f"Model {model.name!r} cannot be converted to a TFLite model that "
        "the stock interpreter runs with built-in operators only ("
        + "; ".join(failures)
        + ")"
        + hint
        + "."
    )


def export_tflite(
    model,
    path,
    batch_size=1,
    time_steps=None,
    data=None,
    overwrite=False,
    rtol=1e-4,
    atol=1e-5,
):
    """Write ``model`` as a ``.tflite`` file checked against Keras.

    Only TFLite's built-in operators are used, so the file runs on the
    stock interpreter (no Flex delegate). The batch axis is pinned to
    ``batch_size``; unknown non-batch axes (time) stay dynamic unless
    ``time_steps`` pins them, in which case recurrent loops are unrolled
    when the pinned loop does not convert.

    Args:
        model: A built `keras.Model`.
        path: The ``.tflite`` file to write.
        batch_size: Batch size of the TFLite model (positive int).
        time_steps: Length for unknown non-batch axes, or ``None``.
        data: Real check inputs (an array, or a dict by input name);
            ``None`` uses seeded synthetic inputs.
        overwrite: Replace an existing file at ``path``.
        rtol: Relative tolerance of the check.
        atol: Absolute tolerance of the check.

    Returns:
        The report dict of `convert_tflite`, plus ``"path"``.

    Raises:
        InvalidTypeError, InvalidArgumentError: Bad options.
        InputDataError: ``data`` does not fit the model.
        OutputExistsError: ``path`` exists and ``overwrite`` is false, or
            is a folder.
        ExportVerificationError: No way converts and matches the model.

    Example:

    >>> report = export_tflite(model, "digits.tflite", data=x_test)
    >>> report["strategy"]
    'batch pinned to 1, other axes as the model declares'
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise OutputExistsError(
            f"The TFLite path {path!r} is a folder; expected a file path."
        )
    if os.path.lexists(path) and not overwrite:
        raise OutputExistsError(
            f"The TFLite file {path!r} exists; pass overwrite=True to "
            "replace it, or choose another path."
        )
    content, report = convert_tflite(
        model, batch_size, time_steps, data, rtol, atol
    )
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=".kerasweights-", dir=os.path.dirname(path)
        )
    except OSError as exc:
        # Name the user's path, never the temporary file next to it.
        raise InvalidArgumentError(
            f"The TFLite file {path!r} cannot be written "
            f"({exc.strerror or type(exc).__name__} in "
            f"{os.path.dirname(path)!r}); expected a path in a folder you "
            "can write."
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        shutil.move(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return {**report, "path": path}
