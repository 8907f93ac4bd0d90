"""Loading model files with errors a user can act on.

`load_model` wraps ``keras.saving.load_model``. Before Keras sees the file it
checks that the path is a readable ``.keras`` archive and that every custom
object the file names is registered; what is missing is named with the
Python package that would provide it. Whatever still goes wrong while Keras
loads comes back as one `ModelFileError` line.

Files written with the bare class name of one of our objects (``"MGU"``
rather than ``"kerasweights>MGU"``, case C03) load too: `load_plugins`
registers a bare alias for every class of an installed plugin package,
unless two packages want the same bare name.
"""

import importlib.util
import json
import os
import zipfile

import keras

from kerasweights.errors import InvalidTypeError
from kerasweights.errors import ModelFileError

__all__ = ["load_model", "read_model_config", "missing_objects"]

_REQUIRED_MEMBERS = ("config.json", "metadata.json")


# The first bytes of every HDF5 file (the Keras 2 and tf_keras ``.h5``).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path):
    try:
        with open(path, "rb") as f:
            return f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
    except OSError:
        return False


def read_model_config(path):
    """Read the ``config.json`` of a ``.keras`` file without building it.

    Args:
        path: Path of a ``.keras`` file.

    Returns:
        The parsed configuration dict.

    Raises:
        ModelFileError: The path is missing or not a file, does not end in
            ``.keras``, is not a complete zip archive (truncated or another
            format), lacks ``config.json`` or ``metadata.json``, or has a
            member that fails its checksum.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(
            "`path` must be a path to a .keras file (str or os.PathLike). "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    shown = repr(os.fspath(path))
    expected = "expected a Keras 3 .keras file written by model.save()"
    if not os.path.exists(path):
        raise ModelFileError(
            f"The model file {shown} does not exist; {expected}."
        )
    if not os.path.isfile(path):
        raise ModelFileError(
            f"The model path {shown} is not a file; {expected}."
        )
    if _is_hdf5(path):
        raise ModelFileError(
            f"The model file {shown} is a legacy HDF5 (.h5) model file, "
            "the Keras 2 / tf_keras format; expected a Keras 3 .keras "
            "file. Convert it once: "
            f"keras.saving.load_model({shown}).save('model.keras') "
            "(for a model saved by tf_keras, load it with "
            "tf_keras.models.load_model, rebuild it in Keras 3 and save "
            "it as .keras)."
        )
    if not os.fspath(path).endswith(".keras"):
        raise ModelFileError(
            f"The model file {shown} does not end in .keras; {expected}."
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"The model file {shown} is not a .keras archive (truncated, or "
            f"not written by model.save()); {expected}."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [m for m in _REQUIRED_MEMBERS if m not in names]
            if missing:
                raise ModelFileError(
                    f"The model file {shown} is a zip archive without "
                    f"{', '.join(missing)}; {expected}."
                )
            damaged = archive.testzip()
            if damaged is not None:
                raise ModelFileError(
                    f"The model file {shown} is damaged (member {damaged!r} "
                    f"fails its checksum); {expected}."
                )
            raw = archive.read("config.json")
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(
            f"The model file {shown} is not a .keras archive (truncated, or "
            f"not written by model.save(): {exc}); {expected}."
        ) from exc
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"The model file {shown} has a config.json that is not valid "
            f"JSON; {expected}."
        ) from exc


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def missing_objects(config):
    """Custom objects a model config names that are not registered.

    Args:
        config: A model configuration as stored in a ``.keras`` file.

    Returns:
        A sorted list of ``(registered_name, module)`` pairs.
    """
    missing = set()
    for node in _walk(config):
        registered = node.get("registered_name")
        if not isinstance(registered, str) or "class_name" not in node:
            continue
        module = node.get("module") or ""
        if module == "keras" or module.startswith("keras."):
            continue
        if keras.saving.get_registered_object(registered) is None:
            missing.add((registered, module))
    return sorted(missing)


def _provider_hint(registered, module):
    """Where the missing object would come from, as a user can act on it."""
    prefix = registered.split(">", 1)[0] if ">" in registered else ""
    top = (module or "").split(".")[0]
    if prefix and prefix != "Custom":
        package = prefix
    elif top and top != "__main__":
        package = top
    else:
        # Keras' default package, or a class defined in the saving script.
        return (
            " (defined in the program that saved the model, not in an "
            "installed package: define or import it, registered with "
            "keras.saving.register_keras_serializable, before loading)"
        )
    try:
        installed = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        installed = False
    if installed:
        return (
            f" (Python package {package!r} is installed but does not register"
            " it: check its version)"
        )
    # No distribution name is suggested: one guessed from the package
    # name could be another project's (or a squatter's) on PyPI.
    return (
        f" (from Python package {package!r}, which is not installed: "
        "install the distribution that provides it, as its authors name it)"
    )


def load_model(path, compile=True, safe_mode=True):
    """Load a ``.keras`` model, with one clear error when that fails.

    Args:
        path: Path of a ``.keras`` file.
        compile: Passed to ``keras.saving.load_model``.
        safe_mode: Passed to ``keras.saving.load_model``.

    Returns:
        The loaded Keras model.

    Raises:
        ModelFileError: The file is missing, damaged, not a Keras model, or
            needs a plugin that is not installed (the message names the
            registered name and the package that provides it).
    """
    import kerasweights  # registers every installed plugin

    kerasweights.load_plugins()
    config = read_model_config(path)
    path = os.fspath(path)
    missing = missing_objects(config)
    if missing:
        registered, module = missing[0]
        others = [name for name, _ in missing[1:]]
        more = (
            f"; it also needs {', '.join(map(repr, others))}" if others else ""
        )
        raise ModelFileError(
            f"The model file {path!r} needs the custom object "
            f"{registered!r}{_provider_hint(registered, module)}{more}."
        )
    try:
        return keras.saving.load_model(
            path, compile=compile, safe_mode=safe_mode
        )
    except ModelFileError:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())
        if "safe_mode" in detail and "Lambda" in detail:
            # Keras' own text goes on to suggest turning safe mode off,
            # which runs code from the file; we never advise that.
            raise ModelFileError(
                f"The model file {path!r} holds a Lambda layer, whose "
                "Python code is not loaded from files by default because "
                "loading runs it; expected a model without Lambda layers "
                "(rebuild it with a registered layer), or load it yourself "
                "only if you trust the file and where it came from."
            ) from exc
        if len(detail) > 300:
            detail = detail[:297] + "..."
        raise ModelFileError(
            f"The model file {path!r} could not be loaded by Keras "
            f"({type(exc).__name__}: {detail}); expected a Keras 3 .keras "
            "file whose custom objects are installed."
        ) from exc
