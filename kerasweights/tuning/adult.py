"""A tabular task for the search: Adult income with a fairness penalty.

`AdultHyperModel` searches, on the UCI Adult data shipped with kerasweights
(`kerasweights.datasets.load_adult`, sensitive attribute ``sex``), a dense
network whose training loss carries a fairness penalty: the penalty is a
hyperparameter (``penalty``: ``"none"`` or any installed plugin of kind
``"regularizer"`` that is a `kerasweights.fairness.FairnessPenalty`), and
so is its weight (``penalty_weight``, active only when a penalty is
chosen). A penalty class that offers ``tunable_arguments(hp)`` adds its own
arguments under ``penalty/``. The dense kernels' initializer comes from the
``dense_kernel`` slot of a `SearchSpace`, with its own arguments.

Each epoch logs ``val_dp_difference`` (the demographic parity difference
of the validation predictions between the groups, computed with
`kerasweights.fairness.metrics`) and ``val_fair_accuracy`` (validation
accuracy minus that gap), so a search can rank by accuracy or by the
trade-off: ``tune(task="adult", objective="val_fair_accuracy")``.
"""

import keras
import keras_tuner
import numpy as np

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import PluginNotFoundError

__all__ = ["AdultHyperModel", "fairness_penalty_names"]

NO_PENALTY = "none"


def _penalty_records():
    import kerasweights
    from kerasweights.fairness import FairnessPenalty

    return [
        r
        for r in kerasweights.plugins("regularizer")
        if isinstance(r.obj, type) and issubclass(r.obj, FairnessPenalty)
    ]


def fairness_penalty_names():
    """The installed fairness penalty plugins, by short name."""
    return [r.name for r in _penalty_records()]


class _GapLogger(keras.callbacks.Callback):
    """Logs the validation demographic parity gap after every epoch."""

    def __init__(self, x_val, y_val, groups):
        super().__init__()
        self.x_val, self.y_val, self.groups = x_val, y_val, groups

    def on_epoch_end(self, epoch, logs=None):
        from kerasweights.fairness.metrics import demographic_parity_difference

        if logs is None:
            return
        scores = np.asarray(self.model.predictor(self.x_val)).reshape(-1)
        if not np.all(np.isfinite(scores)):
            logs["val_dp_difference"] = float("nan")
            logs["val_fair_accuracy"] = float("nan")
            return
        predicted = (scores >= 0.5).astype("int32")
        gap = float(
            demographic_parity_difference(
                self.y_val, predicted, sensitive_features=self.groups
            )
        )
        logs["val_dp_difference"] = gap
        accuracy = logs.get("val_accuracy")
        if accuracy is not None:
            logs["val_fair_accuracy"] = float(accuracy) - gap


class AdultHyperModel(keras_tuner.HyperModel):
    """Dense Adult-income classifiers with a searched fairness penalty.

    Args:
        space: A `SearchSpace`; its ``dense_kernel`` initializers,
            ``dense_units``, ``dropout`` and ``learning_rate`` are used.
            Default: ``SearchSpace(models=["conv"])`` (every installed
            initializer that can fill dense kernels).
        penalties: Penalty plugin names to search; ``None`` for every
            installed one. ``"none"`` (no penalty) is always a choice.
        penalty_weights: Choices for the penalty's weight.
        hidden_layers: Choices for the number of hidden dense layers.
        epochs: Epochs per trial.
        batch_size: Training batch size.
        limit: Keep only this many rows (stratified by label; quick runs).
        seed: Seed of the split.

    Raises:
        PluginNotFoundError: A name in ``penalties`` is not installed.
        InvalidArgumentError: A weight is negative or a choice is empty.
    """

    def __init__(
        self,
        space=None,
        penalties=None,
        penalty_weights=(0.1, 0.5, 1.0, 2.0),
        hidden_layers=(1, 2),
        epochs=3,
        batch_size=256,
        limit=None,
        seed=0,
    ):
        super().__init__(name="kerasweights_adult")
        from kerasweights.tuning.space import SearchSpace
        from kerasweights.tuning.space import _check_choices

        self.space = space or SearchSpace(models=["conv"])
        records = {r.name: r for r in _penalty_records()}
        records.update({r.registered_name: r for r in _penalty_records()})
        if penalties is None:
            names = [r.name for r in _penalty_records()]
        else:
            names = []
            if isinstance(penalties, str):
                penalties = [penalties]
            for name in penalties:
                if name == NO_PENALTY:
                    continue
                if name not in records:
                    raise PluginNotFoundError(
                        f"No installed fairness penalty is called {name!r}; "
                        f"expected one of {fairness_penalty_names()}"
                    )
                names.append(records[name].name)
        self.penalties = {n: records[n].obj for n in names}
        self.penalty_weights = _check_choices(
            "penalty_weights", penalty_weights, float, 0.0
        )
        self.hidden_layers = _check_choices(
            "hidden_layers", hidden_layers, int, 1
        )
        self.epochs = epochs
        self.batch_size = batch_size
        self.objective = "val_accuracy"
        self.display = None
        self.prune_steps = None
        self.last_fit = {}
        self.data = _load(limit, seed)

    def describe(self):
        """A JSON-ready description of the space."""
        return {
            "task": "adult",
            "initializers": self.space.initializer_names("dense_kernel"),
            "penalties": [NO_PENALTY, *self.penalties],
            "penalty_weights": list(self.penalty_weights),
            "hidden_layers": list(self.hidden_layers),
            "dense_units": list(self.space.dense_units),
            "dropout": list(self.space.dropout),
            "learning_rate": list(self.space.learning_rate),
        }

    def build(self, hp):
        from kerasweights.fairness import FairnessModel

        init = self.space.choose_initializer(hp, "dense_kernel")
        layers = hp.Choice("hidden_layers", list(self.hidden_layers))
        units = hp.Choice("dense_units", list(self.space.dense_units))
        dropout = hp.Choice("dropout", list(self.space.dropout))
        learning_rate = hp.Choice(
            "learning_rate", list(self.space.learning_rate)
        )
        names = list(self.penalties)
        chosen = hp.Choice("penalty", [NO_PENALTY, *names])
        weight = None
        kwargs = {}
        if names:
            with hp.conditional_scope("penalty", names):
                weight = hp.Choice("penalty_weight", list(self.penalty_weights))
            for name, cls in self.penalties.items():
                offer = getattr(cls, "tunable_arguments", None)
                if not callable(offer):
                    continue
                with hp.conditional_scope("penalty", [name]):
                    with hp.name_scope("penalty"):
                        drawn = offer(hp)
                if name == chosen:
                    kwargs = drawn

        features = self.data["x_train"].shape[1]
        inputs = keras.Input((features,), name="features")
        x = inputs
        for _ in range(layers):
            x = keras.layers.Dense(
                units, activation="relu", kernel_initializer=init()
            )(x)
            x = keras.layers.Dropout(dropout)(x)
        outputs = keras.layers.Dense(1, activation="sigmoid", name="income")(x)
        predictor = keras.Model(inputs, outputs, name="adult_income")
        penalty = (
            self.penalties[chosen](**kwargs) if chosen != NO_PENALTY else None
        )
        model = FairnessModel(
            predictor,
            penalty or self._zero_penalty(),
            sensitive="group",
            penalty_weight=float(weight) if penalty is not None else 0.0,
        )
        # Built at once, so Keras Tuner can load a trial's weights into it.
        model(
            {
                "features": np.zeros((1, features), "float32"),
                "group": np.zeros((1,), "int32"),
            }
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="binary_crossentropy",
            metrics=["accuracy"],
        )
        return model

    @staticmethod
    def _zero_penalty():
        # "none" trains the same FairnessModel with weight 0, so every trial
        # has the same inputs, logs and cost structure.
        from kerasweights.fairness import DemographicParityPenalty

        return DemographicParityPenalty()

    def fit(self, hp, model, *args, **kwargs):
        """Train on the Adult split; data arguments are ignored."""
        from kerasweights.tuning.search import _fit_watched

        del args
        d = self.data
        x_train = {"features": d["x_train"], "group": d["g_train"]}
        x_val = {"features": d["x_val"], "group": d["g_val"]}
        gap = _GapLogger(d["x_val"], d["y_val"], d["g_val"])
        return _fit_watched(
            self,
            model,
            x_train,
            d["y_train"],
            (x_val, d["y_val"]),
            kwargs,
            extra_callbacks=[gap],
        )

    def serving(self, model, hp):
        """``(predictor, x_test, y_test)``: the model to serve needs no
        sensitive input."""
        del hp
        return model.predictor, self.data["x_test"], self.data["y_test"]


def _load(limit, seed):
    from sklearn.model_selection import train_test_split

    from kerasweights.datasets import load_adult

    data = load_adult()
    x = data.features.astype("float32")
    y = data.labels.astype("float32")
    g = data.groups.astype("int32")
    index = np.arange(len(y))
    if limit is not None:
        if not isinstance(limit, int) or limit < 200:
            raise InvalidArgumentError(
                "`limit` must be None or an integer of at least 200. "
                f"Received: limit={limit!r}"
            )
        index, _ = train_test_split(
            index, train_size=limit, random_state=seed, stratify=y
        )
    rest, test = train_test_split(
        index, test_size=0.2, random_state=seed, stratify=y[index]
    )
    train, val = train_test_split(
        rest, test_size=0.25, random_state=seed, stratify=y[rest]
    )
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    scaled = (x - mean) / std
    return {
        "x_train": scaled[train],
        "y_train": y[train],
        "g_train": g[train],
        "x_val": scaled[val],
        "y_val": y[val],
        "g_val": g[val],
        "x_test": scaled[test],
        "y_test": y[test].astype("int32"),
    }
