"""Each diagnosis on its own, as a callback plugin.

Every class here is a `GradientHealth` that runs one diagnosis only (its
``diagnoses`` argument is fixed); everything else, the tap included, is the
same. They let a user or a tool ask the registry for one check by name, for
example ``kerasweights.get_plugin("health_dead_relu", kind="callback")``.
See docs/health.md for what each diagnosis means and how to fix it.
"""

import keras

from kerasweights.health.callback import GradientHealth

__all__ = [
    "NonFiniteCheck",
    "ExplodingGradientCheck",
    "VanishingGradientCheck",
    "DeadReLUCheck",
    "SaturationCheck",
    "UpdateRatioHighCheck",
    "UpdateRatioLowCheck",
    "LossNotDecreasingCheck",
    "OscillatingLossCheck",
]


class _OneDiagnosis(GradientHealth):
    """A GradientHealth that runs the diagnosis named by ``diagnosis``."""

    diagnosis = None

    def __init__(
        self,
        every_n_steps=1,
        on_problem="warn",
        log_dir=None,
        patience=5,
        dead_steps=3,
        thresholds=None,
        watch_activations=True,
        recovery_path=None,
        read_every=None,
    ):
        super().__init__(
            every_n_steps=every_n_steps,
            on_problem=on_problem,
            log_dir=log_dir,
            patience=patience,
            dead_steps=dead_steps,
            thresholds=thresholds,
            diagnoses=[self.diagnosis],
            watch_activations=watch_activations,
            recovery_path=recovery_path,
            read_every=read_every,
        )

    def get_config(self):
        config = super().get_config()
        del config["diagnoses"]
        return config


@keras.saving.register_keras_serializable(package="kerasweights")
class NonFiniteCheck(_OneDiagnosis):
    """Gradient health, NaN/Inf only: the first layer and step it appeared."""

    plugin_kind = "callback"
    plugin_name = "health_nan"
    diagnosis = "nan"


@keras.saving.register_keras_serializable(package="kerasweights")
class ExplodingGradientCheck(_OneDiagnosis):
    """Gradient health, exploding gradients only (norm huge or growing)."""

    plugin_kind = "callback"
    plugin_name = "health_exploding"
    diagnosis = "exploding"


@keras.saving.register_keras_serializable(package="kerasweights")
class VanishingGradientCheck(_OneDiagnosis):
    """Gradient health, vanishing gradients only (first/last layer ratio)."""

    plugin_kind = "callback"
    plugin_name = "health_vanishing"
    diagnosis = "vanishing"


@keras.saving.register_keras_serializable(package="kerasweights")
class DeadReLUCheck(_OneDiagnosis):
    """Gradient health, dead ReLU units only (zero on whole batches)."""

    plugin_kind = "callback"
    plugin_name = "health_dead_relu"
    diagnosis = "dead_relu"


@keras.saving.register_keras_serializable(package="kerasweights")
class SaturationCheck(_OneDiagnosis):
    """Gradient health, saturated tanh/sigmoid layers only."""

    plugin_kind = "callback"
    plugin_name = "health_saturated"
    diagnosis = "saturated"


@keras.saving.register_keras_serializable(package="kerasweights")
class UpdateRatioHighCheck(_OneDiagnosis):
    """Gradient health, update/weight ratio too high (learning rate)."""

    plugin_kind = "callback"
    plugin_name = "health_update_ratio_high"
    diagnosis = "update_ratio_high"


@keras.saving.register_keras_serializable(package="kerasweights")
class UpdateRatioLowCheck(_OneDiagnosis):
    """Gradient health, update/weight ratio too low (learning rate)."""

    plugin_kind = "callback"
    plugin_name = "health_update_ratio_low"
    diagnosis = "update_ratio_low"


@keras.saving.register_keras_serializable(package="kerasweights")
class LossNotDecreasingCheck(_OneDiagnosis):
    """Gradient health, loss that does not go down only."""

    plugin_kind = "callback"
    plugin_name = "health_loss_not_decreasing"
    diagnosis = "loss_not_decreasing"


@keras.saving.register_keras_serializable(package="kerasweights")
class OscillatingLossCheck(_OneDiagnosis):
    """Gradient health, oscillating loss only (jumps, no downward trend)."""

    plugin_kind = "callback"
    plugin_name = "health_oscillating"
    diagnosis = "oscillating"
