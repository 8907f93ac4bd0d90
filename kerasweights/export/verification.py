"""Checking a SavedModel in a fresh process that never imports kerasweights.

The check feeds the same inputs to the in-memory Keras model and to the
SavedModel's ``serving_default`` signature, loaded with TensorFlow alone in
a child Python process, and compares the outputs. The child also reports
the signature (input names, dtypes and shapes; output names) and proves it
never imported kerasweights by inspecting its own ``sys.modules``.

The check batch size always differs from every other axis length, and
when an input has an unknown (time) axis a second batch is fed with a
different length on that axis, so a SavedModel that confuses the batch
axis with the time axis is caught.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from kerasweights.errors import ExportVerificationError
from kerasweights.errors import InputDataError

__all__ = [
    "VerificationReport",
    "check_inputs",
    "check_model_runs",
    "format_signature",
    "read_signature",
    "validate_check_data",
    "verify_saved_model",
]

# Runs in the child. It must import TensorFlow and NumPy only.
_CHILD = r"""
import json
import sys

import numpy as np
import tensorflow as tf

saved_model, inputs_path, outputs_path, report_path = sys.argv[1:5]
loaded = tf.saved_model.load(saved_model)
serve = loaded.signatures["serving_default"]
_, specs = serve.structured_input_signature
report = {
    "inputs": {
        name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
        for name, spec in specs.items()
    },
    "outputs": {
        name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
        for name, spec in serve.structured_outputs.items()
    },
}
data = np.load(inputs_path)
cases = sorted({key.split("__", 1)[0] for key in data.files})
results = {}
for case in cases:
    feed = {
        key.split("__", 1)[1]: tf.constant(data[key])
        for key in data.files
        if key.split("__", 1)[0] == case
    }
    for name, value in serve(**feed).items():
        results[case + "__" + name] = value.numpy()
np.savez(outputs_path, **results)
report["kerasweights_modules"] = sorted(
    m for m in sys.modules if m.split(".")[0] == "kerasweights"
)
with open(report_path, "w") as f:
    json.dump(report, f)
"""


@dataclasses.dataclass
class VerificationReport:
    """What the fresh-process check found.

    Attributes:
        inputs: ``{name: {"dtype", "shape"}}`` of the serving signature.
        outputs: ``{name: {"dtype", "shape"}}`` of the serving signature.
        cases: The input shapes of each check batch, ``[{name: shape}]``.
        max_abs_diff: The largest absolute output difference seen.
        tolerance: ``(rtol, atol)`` used for the comparison.
    """

    inputs: dict
    outputs: dict
    cases: list
    max_abs_diff: float
    tolerance: tuple

    def to_dict(self):
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def _batch_size(n, other_lengths, preferred=16):
    for size in (preferred, 13, 11, 7, 5, 3, 2, 1):
        if size <= n and size not in other_lengths:
            return size
    raise InputDataError(
        f"The check data has {n} examples; expected at least one batch size "
        f"that differs from every other axis length {sorted(other_lengths)}."
    )


def _synthetic(spec, rng):
    shape = [3 if d is None else d for d in spec["shape"][1:]]
    shape = [spec["batch"], *shape]
    if spec["dtype"].startswith(("int", "uint")):
        return rng.integers(0, 2, size=shape).astype(spec["dtype"])
    if spec["dtype"] == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.standard_normal(shape).astype(spec["dtype"])


def _shape_text(shape):
    return "(" + ", ".join("-1" if d is None else str(d) for d in shape) + ")"


def validate_check_data(specs, data):
    """Check real check inputs against a serving signature.

    Args:
        specs: ``{name: {"dtype": str, "shape": [None, ...]}}`` of the
            model's inputs (batch axis first).
        data: An array (one input) or a ``{name: array}`` dict.

    Returns:
        ``{name: numpy array}``, one entry per input.

    Raises:
        InputDataError: The keys differ from the input names, or an array
            is empty, not numeric, holds NaN or infinite values, or has a
            shape the input does not take (the message names the expected
            shape).
    """
    names = list(specs)
    if not isinstance(data, dict):
        if len(names) != 1:
            raise InputDataError(
                f"The model has inputs {names}; expected check data as a "
                f"dict with those keys. Received: {type(data).__name__}"
            )
        data = {names[0]: data}
    if set(data) != set(names):
        raise InputDataError(
            f"The check data must have exactly the keys {sorted(names)}. "
            f"Received: {sorted(data)}"
        )
    arrays = {}
    for name, spec in specs.items():
        value = np.asarray(data[name])
        want = spec["shape"]
        if value.dtype.kind not in "biuf":
            raise InputDataError(
                f"Check input {name!r} has dtype {value.dtype}; expected "
                f"numbers for the model's {spec['dtype']} input."
            )
        fits = value.ndim == len(want) and all(
            d is None or d == got
            for d, got in zip(want[1:], value.shape[1:], strict=True)
        )
        if not fits:
            raise InputDataError(
                f"Check input {name!r} has shape {value.shape}; expected "
                f"{_shape_text(want)} (-1: any length)."
            )
        if value.shape[0] < 1:
            raise InputDataError(
                f"Check input {name!r} has no examples; expected at least "
                f"one. Received: shape {value.shape}"
            )
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise InputDataError(
                f"Check input {name!r} holds {bad} NaN or infinite values; "
                "expected finite numbers."
            )
        _check_float_range(name, value, spec["dtype"])
        _check_integer_values(name, value, spec["dtype"])
        arrays[name] = value
    return arrays


def _check_float_range(name, value, dtype):
    """Float inputs take values their dtype can hold.

    Check data is cast to the input's dtype; a float64 value beyond a
    float32 input's range would become infinite there, and the comparison
    would then blame the export rather than the data.
    """
    target = np.dtype(dtype)
    if value.dtype.kind != "f" or target.kind != "f":
        return
    if np.finfo(value.dtype).max <= np.finfo(target).max:
        return
    with np.errstate(over="ignore"):
        bad = np.flatnonzero(np.isinf(value.astype(target)))
    if bad.size:
        where = ", ".join(
            str(int(i)) for i in np.unravel_index(bad[0], value.shape)
        )
        raise InputDataError(
            f"Check input {name!r} holds {bad.size} values beyond "
            f"{target}'s range (the first at {name}[{where}]="
            f"{value.flat[bad[0]].item():g}); expected magnitudes up to "
            f"{float(np.finfo(target).max):.4g} for the model's {target} "
            "input."
        )


def _check_integer_values(name, value, dtype):
    """Integer and bool inputs take whole numbers in their range only.

    Check data is cast to the input's dtype; a cast that would change a
    value (round 0.7 to 0, wrap 300 to 44 in int8) is refused rather than
    done silently.
    """
    target = np.dtype(dtype)
    if target.kind not in "biu" or value.size == 0:
        return
    if value.dtype.kind == "f":
        fractional = value != np.trunc(value)
        if fractional.any():
            count = int(np.count_nonzero(fractional))
            example = value[fractional].flat[0].item()
            raise InputDataError(
                f"Check input {name!r} holds {count} values that are not "
                f"whole numbers (such as {example:g}); expected integers "
                f"for the model's {dtype} input (check data is never "
                "rounded)."
            )
    low, high = value.min().item(), value.max().item()
    if target.kind == "b":
        allowed, lo, hi = "0 and 1 (or False and True)", 0, 1
    else:
        info = np.iinfo(target)
        lo, hi = int(info.min), int(info.max)
        allowed = f"integers from {lo} to {hi}"
    if low < lo or high > hi:
        raise InputDataError(
            f"Check input {name!r} holds values from {low:g} to {high:g}; "
            f"expected {allowed} for the model's {dtype} input."
        )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CALLING = re.compile(r"Exception encountered when calling (\w+)\.call\(\)")


def _error_reason(exc):
    """One short line saying why a model call failed."""
    text = _ANSI.sub("", str(exc))
    layer = _CALLING.search(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if layer:
        lines = lines[1:]
    core = next(
        (
            line
            for line in lines
            if not line.startswith(("Arguments received", "•"))
        ),
        type(exc).__name__,
    )
    core = re.sub(r"\{\{[^}]*\}\}", "", core)
    core = re.sub(r"\[Op:[^\]]*\]", "", core)
    core = " ".join(core.split())
    if len(core) > 200:
        core = core[:197] + "..."
    return f"{layer.group(1)}: {core}" if layer else core


def _embeddings(model):
    import keras

    found = []
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, keras.layers.Embedding):
            found.append(f"{layer.name} takes ids below {layer.input_dim}")
        stack.extend(getattr(layer, "layers", []))
    return found


def check_model_runs(model, data):
    """Raise `InputDataError` when ``model`` cannot run on its check data.

    The model is called once, in memory, on the first check batch built
    from ``data`` (what the SavedModel check feeds first), so data the
    Keras model itself refuses (token ids beyond an ``Embedding``'s
    vocabulary, for instance) is reported as bad data before anything is
    written, not as a broken SavedModel.

    Args:
        model: The `keras.Model` to export (after `serving_model`).
        data: Real check inputs (an array, or a dict by input name).

    Raises:
        InputDataError: ``data`` does not fit the model's inputs (see
            `validate_check_data`), or the model raises on it.
    """
    from kerasweights.export.saved_model import model_signature

    signature = model_signature(model)
    batch = check_inputs(signature["inputs"], data=data)[0]
    try:
        _model_outputs(
            model, signature["outputs"], signature["structure"], batch
        )
    except Exception as exc:  # noqa: BLE001 - reported as one line
        reason = _error_reason(exc)
        hint = ""
        embeddings = _embeddings(model)
        if embeddings and "indices" in reason:
            hint = " (" + "; ".join(embeddings) + ")"
        shapes = {n: list(v.shape) for n, v in batch.items()}
        raise InputDataError(
            f"The Keras model {model.name!r} cannot run on the check data "
            f"(first batch {shapes}; {reason}); expected inputs the model "
            f"itself accepts{hint}."
        ) from None


def check_inputs(specs, data=None, seed=0):
    """Build the check batches for a serving signature.

    Args:
        specs: ``{name: {"dtype": str, "shape": [None, ...]}}`` of the
            model's inputs (batch axis first).
        data: Real inputs: an array (one input) or a ``{name: array}``
            dict. ``None`` draws seeded synthetic inputs (standard normal
            floats, integers 0 and 1), which is a weaker check.
        seed: Seed of the synthetic inputs.

    Returns:
        A list of ``{name: array}`` batches.

    Raises:
        InputDataError: ``data`` does not match the inputs (see
            `validate_check_data`).
    """
    rng = np.random.default_rng(seed)
    if data is not None:
        data = validate_check_data(specs, data)

    fixed = {d for s in specs.values() for d in s["shape"][1:] if d}
    if data is not None:
        n = min(len(v) for v in data.values())
        fixed |= {d for v in data.values() for d in v.shape[1:]}
    else:
        n = 16
    batch = _batch_size(n, fixed)

    first = {}
    for name, spec in specs.items():
        if data is not None:
            first[name] = data[name][:batch].astype(spec["dtype"])
        else:
            first[name] = _synthetic({**spec, "batch": batch}, rng)
    cases = [first]

    # A second batch with other lengths on every unknown non-batch axis.
    second = {}
    changed = False
    for name, spec in specs.items():
        value = first[name]
        for axis, dim in enumerate(spec["shape"][1:], start=1):
            if dim is not None:
                continue
            length = value.shape[axis]
            new = next(
                t
                for t in (length - 3, length - 2, length - 1, length + 3)
                if t >= 1 and t not in (length, batch - 1)
            )
            if new < length:
                value = np.take(value, np.arange(new), axis=axis)
            else:
                reps = -(-new // length)
                value = np.concatenate([value] * reps, axis=axis)
                value = np.take(value, np.arange(new), axis=axis)
            changed = True
        second[name] = value[: batch - 1] if batch > 1 else value
    if changed:
        cases.append(second)
    return cases


def _model_outputs(model, output_names, structure, batch):
    if structure == "dict":
        result = model(batch, training=False)
    elif structure == "list":
        result = model([batch[n] for n in batch], training=False)
    else:
        result = model(next(iter(batch.values())), training=False)
    if isinstance(result, dict):
        return {k: np.asarray(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return {
            n: np.asarray(v) for n, v in zip(output_names, result, strict=True)
        }
    return {output_names[0]: np.asarray(result)}


def run_isolated(script, args, cwd, timeout):
    """Run ``script`` in a fresh ``python -I`` process; return the result.

    Isolated mode ignores the user's site folder and the working
    directory, so the child sees only installed packages; the
    verification scripts use this to prove an artifact serves without
    kerasweights. Paths in ``args`` are made absolute.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return subprocess.run(
        [sys.executable, "-I", "-c", script]
        + [os.path.abspath(os.fspath(a)) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run_child(directory, cases, timeout):
    with tempfile.TemporaryDirectory(prefix="kerasweights-verify-") as tmp:
        inputs_path = os.path.join(tmp, "inputs.npz")
        outputs_path = os.path.join(tmp, "outputs.npz")
        report_path = os.path.join(tmp, "report.json")
        flat = {
            f"case{i}__{name}": value
            for i, batch in enumerate(cases)
            for name, value in batch.items()
        }
        np.savez(inputs_path, **flat)
        proc = run_isolated(
            _CHILD,
            [directory, inputs_path, outputs_path, report_path],
            cwd=tmp,
            timeout=timeout,
        )
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])
            raise ExportVerificationError(
                f"The SavedModel in {directory!r} did not load and serve in a "
                f"fresh TensorFlow process (exit {proc.returncode}): {tail}"
            )
        with open(report_path) as f:
            report = json.load(f)
        with np.load(outputs_path) as served:
            outputs = {k: served[k] for k in served.files}
    return report, outputs


def read_signature(directory, timeout=300):
    """The serving signature of a SavedModel, read in a fresh process.

    Args:
        directory: The SavedModel folder.
        timeout: Seconds to wait for the child process.

    Returns:
        ``{"inputs": {...}, "outputs": {...}, "kerasweights_modules": [...]}``
        as seen by a process that imported TensorFlow only.
    """
    report, _ = _run_child(directory, [], timeout)
    return report


def verify_saved_model(
    model,
    directory,
    data=None,
    rtol=1e-4,
    atol=1e-5,
    seed=0,
    timeout=300,
):
    """Check that a SavedModel serves what ``model`` computes.

    Args:
        model: The in-memory `keras.Model` that was exported.
        directory: The SavedModel folder written by `export_saved_model`.
        data: Real check inputs (an array, or a dict by input name);
            ``None`` uses seeded synthetic inputs.
        rtol: Relative tolerance of the comparison.
        atol: Absolute tolerance of the comparison.
        seed: Seed of synthetic inputs.
        timeout: Seconds to wait for the child process.

    Returns:
        A `VerificationReport`.

    Raises:
        ExportVerificationError: The SavedModel does not load with
            TensorFlow alone, its process imported kerasweights, its
            signature differs from the model, or an output differs beyond
            the tolerance (the message names the output and the check
            batch).
    """
    from kerasweights.export.saved_model import model_signature
    from kerasweights.export.saved_model import serving_model

    model, data, _ = serving_model(model, data)
    signature = model_signature(model)
    specs = signature["inputs"]
    cases = check_inputs(specs, data=data, seed=seed)
    report, served = _run_child(directory, cases, timeout)

    if report["kerasweights_modules"]:
        raise ExportVerificationError(
            "The serving process imported kerasweights "
            f"({report['kerasweights_modules'][:3]}); a SavedModel must "
            "serve with TensorFlow alone."
        )
    want_inputs = {
        n: {"dtype": s["dtype"], "shape": s["shape"]} for n, s in specs.items()
    }
    if report["inputs"] != want_inputs:
        raise ExportVerificationError(
            f"The serving signature takes {report['inputs']}; expected the "
            f"model's inputs {want_inputs}."
        )
    output_names = signature["outputs"]
    if sorted(report["outputs"]) != sorted(output_names):
        raise ExportVerificationError(
            f"The serving signature returns {sorted(report['outputs'])}; "
            f"expected the model's outputs {sorted(output_names)}."
        )

    worst = 0.0
    for i, batch in enumerate(cases):
        expected = _model_outputs(
            model, output_names, signature["structure"], batch
        )
        shapes = {n: list(v.shape) for n, v in batch.items()}
        for name in output_names:
            got = served[f"case{i}__{name}"]
            want = expected[name]
            if got.shape != want.shape:
                raise ExportVerificationError(
                    f"Output {name!r} of the SavedModel has shape "
                    f"{got.shape} on inputs {shapes}; the Keras model gives "
                    f"{want.shape}."
                )
            diff = float(np.max(np.abs(got - want))) if got.size else 0.0
            if not np.allclose(got, want, rtol=rtol, atol=atol):
                raise ExportVerificationError(
                    f"Output {name!r} of the SavedModel differs from the "
                    f"Keras model by up to {diff:.3g} on inputs {shapes} "
                    f"(tolerance rtol={rtol}, atol={atol})."
                )
            worst = max(worst, diff)
    return VerificationReport(
        inputs=report["inputs"],
        outputs=report["outputs"],
        cases=[{n: list(v.shape) for n, v in b.items()} for b in cases],
        max_abs_diff=worst,
        tolerance=(rtol, atol),
    )


def format_signature(inputs, outputs):
    """``"pixels float32 (-1, 8, 8, 1) -> digit float32 (-1, 10)"``."""

    def specs(items):
        parts = []
        for name, spec in items.items():
            shape = tuple(-1 if d is None else d for d in spec["shape"])
            parts.append(f"{name} {spec['dtype']} {shape}")
        return ", ".join(parts)

    return f"{specs(inputs)} -> {specs(outputs)}"
