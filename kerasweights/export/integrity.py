"""Weight checksums of an export, and `verify_export` to recheck them.

Every export records, in ``kerasweights-export.json`` under
``"integrity"``:

* for each variable stored in the SavedModel's checkpoint
  (``variables/variables.data-*``), the SHA-256 of its values as read back
  from the checkpoint (C-order bytes of the array), with its dtype, shape
  and the Keras variable path it holds (``gru/gru_cell/kernel``); the
  checkpoint's object graph, stored in the same file, is hashed too;
* one overall SHA-256 over the variables' checkpoint keys and digests;
* the SHA-256 of every file of the export (``saved_model.pb``,
  ``variables.index``, ``model.tflite``, ...).

`verify_export` recomputes them. A changed value is named by its Keras
variable path; a variable whose bytes no longer match TensorFlow's own
per-entry CRC cannot even be read, and is named the same way. The check
reads the checkpoint with TensorFlow only; it does not import the model.
"""

import dataclasses
import hashlib
import json
import os

from kerasweights.errors import InvalidArgumentError

__all__ = [
    "IntegrityReport",
    "record_integrity",
    "verify_export",
]

ALGORITHM = "sha256"
REPORT_NAME = "kerasweights-export.json"
# Files that describe the export and cannot hold their own digest.
_UNHASHED = (REPORT_NAME, "kerasweights-manifest.json")
# The checkpoint's description of its objects; stored beside the weights.
_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export_files(directory):
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), directory)
            rel = rel.replace(os.sep, "/")
            if rel not in _UNHASHED and not rel.endswith(".tmp"):
                found.append(rel)
    return sorted(found)


def _checkpoint_prefix(directory):
    return os.path.join(directory, "variables", "variables")


def _value_digest(value):
    import numpy as np

    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    value = np.ascontiguousarray(value)
    if value.dtype == object:
        data = b"".join(bytes(v) for v in value.ravel())
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(value.tobytes()).hexdigest()


def _describe(value):
    if isinstance(value, bytes):
        return "bytes", [len(value)]
    return str(value.dtype), list(value.shape)


def _overall(variables):
    text = json.dumps(
        sorted((key, entry["sha256"]) for key, entry in variables.items())
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _variable_names(model, archive):
    """Checkpoint key prefix -> Keras variable path, from the archive."""
    by_id = {}
    for variable in model.variables:
        by_id[id(variable)] = variable.path
        by_id[id(getattr(variable, "value", variable))] = variable.path
    names = {}
    for i, variable in enumerate(archive.variables):
        if id(variable) in by_id:
            names[f"variables/{i}"] = by_id[id(variable)]
    # The archive also stores each variable an endpoint uses under
    # `_all_variables`; Keras 3.15 keeps that list on its private
    # trackable. Without it those entries are named by checkpoint key.
    trackable = getattr(archive, "_tf_trackable", None)
    for i, variable in enumerate(getattr(trackable, "_all_variables", ())):
        if id(variable) in by_id:
            names[f"_all_variables/{i}"] = by_id[id(variable)]
    return names


def _key_name(key, names):
    if key == _OBJECT_GRAPH:
        return "checkpoint object graph"
    prefix = key.split("/.ATTRIBUTES/")[0]
    return names.get(prefix, prefix)


def record_integrity(directory, model=None, archive=None):
    """Checksums of a freshly written export folder.

    Args:
        directory: The export folder (SavedModel files, maybe a
            ``model.tflite``), before the report is written.
        model: The exported `keras.Model`, to name variables by path.
        archive: The ``keras.export.ExportArchive`` that wrote it.

    Returns:
        The ``"integrity"`` dict: ``"algorithm"``, ``"variables"``
        (checkpoint key -> ``{"name", "dtype", "shape", "sha256"}``),
        ``"overall"`` and ``"files"`` (relative path -> digest).
    """
    import tensorflow as tf

    names = {}
    if model is not None and archive is not None:
        names = _variable_names(model, archive)
    reader = tf.train.load_checkpoint(_checkpoint_prefix(directory))
    variables = {}
    for key in sorted(reader.get_variable_to_shape_map()):
        value = reader.get_tensor(key)
        dtype, shape = _describe(value)
        variables[key] = {
            "name": _key_name(key, names),
            "dtype": dtype,
            "shape": shape,
            "sha256": _value_digest(value),
        }
    return {
        "algorithm": ALGORITHM,
        "variables": variables,
        "overall": _overall(variables),
        "files": {
            rel: _file_digest(os.path.join(directory, *rel.split("/")))
            for rel in _export_files(directory)
        },
    }


@dataclasses.dataclass
class IntegrityReport:
    """What `verify_export` found.

    Attributes:
        directory: The export folder checked.
        ok: True when every variable and file matches its record.
        variables_checked: How many stored variables were recomputed.
        files_checked: How many files were hashed.
        changed_variables: Keras paths (or checkpoint keys) of variables
            whose values changed or can no longer be read.
        problems: One line per difference, variables first.
        overall: The recorded overall weight digest.
    """

    directory: str
    ok: bool
    variables_checked: int
    files_checked: int
    changed_variables: list
    problems: list
    overall: str

    def to_dict(self):
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


def _read_record(directory):
    path = os.path.join(directory, REPORT_NAME)
    if not os.path.isdir(directory):
        raise InvalidArgumentError(
            f"{directory!r} is not a folder; expected a kerasweights export "
            "folder (written by `kerasweights export`)."
        )
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{directory!r} has no {REPORT_NAME}; expected a kerasweights "
            "export folder (written by `kerasweights export`)."
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(
            f"{path!r} is not a readable kerasweights export report "
            f"({exc}); expected the JSON that `kerasweights export` writes."
        ) from exc
    record = report.get("integrity") if isinstance(report, dict) else None
    if not (
        isinstance(record, dict)
        and record.get("algorithm") == ALGORITHM
        and isinstance(record.get("variables"), dict)
        and isinstance(record.get("files"), dict)
        and isinstance(record.get("overall"), str)
    ):
        raise InvalidArgumentError(
            f"{path!r} records no weight checksums; expected an export "
            "written by kerasweights 0.1 or later with checksums "
            "(export it again)."
        )
    return record


def verify_export(directory):
    """Recompute the weight checksums of an export and compare.

    Args:
        directory: A folder written by `export_saved_model` (or
            ``kerasweights export``).

    Returns:
        An `IntegrityReport`; ``report.ok`` is false when a variable's
        values, a file, or the overall digest differ, and
        ``report.changed_variables`` names the variables by Keras path.

    Raises:
        InvalidArgumentError: ``directory`` is not a kerasweights export
            with recorded checksums.

    Example:

    >>> report = verify_export("exported_digits")
    >>> report.ok
    True
    """
    import tensorflow as tf

    directory = os.path.abspath(os.fspath(directory))
    record = _read_record(directory)
    problems, changed = [], []

    recorded = record["variables"]
    stored = {}
    try:
        reader = tf.train.load_checkpoint(_checkpoint_prefix(directory))
        keys = set(reader.get_variable_to_shape_map())
    except (tf.errors.OpError, ValueError) as exc:
        reader, keys = None, set()
        message = " ".join(str(exc).split())[:200]
        problems.append(
            f"the checkpoint in {directory}/variables cannot be read "
            f"({message})"
        )
        changed.extend(sorted({entry["name"] for entry in recorded.values()}))
    if reader is not None:
        for key in sorted(recorded):
            entry = recorded[key]
            name = entry["name"]
            if key not in keys:
                problems.append(f"variable {name!r} ({key}) is missing")
                changed.append(name)
                continue
            try:
                value = reader.get_tensor(key)
            except tf.errors.OpError as exc:
                reason = " ".join(str(exc).split())
                if "Checksum does not match" in reason:
                    reason = "TensorFlow's CRC of the entry does not match"
                problems.append(
                    f"variable {name!r} ({key}) cannot be read: its stored "
                    f"bytes changed ({reason[:160]})"
                )
                changed.append(name)
                continue
            digest = _value_digest(value)
            stored[key] = {"sha256": digest}
            if digest != entry["sha256"] or list(_describe(value)) != [
                entry["dtype"],
                entry["shape"],
            ]:
                problems.append(
                    f"variable {name!r} ({key}) changed: sha256 "
                    f"{digest[:12]}..., recorded {entry['sha256'][:12]}..."
                )
                changed.append(name)
        extra = keys - set(recorded)
        for key in sorted(extra):
            problems.append(f"variable {key!r} was not in the export")
            changed.append(key)
    if not problems and _overall(stored) != record["overall"]:
        problems.append("the overall weight digest differs from the record")

    files = record["files"]
    present = set(_export_files(directory))
    for rel in sorted(files):
        if rel not in present:
            problems.append(f"file {rel!r} is missing")
        elif (
            _file_digest(os.path.join(directory, *rel.split("/"))) != files[rel]
        ):
            problems.append(f"file {rel!r} changed")
    for rel in sorted(present - set(files)):
        problems.append(f"file {rel!r} was not in the export")

    return IntegrityReport(
        directory=directory,
        ok=not problems,
        variables_checked=len(recorded),
        files_checked=len(files),
        changed_variables=sorted(set(changed)),
        problems=problems,
        overall=record["overall"],
    )
