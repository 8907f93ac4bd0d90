"""Writing a compressed model: SavedModel, TFLite, .keras, report.

The output folder is claimed the way ``kerasweights export`` claims its
own (`kerasweights.export.claim_output_folder`: a manifest, never a user's
file deleted). Everything is written and checked in a staging folder
beside it first; the folder is claimed, and a previous compress run
replaced, only once every check passed:

* ``saved_model/``: `kerasweights.export.export_saved_model`, verified in
  a fresh process that imports TensorFlow only;
* ``model.tflite``: run in a fresh process that imports TensorFlow only
  (`verify_tflite`) and compared with the compressed Keras model;
* ``model.keras``: the compressed model for further work with kerasweights;
* ``compression-report.json``: `CompressionResult.report` plus both checks.
"""

import json
import os
import shutil
import tempfile

import numpy as np

from kerasweights.errors import ExportVerificationError
from kerasweights.errors import InvalidArgumentError
from kerasweights.export.verification import run_isolated

__all__ = [
    "COMPRESS_ENTRIES",
    "REPORT_NAME",
    "verify_tflite",
    "write_compressed",
]

REPORT_NAME = "compression-report.json"
COMPRESS_ENTRIES = ("saved_model", "model.tflite", "model.keras", REPORT_NAME)

# Runs in the child: TensorFlow and NumPy only.
_CHILD = r"""
import sys

import numpy as np
import tensorflow as tf

path, inputs_path, outputs_path = sys.argv[1:4]
interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
data = np.load(inputs_path)
arrays = [data[f"input_{i}"] for i in range(len(data.files))]
details = interpreter.get_input_details()
for detail, value in zip(details, arrays):
    interpreter.resize_tensor_input(detail["index"], value.shape)
interpreter.allocate_tensors()
for detail, value in zip(details, arrays):
    interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
interpreter.invoke()
out = interpreter.get_output_details()[0]
np.save(outputs_path, interpreter.get_tensor(out["index"]))
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "kerasweights")
if leaked:
    raise SystemExit("imported kerasweights: " + ", ".join(leaked[:3]))
"""


def verify_tflite(path, model, x, int8=False, timeout=300):
    """Run a TFLite file in a fresh process and compare with ``model``.

    The child imports TensorFlow only and fails if kerasweights gets
    imported.

    Args:
        path: The ``.tflite`` file.
        model: The Keras model it was converted from.
        x: Check inputs (an array or a list of arrays), at most a few
            hundred examples.
        int8: Whether the file holds int8 weights: activations are then
            quantized on the fly, so outputs are compared with a loose
            tolerance and class agreement rather than to 1e-4.
        timeout: Seconds to wait for the child.

    Returns:
        ``{"examples", "max_abs_diff", "same_class"?, "tolerance"}``.

    Raises:
        ExportVerificationError: The file does not run in a plain
            TensorFlow process, or its outputs differ from the model's
            beyond the tolerance.
    """
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    with tempfile.TemporaryDirectory(prefix="kerasweights-tflite-") as tmp:
        inputs_path = os.path.join(tmp, "inputs.npz")
        outputs_path = os.path.join(tmp, "outputs.npy")
        np.savez(inputs_path, **{f"input_{i}": a for i, a in enumerate(arrays)})
        proc = run_isolated(
            _CHILD, [path, inputs_path, outputs_path], cwd=tmp, timeout=timeout
        )
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-2:])
            raise ExportVerificationError(
                f"The TFLite file {os.fspath(path)!r} did not run in a fresh "
                f"TensorFlow process (exit {proc.returncode}): {tail}"
            )
        served = np.load(outputs_path)
    want = np.asarray(model(x if len(arrays) > 1 else arrays[0]))
    served = served.reshape(want.shape)
    diff = float(np.max(np.abs(served - want))) if want.size else 0.0
    tolerance = 0.05 if int8 else 1e-4
    result = {
        "examples": int(arrays[0].shape[0]),
        "max_abs_diff": diff,
        "tolerance": tolerance,
    }
    if want.ndim == 2 and want.shape[-1] > 1:
        same = float(np.mean(served.argmax(-1) == want.argmax(-1)))
        result["same_class"] = same
        if same < (0.98 if int8 else 1.0):
            raise ExportVerificationError(
                f"The TFLite file {os.fspath(path)!r} predicts the Keras "
                f"model's class on only {same:.1%} of {result['examples']} "
                "check examples."
            )
    if diff > tolerance:
        raise ExportVerificationError(
            f"The TFLite file {os.fspath(path)!r} differs from the Keras "
            f"model by up to {diff:.3g} (tolerance {tolerance})."
        )
    return result


def write_compressed(
    result, directory, data, overwrite=False, overwrite_option="overwrite=True"
):
    """Write a `CompressionResult` to ``directory`` and verify it.

    Args:
        result: What `compress` returned.
        directory: The output folder: new or empty, or a previous
            ``compress`` run (replaced only with ``overwrite``).
        data: Real check inputs for both verifications (an array, or a
            list of arrays for several inputs).
        overwrite: Replace a previous kerasweights compress run.
        overwrite_option: How a refusal names the overwrite switch
            (``"--overwrite"`` from the command line).

    Returns:
        The report as written to ``compression-report.json``.

    Raises:
        OutputExistsError: ``directory`` is in use (checked before
            anything is written).
        ExportVerificationError: The SavedModel or the TFLite file does
            not reproduce the compressed model.
    """
    from kerasweights.export import check_output_folder
    from kerasweights.export import claim_output_folder
    from kerasweights.export import export_saved_model
    from kerasweights.export import record_output_files

    directory = os.path.abspath(os.fspath(directory))
    check_output_folder(
        directory,
        "compress",
        overwrite=overwrite,
        overwrite_option=overwrite_option,
    )
    arrays = list(data) if isinstance(data, (list, tuple)) else [data]
    if len(arrays) != 1:
        raise InvalidArgumentError(
            "write_compressed verifies models with one input; "
            f"received check data for {len(arrays)} inputs."
        )
    check = np.asarray(arrays[0])[:256]

    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".kerasweights-compress-", dir=parent)
    try:
        report = dict(result.report)
        exported = export_saved_model(
            result.model, os.path.join(staging, "saved_model"), data=check
        )
        report["saved_model"] = {
            "signature": exported["signature"],
            "verification": exported["verification"],
        }
        written = ["saved_model", "model.keras", REPORT_NAME]
        result.model.save(os.path.join(staging, "model.keras"))
        if result.tflite is not None:
            path = os.path.join(staging, "model.tflite")
            with open(path, "wb") as f:
                f.write(result.tflite)
            report["tflite"] = verify_tflite(
                path,
                result.model,
                check,
                int8=bool(report["settings"].get("quantize")),
            )
            written.append("model.tflite")
        with open(os.path.join(staging, REPORT_NAME), "w") as f:
            json.dump(report, f, indent=2, default=_plain)
            f.write("\n")
        claim_output_folder(
            directory,
            written,
            "compress",
            overwrite=overwrite,
            overwrite_option=overwrite_option,
        )
        for name in written:
            os.replace(
                os.path.join(staging, name), os.path.join(directory, name)
            )
        record_output_files(directory)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, ExportVerificationError):
            raise ExportVerificationError(
                str(exc).replace(staging, directory)
            ) from exc
        raise
    shutil.rmtree(staging, ignore_errors=True)
    report["directory"] = directory
    return report


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
