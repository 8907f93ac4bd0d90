"""Exception and warning types raised by kerasweights.

Every error we raise for a user's mistake is one of these. Each also
subclasses the matching built-in (`ValueError`, `TypeError`, ...), so code
that already catches the built-in keeps working.
"""

__all__ = [
    "KerasWeightsError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "PluginNotFoundError",
    "PluginConflictError",
    "InputDataError",
    "OutputExistsError",
    "ModelFileError",
    "ExportVerificationError",
    "SearchFailedError",
    "KerasWeightsWarning",
    "PluginLoadWarning",
]


class KerasWeightsError(Exception):
    """Base class of every error kerasweights raises on purpose."""


class InvalidArgumentError(KerasWeightsError, ValueError):
    """An argument has a value outside what the callee accepts."""


class InvalidTypeError(KerasWeightsError, TypeError):
    """An argument has a type the callee does not accept."""


class PluginNotFoundError(KerasWeightsError, ValueError):
    """No installed plugin matches the requested name."""


class PluginConflictError(KerasWeightsError, ValueError):
    """Two plugins claim the same registered Keras name."""


class InputDataError(KerasWeightsError, ValueError):
    """A data file or array does not have the expected content."""


class OutputExistsError(KerasWeightsError, FileExistsError):
    """An output location already holds files we would overwrite."""


class ModelFileError(KerasWeightsError, ValueError):
    """A model file is missing, truncated or not a Keras model."""


class ExportVerificationError(KerasWeightsError, RuntimeError):
    """An exported model does not reproduce the in-memory model."""


class SearchFailedError(KerasWeightsError, RuntimeError):
    """Every trial of a search failed; no model can be exported."""


class KerasWeightsWarning(UserWarning):
    """Base class of every warning kerasweights emits."""


class PluginLoadWarning(KerasWeightsWarning):
    """An installed plugin could not be imported; the others still load."""
