"""Output folders that never lose a user's files.

A command that writes into a folder first *claims* it. The claim writes a
manifest, ``kerasweights-manifest.json``, naming every top-level entry the
command will write. The rules:

* a folder that does not exist, or is empty, is claimed;
* a folder that holds a previous kerasweights run (a manifest, and nothing
  but the entries it names) is refused unless ``overwrite=True``; with
  ``overwrite=True`` exactly the entries named in the old manifest are
  removed, nothing else;
* a folder that holds anything kerasweights did not write (no manifest, or
  entries the manifest does not name) is always refused, ``overwrite`` or
  not: we cannot tell a user's file from ours, so we do not delete it;
* a path that is an existing file is refused.
"""

import json
import os
import shutil

from kerasweights.errors import OutputExistsError

__all__ = ["MANIFEST_NAME", "claim_output_folder", "read_manifest"]

MANIFEST_NAME = "kerasweights-manifest.json"


def _safe_entry(name):
    return (
        isinstance(name, str)
        and name not in ("", ".", "..", MANIFEST_NAME)
        and "/" not in name
        and "\\" not in name
    )


def read_manifest(folder):
    """The manifest of a folder kerasweights wrote, or ``None``.

    Args:
        folder: A folder path.

    Returns:
        The manifest as a dict (keys ``"written_by"``, ``"command"``,
        ``"entries"``), or ``None`` when the folder has no readable
        manifest.
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
    return manifest


def _describe(names):
    shown = ", ".join(repr(n) for n in sorted(names)[:3])
    more = len(names) - 3
    return shown + (f" and {more} more" if more > 0 else "")


def claim_output_folder(folder, entries, command, overwrite=False):
    """Make ``folder`` ready for a run that writes ``entries``.

    Args:
        folder: The output folder path; created (with parents) if missing.
        entries: The top-level file and folder names the run will write.
        command: What is writing, e.g. ``"tune"`` or ``"export"``; stored
            in the manifest.
        overwrite: Replace a previous kerasweights run in the folder.

    Returns:
        The absolute folder path.

    Raises:
        OutputExistsError: ``folder`` is a file, holds a previous run and
            ``overwrite`` is false, or holds files kerasweights did not
            write. Nothing is deleted in these cases.
    """
    folder = os.path.abspath(os.fspath(folder))
    entries = list(entries)
    if not all(map(_safe_entry, entries)):
        raise ValueError(f"invalid manifest entries: {entries!r}")

    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise OutputExistsError(
            f"The output folder {folder!r} is an existing file; expected a "
            "new or empty folder."
        )
    present = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    if present:
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
        if not overwrite:
            raise OutputExistsError(
                f"The output folder {folder!r} holds a previous kerasweights "
                f"{manifest.get('command', 'run')} run; pass --overwrite "
                "(overwrite=True) to replace it, or choose another folder."
            )
        for name in sorted(ours & present):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)

    os.makedirs(folder, exist_ok=True)
    manifest = {
        "written_by": "kerasweights",
        "command": command,
        "entries": sorted(set(entries)),
    }
    with open(os.path.join(folder, MANIFEST_NAME), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return folder
