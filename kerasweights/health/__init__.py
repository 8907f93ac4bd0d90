"""Gradient health: watch the real training step's gradients, diagnose.

`GradientHealth` is a Keras callback (plugin kind ``"callback"``) that taps
the gradients ``fit`` computes, inside the compiled step, and reports NaN/Inf,
exploding and vanishing gradients, dead ReLU units, saturated tanh/sigmoid
layers, learning rates far off and loss that does not go down. Each
diagnosis is also a callback plugin of its own (``health_nan``,
``health_dead_relu``...: a `GradientHealth` running that diagnosis only).
See docs/health.md.
"""

from kerasweights.health.callback import GradientHealth
from kerasweights.health.checks import DeadReLUCheck
from kerasweights.health.checks import ExplodingGradientCheck
from kerasweights.health.checks import LossNotDecreasingCheck
from kerasweights.health.checks import NonFiniteCheck
from kerasweights.health.checks import OscillatingLossCheck
from kerasweights.health.checks import SaturationCheck
from kerasweights.health.checks import UpdateRatioHighCheck
from kerasweights.health.checks import UpdateRatioLowCheck
from kerasweights.health.checks import VanishingGradientCheck
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
    "NonFiniteCheck",
    "ExplodingGradientCheck",
    "VanishingGradientCheck",
    "DeadReLUCheck",
    "SaturationCheck",
    "UpdateRatioHighCheck",
    "UpdateRatioLowCheck",
    "LossNotDecreasingCheck",
    "OscillatingLossCheck",
    "GradientTap",
    "Diagnosis",
    "DIAGNOSES",
    "Thresholds",
    "StepRecord",
    "LayerStats",
    "GradientHealthError",
    "GradientHealthWarning",
]
