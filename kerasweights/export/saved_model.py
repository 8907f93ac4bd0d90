"""SavedModel export with a named, typed serving signature.

Keras 3's own export paths name inputs after internal placeholders and call
every output ``output_0``. Our export keeps, for every model
input, its name and dtype, and names each output after the layer that
produces it, so ``saved_model_cli show --all`` reads like the model:

    inputs['pixels'] tensor_info: dtype: DT_FLOAT shape: (-1, 8, 8, 1)
    outputs['digit'] tensor_info: dtype: DT_FLOAT shape: (-1, 10)

The batch axis is always unknown (``-1``); other axes are exactly as the
model declares them, so a recurrent model built on ``Input((None, 8))``
serves sequences of any length. Functional models with several inputs,
given as a list or as a dict, get one signature argument per
input. The SavedModel holds only TensorFlow graphs and variables: it loads
and serves with TensorFlow alone, with no ``import kerasweights``.

A training wrapper with a ``prediction_model`` (the `kerasweights.fairness`
models that read a sensitive input for their loss) is exported as that
prediction model, with a note (`serving_model`).
"""

import json
import os
import shutil
import tempfile
import warnings

from kerasweights.errors import ExportVerificationError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import KerasWeightsWarning

__all__ = [
    "SAVED_MODEL_ENTRIES",
    "ServingModelNote",
    "export_model_file",
    "export_saved_model",
    "model_signature",
    "serving_model",
]

REPORT_NAME = "kerasweights-export.json"

TFLITE_NAME = "model.tflite"

# Top-level names tf.saved_model writes, plus our report and TFLite file.
SAVED_MODEL_ENTRIES = (
    "saved_model.pb",
    "variables",
    "assets",
    "fingerprint.pb",
    REPORT_NAME,
    TFLITE_NAME,
)


def _dtype_name(dtype):
    import tensorflow as tf

    return tf.as_dtype(dtype).name


class ServingModelNote(KerasWeightsWarning):
    """The export serves a model's prediction model, not the model given."""


def serving_model(model, data=None):
    """The model an export serves, its check data, and a note.

    A training wrapper that has a ``prediction_model`` method or attribute
    (`kerasweights.fairness.FairnessModel`, `AdversarialDebiasingModel`,
    `RateConstrainedModel`) is not the model to serve: it has no fixed
    inputs of its own and reads a sensitive input only for its training
    loss. Its prediction model is served instead, so the serving signature
    leaves the sensitive input out unless prediction itself uses it. When
    ``data`` is a dict that still holds the wrapper's sensitive input
    (``model.sensitive``) and the prediction model does not take it, that
    entry is dropped from the check data.

    Args:
        model: A `keras.Model`.
        data: Check data for ``model``, or ``None``.

    Returns:
        ``(served, data, note)``: ``served`` is ``model`` itself and
        ``note`` is ``None`` for any other model; for a wrapper, its
        prediction model, the check data for it, and one line saying what
        was exported instead.

    Raises:
        InvalidArgumentError: ``model.prediction_model()`` raised.
    """
    import keras

    if not isinstance(model, keras.Model):
        return model, data, None
    found = getattr(model, "prediction_model", None)
    if found is None:
        return model, data, None
    served = found
    if callable(found) and not isinstance(found, keras.Model):
        try:
            served = found()
        except Exception as exc:  # noqa: BLE001 - reported in one line
            text = " ".join(str(exc).split())[:200]
            raise InvalidArgumentError(
                f"{type(model).__name__} {model.name!r} has a "
                f"prediction_model, but calling it failed "
                f"({type(exc).__name__}: {text}); expected it to return "
                "the keras.Model to serve."
            ) from None
    if not isinstance(served, keras.Model) or served is model:
        return model, data, None
    names = list(model_signature(served)["inputs"])
    sensitive = getattr(model, "sensitive", None)
    note = (
        f"{type(model).__name__} {model.name!r} is a training wrapper; "
        f"exported its prediction model {served.name!r} "
        f"(model.prediction_model()), which takes {names}"
    )
    if isinstance(sensitive, str) and sensitive not in names:
        note += f", without the sensitive input {sensitive!r}"
        if isinstance(data, dict) and sensitive in data:
            data = {k: v for k, v in data.items() if k != sensitive}
            note += f" (its check data {sensitive!r} is not used)"
    return served, data, note + "."


def model_signature(model):
    """The serving signature `export_saved_model` gives a model.

    Args:
        model: A built `keras.Model`; a training wrapper is replaced by
            its prediction model first (see `serving_model`).

    Returns:
        A dict: ``"inputs"``, ``{name: {"dtype": str, "shape": list}}`` in
        the model's input order, batch axis ``None``; ``"outputs"``, the
        output names in order; ``"structure"``, how the model takes its
        inputs (``"single"``, ``"list"`` or ``"dict"``).

    Raises:
        InvalidTypeError: ``model`` is not a `keras.Model`.
        InvalidArgumentError: The model has not been built, or two inputs
            or outputs share a name.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            "`model` must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    model, _, _ = serving_model(model)
    try:
        inputs = list(model.inputs)
        # A Sequential model that was never called has inputs but no
        # structured `input`; it takes one tensor.
        structured = (
            inputs[0] if isinstance(model, keras.Sequential) else (model.input)
        )
    except (AttributeError, ValueError, IndexError) as exc:
        raise InvalidArgumentError(
            "`model` must be built with known inputs (a functional or built "
            f"Sequential model) to be exported. Received: {model.name!r} "
            f"({exc})"
        ) from exc
    if isinstance(structured, dict):
        structure = "dict"
        pairs = list(structured.items())
    elif isinstance(structured, (list, tuple)):
        structure = "list"
        pairs = [(t.name, t) for t in structured]
    else:
        structure = "single"
        pairs = [(inputs[0].name, inputs[0])]
    specs = {}
    for name, tensor in pairs:
        if name in specs:
            raise InvalidArgumentError(
                f"Two inputs of model {model.name!r} are named {name!r}; "
                "expected unique input names for the serving signature."
            )
        specs[name] = {
            "dtype": _dtype_name(tensor.dtype),
            "shape": [None, *tensor.shape[1:]],
        }
    if isinstance(model, keras.Sequential):
        outputs = [model.layers[-1].name]
    else:
        outputs = list(model.output_names)
    if len(set(outputs)) != len(outputs):
        raise InvalidArgumentError(
            f"The outputs of model {model.name!r} have repeated names "
            f"{outputs}; expected unique output layer names."
        )
    return {"inputs": specs, "outputs": outputs, "structure": structure}


def _write(model, directory, signature):
    import keras
    import tensorflow as tf

    from kerasweights.export.graph_fixes import serving_graph_fixes

    names = list(signature["inputs"])
    specs = [
        tf.TensorSpec(s["shape"], tf.as_dtype(s["dtype"]), name=n)
        for n, s in signature["inputs"].items()
    ]
    output_names = signature["outputs"]
    structure = signature["structure"]

    def serve(*tensors):
        if structure == "dict":
            result = model(
                dict(zip(names, tensors, strict=True)), training=False
            )
        elif structure == "list":
            result = model(list(tensors), training=False)
        else:
            result = model(tensors[0], training=False)
        if isinstance(result, dict):
            return {n: result[n] for n in output_names}
        if not isinstance(result, (list, tuple)):
            result = [result]
        return dict(zip(output_names, result, strict=True))

    with serving_graph_fixes(model):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", serve, input_signature=specs)
        archive.write_out(directory, verbose=False)
    return archive


def export_saved_model(
    model,
    directory,
    overwrite=False,
    verify=True,
    data=None,
    tflite=False,
    tflite_batch_size=1,
    tflite_time_steps=None,
    *,
    overwrite_option="overwrite=True",
):
    """Write ``model`` as a SavedModel and check it in a fresh process.

    The export is written and verified in a staging folder next to
    ``directory`` (``.kerasweights-staging-*``); only after it passed is
    the previous export replaced and the new files moved in. On an error
    before that (bad data, a refused folder, a failed verification) the
    staging folder is removed and ``directory`` is left as it was.

    Args:
        model: A built `keras.Model`; may use any kerasweights plugin.
        directory: The folder to write; it must be new or empty, or hold
            a previous kerasweights export (replaced only with
            ``overwrite=True``; see `claim_output_folder`).
        overwrite: Replace a previous kerasweights export in ``directory``.
        verify: Load the SavedModel in a fresh process that imports
            TensorFlow only and compare its outputs with ``model``'s.
        data: Real inputs for the check (an array, or a dict by input
            name); ``None`` uses seeded synthetic inputs.
        tflite: Also write ``model.tflite``, converted with TFLite's
            built-in operators and checked against ``model`` (see
            `kerasweights.export.tflite`).
        tflite_batch_size: Batch size the TFLite model takes.
        tflite_time_steps: Pin unknown non-batch axes of the TFLite model
            to this length (and unroll recurrent loops if needed);
            ``None`` keeps them dynamic.
        overwrite_option: How a refused output folder message names the
            overwrite switch (the command line passes ``"--overwrite"``).

    Check data is checked before anything is written: it must fit the
    inputs (names, shapes, finite numbers; whole numbers within range for
    integer and bool inputs, which are never rounded), and the Keras model
    itself must run on it. A training wrapper with a ``prediction_model``
    is exported as that model, with a `ServingModelNote` warning and the
    note in the result (see `serving_model`).

    Returns:
        A dict with the ``"directory"``, when a wrapper was replaced the
        ``"served_model"`` (``{"name", "note"}``), the ``"signature"``, when
        ``verify`` is true the ``"verification"`` report, with ``tflite``
        the ``"tflite"`` report, and ``"integrity"``: the SHA-256 of every
        stored variable (named by its Keras path), an overall digest and
        the digest of every file, which `verify_export` rechecks. The same
        dict is written to ``kerasweights-export.json`` in ``directory``.

    Raises:
        InvalidTypeError, InvalidArgumentError: ``model`` cannot be
            exported.
        InputDataError: ``data`` does not fit the model's inputs, or the
            Keras model raises on it (checked before anything is written).
        OutputExistsError: ``directory`` is in use (see
            `claim_output_folder`).
        InvalidArgumentError: ``directory`` cannot be created (an
            unwritable or virtual parent folder such as ``/proc``); the
            message names ``directory``, never the staging folder.
        OSError: Writing failed later (a full disk); it names the path
            inside ``directory``, never the staging folder.
        ExportVerificationError: The SavedModel (or the TFLite model)
            does not reproduce ``model``, or no TFLite conversion runs on
            the stock interpreter.

    Example:

    >>> import keras
    >>> inputs = keras.Input((8, 8, 1), name="pixels")
    >>> x = keras.layers.Flatten()(inputs)
    >>> outputs = keras.layers.Dense(10, name="digit")(x)
    >>> model = keras.Model(inputs, outputs)
    >>> result = export_saved_model(model, "exported_digits")
    """
    from kerasweights.export.integrity import record_integrity
    from kerasweights.export.output_folder import check_output_folder
    from kerasweights.export.output_folder import claim_output_folder
    from kerasweights.export.output_folder import record_output_files
    from kerasweights.export.tflite import check_tflite_options
    from kerasweights.export.tflite import convert_tflite
    from kerasweights.export.verification import check_model_runs
    from kerasweights.export.verification import validate_check_data
    from kerasweights.export.verification import verify_saved_model

    model, data, note = serving_model(model, data)
    if note:
        warnings.warn(note, ServingModelNote, stacklevel=2)
    signature = model_signature(model)
    if tflite:
        tflite_batch_size, tflite_time_steps = check_tflite_options(
            signature, tflite_batch_size, tflite_time_steps
        )
    if data is not None:
        validate_check_data(signature["inputs"], data)
        check_model_runs(model, data)
    directory = os.path.abspath(os.fspath(directory))
    check_output_folder(
        directory,
        "export",
        overwrite=overwrite,
        overwrite_option=overwrite_option,
    )

    # Write and verify in a staging folder next to `directory`; the
    # previous export is replaced only once the new one has passed.
    parent = os.path.dirname(directory)
    created = []
    try:
        created = _make_parents(parent)
        staging = tempfile.mkdtemp(prefix=".kerasweights-staging-", dir=parent)
    except OSError as exc:
        _remove_empty(created)
        raise _unwritable(exc, directory) from None
    try:
        archive = _write(model, staging, signature)
        result = {"directory": directory}
        if note:
            result["served_model"] = {"name": model.name, "note": note}
        result |= {
            "signature": {
                "inputs": signature["inputs"],
                "outputs": signature["outputs"],
            },
        }
        if verify:
            report = verify_saved_model(model, staging, data=data)
            result["verification"] = report.to_dict()
        if tflite:
            content, result["tflite"] = convert_tflite(
                model,
                batch_size=tflite_batch_size,
                time_steps=tflite_time_steps,
                data=data,
            )
            with open(os.path.join(staging, TFLITE_NAME), "wb") as f:
                f.write(content)
        result["integrity"] = record_integrity(staging, model, archive)
        with open(os.path.join(staging, REPORT_NAME), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        claim_output_folder(
            directory,
            SAVED_MODEL_ENTRIES,
            "export",
            overwrite=overwrite,
            overwrite_option=overwrite_option,
        )
        for name in os.listdir(staging):
            os.replace(
                os.path.join(staging, name), os.path.join(directory, name)
            )
        record_output_files(directory)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        # Name the folder the user asked for, not the staging folder.
        if isinstance(exc, ExportVerificationError):
            raise ExportVerificationError(
                str(exc).replace(staging, directory)
            ) from exc
        if isinstance(exc, OSError) and staging in str(exc):
            raise _renamed(exc, staging, directory) from None
        raise
    os.rmdir(staging)
    return result


def _remove_empty(created):
    for path in reversed(created):
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)


def _unwritable(exc, directory):
    """One line naming ``directory`` when its staging folder cannot be made."""
    reason = exc.strerror or type(exc).__name__
    where = exc.filename
    if not isinstance(where, str) or ".kerasweights-staging-" in where:
        where = os.path.dirname(directory)
    return InvalidArgumentError(
        f"The output folder {directory!r} cannot be created or written "
        f"({reason}: {where!r}); expected a folder path you can create and "
        "write."
    )


def _renamed(exc, staging, directory):
    """The same OSError, naming the user's folder instead of the staging."""
    names = [
        n.replace(staging, directory) if isinstance(n, str) else n
        for n in (exc.filename, exc.filename2)
    ]
    if exc.errno is None:
        return type(exc)(str(exc).replace(staging, directory))
    if names[1] is not None:
        return type(exc)(exc.errno, exc.strerror, names[0], None, names[1])
    return type(exc)(exc.errno, exc.strerror, names[0])


def _make_parents(path):
    """Create ``path`` and its missing parents; return those created."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    missing.reverse()
    for folder in missing:
        os.makedirs(folder, exist_ok=True)
    return missing


def export_model_file(
    path,
    directory,
    overwrite=False,
    data=None,
    tflite=False,
    tflite_batch_size=1,
    tflite_time_steps=None,
    *,
    overwrite_option="overwrite=True",
):
    """Load a ``.keras`` file and export it with `export_saved_model`.

    The model file is checked before the output folder is touched, and is
    refused when it lies inside the output folder.

    Args:
        path: A Keras 3 ``.keras`` file.
        directory: The SavedModel folder to write.
        overwrite: Replace a previous kerasweights export there.
        data: Real check inputs; ``None`` uses the digits test data when the
            model takes digits images ``(8, 8, 1)`` or row sequences
            ``(None|8, 8)``, and seeded synthetic inputs otherwise.
        tflite: Also write a checked ``model.tflite``.
        tflite_batch_size: Batch size of the TFLite model.
        tflite_time_steps: Pin unknown non-batch axes of the TFLite model.
        overwrite_option: As `export_saved_model`.

    Returns:
        The dict `export_saved_model` returns, plus ``"check_data"``
        (``"digits"``, ``"given"`` or ``"synthetic"``).

    Raises:
        ModelFileError: ``path`` is not a loadable ``.keras`` file.
        InvalidArgumentError: ``path`` lies inside ``directory``.
        InputDataError: ``data`` does not fit the model's inputs.
        OutputExistsError, ExportVerificationError: As `export_saved_model`.
    """
    from kerasweights.export.model_file import load_keras_model

    inside = os.path.realpath(os.fspath(path))
    out = os.path.realpath(os.fspath(directory))
    if os.path.commonpath([inside, out]) == out:
        raise InvalidArgumentError(
            f"The model file {os.fspath(path)!r} lies inside the output "
            f"folder {os.fspath(directory)!r}, which the export would "
            "replace; choose an output folder outside it."
        )
    model = load_keras_model(path)
    source = "given"
    if data is None:
        data, source = _digits_data_for(model)
    result = export_saved_model(
        model,
        directory,
        overwrite=overwrite,
        data=data,
        tflite=tflite,
        tflite_batch_size=tflite_batch_size,
        tflite_time_steps=tflite_time_steps,
        overwrite_option=overwrite_option,
    )
    result["check_data"] = source
    return result


def _digits_data_for(model):
    signature = model_signature(model)
    if len(signature["inputs"]) != 1:
        return None, "synthetic"
    shape = next(iter(signature["inputs"].values()))["shape"][1:]
    if shape == [8, 8, 1]:
        view = "image"
    elif shape in ([None, 8], [8, 8]):
        view = "sequence"
    else:
        return None, "synthetic"
    from kerasweights.datasets.digits import load_digits

    return load_digits(view, seed=0).x_test, "digits"
