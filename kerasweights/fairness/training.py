"""Training with a fairness penalty in plain ``model.fit``.

The sensitive attribute is a named input. Wrap any Keras model (the
*predictor*, which never sees the sensitive attribute) in `FairnessModel`
and feed a dict whose ``sensitive`` key holds the group codes::

    model = FairnessModel(predictor, MMDPenalty(), sensitive="group",
                          penalty_weight=1.0)
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["accuracy", DemographicParityDifference()])
    model.fit({"features": x, "group": g}, y, sample_weight=w)

The wrapper strips the sensitive key before calling the predictor, so the
predictor's outputs are untouched; its `compute_loss` adds
``penalty_weight * penalty(groups, y_pred, y_true, sample_weight)`` to the
compiled loss. It works with ``jit_compile=True`` and saves to ``.keras``.

For serving, `prediction_model` returns the predictor alone: its signature
takes only the features, never the sensitive attribute. Export that model
(``export_saved_model(prediction_model(model), path)``); the training
wrapper itself has no serving inputs.
"""

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.fairness.group_codes import check_group_codes
from kerasweights.fairness.group_codes import group_codes
from kerasweights.fairness.group_codes import nan_unless
from kerasweights.fairness.keras_metrics import GroupFairnessMetric
from kerasweights.fairness.penalties import FairnessPenalty

__all__ = ["SensitiveInputModel", "FairnessModel", "prediction_model"]


def _check_name(value):
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(
            "`sensitive` must be the non-empty name of an input. Received: "
            f"sensitive={value!r}"
        )
    return value


def _as_model(model):
    if isinstance(model, dict):
        model = keras.saving.deserialize_keras_object(model)
    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            "`model` must be a keras.Model. Received: model of type "
            f"{type(model).__name__}"
        )
    return model


class SensitiveInputModel(keras.Model):
    """Base of the models that read a named sensitive input while training.

    It calls ``predictor`` on the inputs without the ``sensitive`` key, and
    routes the sensitive codes to the group-fairness metrics given to
    ``compile(metrics=...)`` (instances of `GroupFairnessMetric`); other
    metrics go to Keras as usual. ``fit`` and ``evaluate`` check that array
    group codes are integers in ``[0, group_count)`` before the first step
    (see `kerasweights.fairness.group_codes` for data pipelines). It has
    no serving inputs of its own: export `prediction_model`.

    Args:
        predictor: The Keras model that makes the predictions.
        sensitive: The name of the input that holds the group codes.
        **kwargs: Passed to `keras.Model` (``name``, ``trainable``).
    """

    def __init__(self, predictor, sensitive="group", **kwargs):
        super().__init__(**kwargs)
        self.predictor = _as_model(predictor)
        self.sensitive = _check_name(sensitive)
        self._group_metrics = []

    def features(self, inputs):
        """The inputs the predictor takes (the sensitive key removed)."""
        if not isinstance(inputs, dict):
            return inputs
        rest = {k: v for k, v in inputs.items() if k != self.sensitive}
        if len(rest) == 1 and len(self.predictor.inputs or ()) <= 1:
            return next(iter(rest.values()))
        return rest

    def groups(self, inputs):
        """The group codes from the inputs; raises if they are missing."""
        if not isinstance(inputs, dict) or self.sensitive not in inputs:
            keys = sorted(inputs) if isinstance(inputs, dict) else None
            raise InvalidArgumentError(
                f"Training {type(self).__name__} needs the sensitive input "
                f"{self.sensitive!r} in a dict of inputs. Received: "
                f"{'keys ' + str(keys) if keys is not None else 'no dict'}"
            )
        return inputs[self.sensitive]

    @property
    def group_count(self):
        """How many group codes training accepts (``0 .. count - 1``)."""
        return getattr(self, "num_groups", 2)

    def checked_groups(self, inputs):
        """Flat int32 group codes and a flag, True when all are valid.

        Codes outside ``[0, group_count)`` raise `InvalidArgumentError` on
        concrete values and fail an assertion in a traced step; under XLA
        the caller makes its loss NaN with the flag (see
        `kerasweights.fairness.group_codes`).
        """
        return group_codes(
            self.groups(inputs), self.group_count, self._codes_owner()
        )

    def _codes_owner(self):
        return f"{type(self).__name__} input {self.sensitive!r}"

    def _check_inputs(self, x):
        if isinstance(x, dict) and self.sensitive in x:
            check_group_codes(
                x[self.sensitive], self.group_count, self._codes_owner()
            )
            for metric in self._group_metrics:
                check_group_codes(
                    x[self.sensitive], metric.num_groups, metric.name
                )

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, after checking the group codes of ``x`` and
        of ``validation_data`` when they are arrays (before any step)."""
        self._check_inputs(x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            self._check_inputs(validation[0])
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, after checking the group codes of ``x``."""
        self._check_inputs(x)
        return super().evaluate(x, y, *args, **kwargs)

    @property
    def inputs(self):
        # Exporters and tools that read `model.inputs` land here: this
        # wrapper has no fixed input signature, and the model to serve is
        # the predictor, without the sensitive input.
        raise AttributeError(
            f"{type(self).__name__} has no serving inputs of its own: "
            "export `kerasweights.fairness.prediction_model(model)` (or "
            "`model.prediction_model()`), the predictor without the "
            f"sensitive input {self.sensitive!r}"
        )

    def call(self, inputs, training=None):
        return self.predictor(self.features(inputs), training=training)

    def compile(self, *args, metrics=None, **kwargs):
        plain, grouped = [], []
        for metric in metrics or []:
            target = (
                grouped if isinstance(metric, GroupFairnessMetric) else plain
            )
            target.append(metric)
        self._group_metrics = grouped
        super().compile(*args, metrics=plain or None, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self._group_metrics:
            config = dict(config)
            extra = [
                keras.saving.serialize_keras_object(m)
                for m in self._group_metrics
            ]
            config["metrics"] = list(config.get("metrics") or []) + extra
        return config

    def compile_from_config(self, config):
        def restore(value):
            if isinstance(value, dict) and "class_name" in value:
                return keras.saving.deserialize_keras_object(value)
            if isinstance(value, list):
                return [restore(v) for v in value]
            if isinstance(value, dict):
                return {k: restore(v) for k, v in value.items()}
            return value

        self.compile(**{k: restore(v) for k, v in config.items()})
        if self.built and self.optimizer is not None:
            self.optimizer.build(self.predictor.trainable_variables)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._group_metrics:
            groups = self.groups(x)
            for metric in self._group_metrics:
                metric.update_state(
                    y, y_pred, groups=groups, sample_weight=sample_weight
                )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    @property
    def metrics(self):
        found = list(super().metrics)
        for metric in self._group_metrics:
            if not any(metric is m for m in found):
                found.append(metric)
        return found

    def prediction_model(self):
        """The predictor alone, for export: no sensitive input."""
        return self.predictor

    def get_config(self):
        return {
            "predictor": keras.saving.serialize_keras_object(self.predictor),
            "sensitive": self.sensitive,
            "name": self.name,
            "trainable": self.trainable,
        }


@keras.saving.register_keras_serializable(package="kerasweights")
class FairnessModel(SensitiveInputModel):
    """Train any Keras model with a fairness penalty, in plain ``fit``.

    The loss minimised is ``L(y, f(x)) + lambda * P(g, f(x), y, w)`` where
    ``L`` is the compiled loss (with its own reduction), ``P`` the penalty
    with the reduction it documents, ``g`` the named sensitive input and
    ``w`` the sample weights given to ``fit``. The batch value of ``P`` is
    logged as ``fairness_penalty``.

    Args:
        predictor: A Keras model with one output of one score per sample.
        penalty: A `FairnessPenalty` (or its serialized config).
        sensitive: The name of the input holding integer group codes.
        penalty_weight: ``lambda`` (>= 0).
        **kwargs: Passed to `keras.Model`.

    Raises:
        InvalidArgumentError: ``penalty_weight`` is negative, ``sensitive``
            is empty, training data lacks the sensitive input, or a group
            code is not an integer in ``[0, penalty.group_count)``
            (checked by ``fit`` and ``evaluate`` before the first step).
        InvalidTypeError: ``predictor`` or ``penalty`` has the wrong type.

    Example:
        >>> import numpy as np, keras
        >>> from kerasweights.fairness import FairnessModel, MMDPenalty
        >>> inp = keras.Input((3,), name="features")
        >>> net = keras.Model(inp, keras.layers.Dense(1, "sigmoid")(inp))
        >>> model = FairnessModel(net, MMDPenalty(), penalty_weight=0.5)
        >>> model.compile("adam", "binary_crossentropy")
        >>> x = {"features": np.ones((8, 3)), "group": np.arange(8) % 2}
        >>> _ = model.fit(x, np.ones(8), epochs=1, verbose=0)

    Reference:
        Prost et al., "Toward a better trade-off between performance and
        fairness with kernel-based distribution matching", 2019.
    """

    plugin_kind = "regularizer"
    plugin_name = "fairness_model"

    def __init__(
        self,
        predictor,
        penalty,
        sensitive="group",
        penalty_weight=1.0,
        **kwargs,
    ):
        super().__init__(predictor, sensitive=sensitive, **kwargs)
        if isinstance(penalty, dict):
            penalty = keras.saving.deserialize_keras_object(penalty)
        if not isinstance(penalty, FairnessPenalty):
            raise InvalidTypeError(
                "`penalty` must be a FairnessPenalty. Received: penalty of "
                f"type {type(penalty).__name__}"
            )
        ok = isinstance(penalty_weight, (int, float)) and penalty_weight >= 0
        if isinstance(penalty_weight, bool) or not ok:
            raise InvalidArgumentError(
                "`penalty_weight` must be a non-negative number. Received: "
                f"penalty_weight={penalty_weight!r}"
            )
        self.penalty = penalty
        self.penalty_weight = float(penalty_weight)
        self.penalty_tracker = keras.metrics.Mean(name="fairness_penalty")

    @property
    def group_count(self):
        return self.penalty.group_count

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = super().compute_loss(
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=training,
        )
        groups, valid = self.checked_groups(x)
        value = self.penalty(
            groups, y_pred, y_true=y, sample_weight=sample_weight
        )
        value = nan_unless(valid, value)
        self.penalty_tracker.update_state(value)
        return loss + self.penalty_weight * keras.ops.cast(value, loss.dtype)

    def get_config(self):
        config = super().get_config()
        config["penalty"] = keras.saving.serialize_keras_object(self.penalty)
        config["penalty_weight"] = self.penalty_weight
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["predictor"] = _as_model(config["predictor"])
        return cls(**config)


def prediction_model(model, sensitive="group"):
    """The model to export for serving, without the sensitive input.

    * For a `SensitiveInputModel` (`FairnessModel`,
      `AdversarialDebiasingModel`, `RateConstrainedModel`): its predictor.
    * For a functional model with an input named ``sensitive`` that its
      outputs do not depend on (e.g. the input only fed a penalty layer): a
      functional model over the other inputs with the same layers.
    * For any other model: the model itself.

    Args:
        model: A Keras model.
        sensitive: The sensitive input's name (functional models only).

    Returns:
        A `keras.Model` whose inputs exclude the sensitive attribute.

    Raises:
        InvalidArgumentError: The model's outputs use the sensitive input,
            so prediction needs it; export the model as it is.
    """
    if isinstance(model, SensitiveInputModel):
        return model.prediction_model()
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return model
    names = [getattr(t, "name", "") for t in inputs]
    if sensitive not in names:
        return model
    kept = [t for t, n in zip(inputs, names, strict=True) if n != sensitive]
    try:
        outputs = model.outputs
        return keras.Model(
            inputs=kept if len(kept) > 1 else kept[0],
            outputs=outputs if len(outputs) > 1 else outputs[0],
            name=f"{model.name}_prediction",
        )
    except ValueError as exc:
        raise InvalidArgumentError(
            f"The outputs of {model.name!r} depend on the sensitive input "
            f"{sensitive!r}, so it cannot be left out of the serving "
            f"signature. Received: a model whose prediction uses it ({exc})"
        ) from exc
