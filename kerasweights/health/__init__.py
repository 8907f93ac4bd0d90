"""Gradient health: watch the real training step's gradients, diagnose.

`GradientHealth` is a Keras callback (plugin kind ``"callback"``) that taps
the gradients ``fit`` computes, inside the compiled step, and reports NaN/Inf,
exploding and vanishing gradients, dead ReLU units, saturated tanh/sigmoid
layers, learning rates far off and loss that does not go down. See
docs/health.md.
"""

from kerasweights.health.callback import GradientHealth
from kerasweights.health.diagnoses import DIAGNOSES
from kerasweights.health.diagnoses import Diagnosis
from kerasweights.health.diagnoses import Thresholds
from kerasweights.health.errors import GradientHealthError
from kerasweights.health.errors import GradientHealthWarning
from kerasweights.health.records import LayerStats
from kerasweights.health.records import StepRecord
from kerasweights.health.tap import GradientTap

__all__ = [
    "GradientHealth",
    "GradientTap",
    "Diagnosis",
    "DIAGNOSES",
    "Thresholds",
    "StepRecord",
    "LayerStats",
    "GradientHealthError",
    "GradientHealthWarning",
]
