"""Output folders that never lose a user's files.

A command that writes into a folder first *claims* it. The claim writes a
manifest, ``kerasweights-manifest.json``, naming every top-level entry the
command will write; once the command has written them,
`record_output_files` adds every file and folder path found inside those
entries. The rules:

* a folder that does not exist, or is empty, is claimed;
* a folder that holds a previous kerasweights run (a manifest, and nothing
  but the entries it names) is refused unless ``overwrite=True``;
* with ``overwrite=True`` exactly the recorded paths are removed, nothing
  else. The overwrite is refused, and nothing removed, when any entry
  holds a file or folder the manifest does not record (a file a user added
  later), when the previous run was written by another command (``tune``
  versus ``export``), or when the manifest records no paths (a run that
  stopped before recording, or an older kerasweights) and an entry is a
  folder with anything in it: we cannot tell a user's file from ours there;
* a folder that holds anything kerasweights did not write (no manifest, or
  top-level entries the manifest does not name) is always refused;
* a path that is an existing file is refused.
"""

import json
import os

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import OutputExistsError

__all__ = [
    "MANIFEST_NAME",
    "check_output_folder",
    "claim_output_folder",
    "read_manifest",
    "record_output_files",
]

MANIFEST_NAME = "kerasweights-manifest.json"


def _safe_entry(name):
    return (
        isinstance(name, str)
        and name not in ("", ".", "..", MANIFEST_NAME)
        and "/" not in name
        and "\\" not in name
    )


def _safe_path(path, entries):
    if not isinstance(path, str) or "\\" in path or path.startswith("/"):
        return False
    parts = path.split("/")
    return parts[0] in entries and all(p not in ("", ".", "..") for p in parts)


def read_manifest(folder):
    """The manifest of a folder kerasweights wrote, or ``None``.

    Args:
        folder: A folder path.

    Returns:
        The manifest as a dict (keys ``"written_by"``, ``"command"``,
        ``"entries"`` and, once recorded, ``"files"`` and ``"folders"``:
        ``/``-separated paths relative to ``folder``), or ``None`` when the
        folder has no readable manifest.
    """
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    entries = manifest.get("entries")
    if not isinstance(entries, list) or not all(map(_safe_entry, entries)):
        return None
    for key in ("files", "folders"):
        paths = manifest.get(key)
        if paths is None:
            continue
        if not isinstance(paths, list) or not all(
            _safe_path(p, entries) for p in paths
        ):
            return None
    return manifest


def _walk(folder, entries):
    """Files and folders inside ``entries``, as ``/``-separated paths."""
    files, folders = [], []
    for name in entries:
        path = os.path.join(folder, name)
        if os.path.islink(path) or os.path.isfile(path):
            files.append(name)
        elif os.path.isdir(path):
            folders.append(name)
            for root, dirs, names in os.walk(path):
                rel = os.path.relpath(root, folder).replace(os.sep, "/")
                for d in list(dirs):
                    if os.path.islink(os.path.join(root, d)):
                        # A link is removed as a link, never followed.
                        dirs.remove(d)
                        names.append(d)
                    else:
                        folders.append(f"{rel}/{d}")
                files.extend(f"{rel}/{n}" for n in names)
    return sorted(files), sorted(folders)


def _describe(names):
    shown = ", ".join(repr(n) for n in sorted(names)[:3])
    more = len(names) - 3
    return shown + (f" and {more} more" if more > 0 else "")


def _option_text(option):
    if option is None:
        return "--overwrite (overwrite=True)"
    if not isinstance(option, str) or not option:
        raise InvalidArgumentError(
            "`overwrite_option` must be a non-empty string such as "
            f"'--overwrite' or 'overwrite=True'. Received: {option!r}"
        )
    return option


def _plan(folder, command, overwrite, overwrite_option=None):
    """What an overwrite removes; raises when the folder must be kept."""
    option = _option_text(overwrite_option)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise OutputExistsError(
            f"The output folder {folder!r} is an existing file; expected a "
            "new or empty folder."
        )
    present = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    if not present:
        return [], []
    manifest = read_manifest(folder)
    ours = set(manifest["entries"]) if manifest else set()
    foreign = present - ours - {MANIFEST_NAME}
    if manifest is None or foreign:
        raise OutputExistsError(
            f"The output folder {folder!r} holds files kerasweights did "
            f"not write ({_describe(foreign or present)}); expected a new "
            "or empty folder, or one holding only a previous kerasweights "
            "run. Nothing was changed."
        )
    previous = manifest.get("command", "unknown")
    if previous != command:
        # Checked first: suggesting the overwrite option here would only
        # lead to this refusal.
        how = (
            f"{command} --overwrite"
            if overwrite_option is None
            else f"{command} with {option}"
        )
        raise OutputExistsError(
            f"The output folder {folder!r} holds a kerasweights {previous} "
            f"run; {how} replaces only a previous "
            f"{command} run. Choose another folder. Nothing was changed."
        )
    if not overwrite:
        raise OutputExistsError(
            f"The output folder {folder!r} holds a previous kerasweights "
            f"{previous} run; pass {option} to replace it, or choose "
            "another folder."
        )
    files, folders = _walk(folder, sorted(ours & present))
    if "files" in manifest and "folders" in manifest:
        known = set(manifest["files"]) | set(manifest["folders"])
        unknown = sorted(set(files + folders) - known)
        if unknown:
            raise OutputExistsError(
                f"The output folder {folder!r} holds {unknown[0]!r}, which "
                f"the previous kerasweights {previous} run did not write; "
                "move it away or choose another folder. Nothing was changed."
            )
    else:
        inside = sorted(p for p in files + folders if "/" in p)
        if inside:
            top = inside[0].split("/")[0]
            raise OutputExistsError(
                f"The output folder {folder!r} holds a kerasweights "
                f"{previous} run whose manifest records no file list, so a "
                f"file added to {top!r} cannot be told from ours; remove "
                "the folder yourself or choose another. Nothing was changed."
            )
    return files, folders


def check_output_folder(
    folder, command, overwrite=False, overwrite_option=None
):
    """Raise now if `claim_output_folder` would refuse ``folder``.

    Changes nothing; lets a command refuse before its expensive work.

    Args:
        folder: The output folder path.
        command: What will write, e.g. ``"tune"`` or ``"export"``.
        overwrite: Whether a previous run would be replaced.
        overwrite_option: How refusals name the overwrite switch, as in
            `claim_output_folder`.

    Raises:
        OutputExistsError: As `claim_output_folder`.
    """
    _plan(
        os.path.abspath(os.fspath(folder)),
        command,
        overwrite,
        overwrite_option,
    )


def claim_output_folder(
    folder, entries, command, overwrite=False, overwrite_option=None
):
    """Make ``folder`` ready for a run that writes ``entries``.

    Args:
        folder: The output folder path; created (with parents) if missing.
        entries: The top-level file and folder names the run will write.
        command: What is writing, e.g. ``"tune"`` or ``"export"``; stored
            in the manifest. ``overwrite`` replaces only a run of the same
            command.
        overwrite: Replace a previous kerasweights run in the folder.
        overwrite_option: How a refusal tells the user to replace a
            previous run: ``"--overwrite"`` from a command line,
            ``"overwrite=True"`` from Python. ``None`` (the default) names
            both, ``"--overwrite (overwrite=True)"``.

    Returns:
        The absolute folder path. Call `record_output_files` on it once
        the run has written its entries, so a later overwrite can tell
        them from files a user adds.

    Raises:
        OutputExistsError: ``folder`` is a file, holds a previous run and
            ``overwrite`` is false, holds a run of another command, or
            holds files kerasweights did not write (at the top level or,
            with ``overwrite``, inside the previous run's entries).
            Nothing is deleted in these cases.
    """
    folder = os.path.abspath(os.fspath(folder))
    entries = list(entries)
    if not all(map(_safe_entry, entries)):
        raise ValueError(f"invalid manifest entries: {entries!r}")

    files, folders = _plan(folder, command, overwrite, overwrite_option)
    for name in files:
        os.remove(os.path.join(folder, *name.split("/")))
    for name in sorted(folders, key=lambda p: p.count("/"), reverse=True):
        os.rmdir(os.path.join(folder, *name.split("/")))

    os.makedirs(folder, exist_ok=True)
    _write_manifest(
        folder,
        {
            "written_by": "kerasweights",
            "command": command,
            "entries": sorted(set(entries)),
        },
    )
    return folder


def record_output_files(folder):
    """Record in the manifest every path the run wrote in its entries.

    Args:
        folder: A folder claimed with `claim_output_folder`, after the run
            wrote its entries.

    Raises:
        OutputExistsError: ``folder`` has no kerasweights manifest.
    """
    folder = os.path.abspath(os.fspath(folder))
    manifest = read_manifest(folder)
    if manifest is None:
        raise OutputExistsError(
            f"The folder {folder!r} has no kerasweights manifest to record "
            "its files in; claim it with claim_output_folder first."
        )
    files, folders = _walk(folder, manifest["entries"])
    _write_manifest(folder, {**manifest, "files": files, "folders": folders})


def _write_manifest(folder, manifest):
    path = os.path.join(folder, MANIFEST_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
