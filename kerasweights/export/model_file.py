"""Loading a user's ``.keras`` file with one clear error when it is bad."""

import os

from kerasweights.errors import ModelFileError
from kerasweights.saving import load_model

__all__ = ["load_keras_model"]

# The first bytes of every HDF5 file (legacy Keras 2 / tf_keras ``.h5``).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path):
    try:
        with open(path, "rb") as f:
            return f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
    except OSError:
        return False


def load_keras_model(path):
    """Load a ``.keras`` model for export, without its training config.

    The checks and messages are those of `kerasweights.saving.load_model`,
    except for a legacy HDF5 model file (``.h5``, the Keras 2 and tf_keras
    format): it is refused with a message saying what it is and how to
    turn it into a ``.keras`` file.

    Args:
        path: Path to a Keras 3 ``.keras`` file.

    Returns:
        The loaded `keras.Model`.

    Raises:
        ModelFileError: The file is missing, a legacy ``.h5`` file, not a
            ``.keras`` archive, truncated or damaged, needs a plugin that
            is not installed, or Keras cannot rebuild the model from it.
    """
    if isinstance(path, (str, os.PathLike)) and os.path.isfile(path):
        text = os.fspath(path)
        if _is_hdf5(path):
            raise ModelFileError(
                f"The model file {text!r} is a legacy HDF5 (.h5) model file, "
                "the Keras 2 / tf_keras format; expected a Keras 3 .keras "
                "file. Convert it once, then export the .keras file: "
                f"keras.saving.load_model({text!r}).save('model.keras') "
                "(for a model saved by tf_keras, load it with "
                "tf_keras.models.load_model, rebuild it in Keras 3 and save "
                "it as .keras)."
            )
    return load_model(path, compile=False)
