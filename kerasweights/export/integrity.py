"""Weight checksums of an export, and `verify_export` to recheck them.

Every export records, in ``kerasweights-export.json`` under
``"integrity"``:

* for each variable stored in the SavedModel's checkpoint
  (``variables/variables.data-*``), the SHA-256 of its values as read back
  from the checkpoint (C-order bytes of the array), with its dtype, shape
  and the Keras variable path it holds (``gru/gru_cell/kernel``); the
  checkpoint's object graph, stored in the same file, is hashed too;
* one overall SHA-256 over the model's weights: the sorted Keras
  variable paths with their dtype, shape and digest. It leaves out the
  checkpoint keys (their numbering changes from one export to the next),
  the object graph, and the random seed generator states
  (``seed_generator_state``: drawn afresh at every export), so two exports
  of the same ``.keras`` file give the same overall digest; those entries
  are still checked one by one;
* the SHA-256 of every file of the export (``saved_model.pb``,
  ``variables.index``, ``model.tflite``, ...) and the list of its folders.

Every file and folder of the export is accounted for: one that was added
(whatever its name), missing or changed is reported, and the ownership
manifest (``kerasweights-manifest.json``) must be present, readable, and
list the same files.

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
MANIFEST_NAME = "kerasweights-manifest.json"
# Files that describe the export and cannot hold their own digest.
_UNHASHED = (REPORT_NAME, MANIFEST_NAME)
# What the overall digest covers (absent in records from before it).
_OVERALL_SCOPE = "keras-paths-without-seed-states"
_SEED_STATE = "seed_generator_state"
# How many names a one-line problem lists before "and N more".
_NAMES_SHOWN = 3
# The checkpoint's description of its objects; stored beside the weights.
_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk_export(directory):
    """Every file (but the report and manifest) and folder, relative."""
    files, folders = [], []
    for root, dirs, names in os.walk(directory):
        for name in names + [
            d for d in dirs if os.path.islink(os.path.join(root, d))
        ]:
            rel = os.path.relpath(os.path.join(root, name), directory)
            rel = rel.replace(os.sep, "/")
            if rel not in _UNHASHED:
                files.append(rel)
        for name in dirs:
            rel = os.path.relpath(os.path.join(root, name), directory)
            folders.append(rel.replace(os.sep, "/"))
    return sorted(files), sorted(folders)


def _export_files(directory):
    return _walk_export(directory)[0]


def _few(names):
    """At most a few names, then "and N more"."""
    names = list(names)
    shown = ", ".join(names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
        shown += f" and {len(names) - _NAMES_SHOWN} more"
    return shown


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


def _legacy_overall(variables):
    text = json.dumps(
        sorted((key, entry["sha256"]) for key, entry in variables.items())
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _in_overall(key, entry):
    name = entry["name"]
    return (
        key != _OBJECT_GRAPH
        and name != key.split("/.ATTRIBUTES/")[0]
        and not name.endswith(_SEED_STATE)
    )


def _overall(variables):
    """Digest over Keras paths, dtypes, shapes and values (see above).

    A checkpoint stores a variable under several keys; each path counts
    once. Entries not named by a Keras path are left out.
    """
    rows = sorted(
        {
            (e["name"], e["dtype"], tuple(e["shape"]), e["sha256"])
            for key, e in variables.items()
            if _in_overall(key, e)
        }
    )
    text = json.dumps([list(row[:2]) + [list(row[2]), row[3]] for row in rows])
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
        ``"overall"``, ``"overall_scope"``, ``"files"`` (relative path
        -> digest) and ``"folders"`` (relative paths).
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
    files, folders = _walk_export(directory)
    return {
        "algorithm": ALGORITHM,
        "variables": variables,
        "overall": _overall(variables),
        "overall_scope": _OVERALL_SCOPE,
        "files": {
            rel: _file_digest(os.path.join(directory, *rel.split("/")))
            for rel in files
        },
        "folders": folders,
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


def _hint(directory):
    """Point at the subfolders of ``directory`` that hold an export."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return ""
    inner = [
        os.path.join(directory, name)
        for name in names
        if os.path.isfile(os.path.join(directory, name, REPORT_NAME))
    ]
    if not inner:
        return ""
    return (
        "; the export inside it is "
        + " or ".join(repr(path) for path in inner)
        + " (verify that folder)"
    )


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
            "export folder (written by `kerasweights export`)"
            f"{_hint(directory)}."
        ) from None
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:120]
        raise InvalidArgumentError(
            f"the export report {path!r} is damaged or not a kerasweights "
            f"report ({type(exc).__name__}: {reason}); expected the JSON "
            "that `kerasweights export` writes, so the export cannot be "
            "checked (export the model again)."
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
    all_names = sorted({entry["name"] for entry in recorded.values()})
    stored = {}

    prefix = _checkpoint_prefix(directory)
    data_files = sorted(
        rel
        for rel in record["files"]
        if rel.startswith("variables/variables.data-")
    )
    missing_data = [
        rel
        for rel in data_files
        if not os.path.isfile(os.path.join(directory, *rel.split("/")))
    ]
    reader = None
    if missing_data:
        problems.append(
            f"the variables file {_few(missing_data)} is missing, so none "
            f"of the {len(all_names)} stored variables can be read"
        )
        changed.extend(all_names)
    else:
        try:
            reader = tf.train.load_checkpoint(prefix)
            keys = set(reader.get_variable_to_shape_map())
        except Exception as exc:  # noqa: BLE001 - any failure is a finding
            reader = None
            message = " ".join(str(exc).split())[:160]
            problems.append(
                f"the checkpoint in {directory}/variables cannot be read "
                f"({type(exc).__name__}: {message})"
            )
            changed.extend(all_names)
    if reader is not None:
        unreadable, reasons = [], []
        altered, altered_names = [], []
        for key in sorted(recorded):
            entry = recorded[key]
            name = entry["name"]
            if key not in keys:
                problems.append(f"variable {name!r} ({key}) is missing")
                changed.append(name)
                continue
            try:
                value = reader.get_tensor(key)
            except Exception as exc:  # noqa: BLE001 - short or bad bytes
                reason = " ".join(str(exc).split())
                if "Checksum does not match" in reason:
                    reason = "TensorFlow's CRC of the entry does not match"
                reasons.append(f"{type(exc).__name__}: {reason[:120]}")
                unreadable.append((key, name))
                changed.append(name)
                continue
            digest = _value_digest(value)
            dtype, shape = _describe(value)
            stored[key] = {
                "name": name,
                "dtype": dtype,
                "shape": shape,
                "sha256": digest,
            }
            if digest != entry["sha256"] or [dtype, shape] != [
                entry["dtype"],
                entry["shape"],
            ]:
                altered.append(
                    f"variable {name!r} ({key}) changed: sha256 "
                    f"{digest[:12]}..., recorded {entry['sha256'][:12]}..."
                )
                altered_names.append(name)
                changed.append(name)
        if len(altered) <= _NAMES_SHOWN:
            problems.extend(altered)
        else:
            problems.append(
                f"{len(altered)} of {len(recorded)} stored entries changed "
                f"values: {_few(sorted(set(altered_names)))}"
            )
        if len(unreadable) == 1:
            key, name = unreadable[0]
            problems.append(
                f"variable {name!r} ({key}) cannot be read: its stored "
                f"bytes changed ({reasons[0]})"
            )
        elif unreadable:
            names = sorted({name for _, name in unreadable})
            problems.append(
                f"{len(unreadable)} of {len(recorded)} stored entries cannot "
                f"be read from {_few(data_files) or 'the variables file'} "
                f"(cut short or damaged; first: {reasons[0]}): "
                f"{_few(names)}"
            )
        extra = keys - set(recorded)
        for key in sorted(extra):
            problems.append(f"variable {key!r} was not in the export")
            changed.append(key)
    if not problems:
        if record.get("overall_scope") == _OVERALL_SCOPE:
            overall = _overall(stored)
        else:
            overall = _legacy_overall(stored)
        if overall != record["overall"]:
            problems.append("the overall weight digest differs from the record")

    problems.extend(_file_problems(directory, record))

    return IntegrityReport(
        directory=directory,
        ok=not problems,
        variables_checked=len(recorded),
        files_checked=len(record["files"]),
        changed_variables=sorted(set(changed)),
        problems=problems,
        overall=record["overall"],
    )


def _manifest_matches(path, manifest, files):
    """The manifest is byte for byte what kerasweights writes for ``files``."""
    ours = set(files) | {REPORT_NAME}
    top = {rel.split("/")[0] for rel in ours}
    folders = manifest.get("folders", [])
    if not (
        manifest.get("written_by") == "kerasweights"
        and isinstance(manifest.get("command"), str)
        and set(manifest.get("files", ours)) == ours
        and top | {f.split("/")[0] for f in folders} <= set(manifest["entries"])
    ):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, ValueError):
        return False
    return text == json.dumps(manifest, indent=2) + "\n"


def _file_problems(directory, record):
    """Changed, missing or added files and folders; the manifest."""
    from kerasweights.export.output_folder import read_manifest

    problems = []
    files = record["files"]
    present, folders = _walk_export(directory)
    present = set(present)
    for rel in sorted(files):
        if rel not in present:
            problems.append(f"file {rel!r} is missing")
        elif (
            _file_digest(os.path.join(directory, *rel.split("/"))) != files[rel]
        ):
            problems.append(f"file {rel!r} changed")
    for rel in sorted(present - set(files)):
        problems.append(f"file {rel!r} was not in the export")

    manifest = None
    manifest_path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.lexists(manifest_path):
        problems.append(f"file {MANIFEST_NAME!r} is missing")
    else:
        manifest = read_manifest(directory)
        if manifest is None or not _manifest_matches(
            manifest_path, manifest, files
        ):
            problems.append(
                f"file {MANIFEST_NAME!r} is damaged or changed (it is not "
                "the manifest kerasweights wrote for these files)"
            )
            manifest = None
    expected = record.get("folders")
    if not isinstance(expected, list):
        # Records from before folders were listed: a SavedModel's empty
        # assets folder, the manifest's folders, the files' parents.
        expected = {"assets"}
        if manifest is not None and isinstance(manifest.get("folders"), list):
            expected.update(manifest["folders"])
        for rel in files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                expected.add("/".join(parts[:i]))
    expected = set(expected)
    for rel in sorted(set(folders) - expected):
        problems.append(f"folder {rel!r} was not in the export")
    for rel in sorted(expected - set(folders)):
        if not any(f.startswith(rel + "/") for f in files):
            problems.append(f"folder {rel!r} is missing")
    return problems
