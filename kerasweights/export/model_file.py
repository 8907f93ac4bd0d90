"""Loading a user's ``.keras`` file with one clear error when it is bad."""

import os
import zipfile

from kerasweights.errors import ModelFileError

__all__ = ["load_keras_model"]

_REQUIRED_MEMBERS = ("config.json", "metadata.json")


def _check_archive(path):
    shown = repr(os.fspath(path))
    if not os.path.exists(path):
        raise ModelFileError(
            f"The model file {shown} does not exist; expected a .keras file "
            "written by model.save()."
        )
    if not os.path.isfile(path):
        raise ModelFileError(
            f"The model path {shown} is not a file; expected a .keras file "
            "written by model.save()."
        )
    if not os.fspath(path).endswith(".keras"):
        raise ModelFileError(
            f"The model file {shown} does not end in .keras; expected a "
            "Keras 3 .keras file written by model.save()."
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"The model file {shown} is not a .keras archive (truncated, or "
            "not written by model.save()); expected a Keras 3 .keras file."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFileError(
            f"The model file {shown} cannot be read as a .keras archive "
            f"({exc}); expected a Keras 3 .keras file."
        ) from exc
    missing = [m for m in _REQUIRED_MEMBERS if m not in names]
    if missing:
        raise ModelFileError(
            f"The model file {shown} is a zip archive without "
            f"{', '.join(missing)}; expected a Keras 3 .keras file."
        )
    if bad is not None:
        raise ModelFileError(
            f"The model file {shown} is damaged (member {bad!r} fails its "
            "checksum); expected an intact Keras 3 .keras file."
        )


def load_keras_model(path):
    """Load a ``.keras`` model, with every installed plugin available.

    Args:
        path: Path to a Keras 3 ``.keras`` file.

    Returns:
        The loaded `keras.Model`.

    Raises:
        ModelFileError: The file is missing, not a ``.keras`` archive,
            truncated or damaged, or Keras cannot rebuild the model from it
            (for instance it uses a custom object that no installed plugin
            provides).
    """
    _check_archive(path)

    import keras

    import kerasweights

    try:
        return keras.saving.load_model(
            path, custom_objects=kerasweights.custom_objects(), compile=False
        )
    except Exception as exc:  # any failure here is a bad model file
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelFileError(
            f"The model file {os.fspath(path)!r} could not be loaded as a "
            f"Keras model ({type(exc).__name__}: {detail}); expected a Keras "
            "3 .keras file whose custom objects are installed."
        ) from exc
