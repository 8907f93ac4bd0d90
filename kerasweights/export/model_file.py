"""Loading a user's ``.keras`` file with one clear error when it is bad."""

from kerasweights.saving import load_model

__all__ = ["load_keras_model"]


def load_keras_model(path):
    """Load a ``.keras`` model for export, without its training config.

    The checks and messages are those of `kerasweights.saving.load_model`;
    a legacy HDF5 model file (``.h5``, the Keras 2 and tf_keras format) is
    refused with a message saying what it is and how to turn it into a
    ``.keras`` file.

    Args:
        path: Path to a Keras 3 ``.keras`` file.

    Returns:
        The loaded `keras.Model`.

    Raises:
        ModelFileError: The file is missing, a legacy ``.h5`` file, not a
            ``.keras`` archive, truncated or damaged, needs a plugin that
            is not installed, or Keras cannot rebuild the model from it.
    """
    return load_model(path, compile=False)
