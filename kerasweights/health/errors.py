"""Error and warning types of the gradient-health callbacks."""

from kerasweights.errors import KerasWeightsError
from kerasweights.errors import KerasWeightsWarning

__all__ = ["GradientHealthError", "GradientHealthWarning"]


class GradientHealthError(KerasWeightsError, RuntimeError):
    """Training stopped because a gradient-health problem was found.

    Attributes:
        diagnosis: The `Diagnosis` that stopped training.
        recovery_path: Where the recovery point (the weights from before
            the last step whose loss and gradients were finite and sane)
            was saved, or None.
    """

    def __init__(self, message, diagnosis=None, recovery_path=None):
        super().__init__(message)
        self.diagnosis = diagnosis
        self.recovery_path = recovery_path


class GradientHealthWarning(KerasWeightsWarning):
    """A gradient-health problem was found; training goes on."""
