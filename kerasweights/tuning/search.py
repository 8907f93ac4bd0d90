"""The kerasweights search: Keras Tuner over a registry-built space.

This module imports Keras Tuner at the top, so ``import kerasweights``
never loads it; `kerasweights.tuning.tune` imports it on first use.
"""

import dataclasses
import math
import os
import time
import warnings

import keras
import keras_tuner

from kerasweights.datasets.digits import NUM_CLASSES
from kerasweights.datasets.digits import load_digits
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import SearchFailedError
from kerasweights.tuning.display import Display
from kerasweights.tuning.display import ProgressCallback
from kerasweights.tuning.display import results_table
from kerasweights.tuning.results import COMPLETED
from kerasweights.tuning.results import FAILED
from kerasweights.tuning.results import TrialRecord
from kerasweights.tuning.results import rank_trials
from kerasweights.tuning.results import write_json
from kerasweights.tuning.results import write_trials_csv
from kerasweights.tuning.space import SearchSpace
from kerasweights.tuning.watch import NonFiniteWatch
from kerasweights.tuning.watch import gradient_health_callback
from kerasweights.tuning.watch import health_summary

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_TRIALS",
    "TUNERS",
    "OUTPUT_ENTRIES",
    "DigitsHyperModel",
    "SearchFailedError",
    "TuneResult",
    "build_hypermodel",
    "tune",
]

TUNERS = ("random", "hyperband", "bayesian", "grid")
OBJECTIVE = "val_accuracy"
DEFAULT_TRIALS = 6
DEFAULT_EPOCHS = 4
BEST_MODEL = "best_model.keras"
SAVED_MODEL = "saved_model"
TRIALS_CSV = "trials.csv"
TRIALS_JSON = "trials.json"
SUMMARY_JSON = "summary.json"
TUNER_DIR = "tuner"
OUTPUT_ENTRIES = (
    BEST_MODEL,
    SAVED_MODEL,
    TRIALS_CSV,
    TRIALS_JSON,
    SUMMARY_JSON,
    TUNER_DIR,
)
_VIEW = {"conv": "image", "recurrent": "sequence"}
_INPUT_NAME = {"conv": "pixels", "recurrent": "sequence"}


class DigitsHyperModel(keras_tuner.HyperModel):
    """Builds and trains digits classifiers drawn from a `SearchSpace`.

    Conv models read ``(8, 8, 1)`` images through an input named
    ``"pixels"``; recurrent models read rows of pixels through an input
    named ``"sequence"`` of shape ``(None, 8)``, so they serve sequences of
    any length. Both end in a softmax layer named ``"digit"``.

    Every fit runs with a `NonFiniteWatch` and the registry's gradient-health
    callback; a non-finite loss, metric or gradient fails the trial with
    `keras_tuner.errors.FailedTrialError` naming the symptom and the step.

    Args:
        space: The `SearchSpace`.
        data: ``{"conv": DigitsSplit, "recurrent": DigitsSplit}`` for the
            model kinds in the space.
        epochs: Epochs per trial (Hyperband passes its own).
        batch_size: Training batch size.
        display: A `Display` for epoch progress, or ``None``.
    """

    def __init__(self, space, data, epochs, batch_size=32, display=None):
        super().__init__(name="kerasweights_digits")
        self.space = space
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.display = display
        self.last_fit = {}

    def build(self, hp):
        kind = hp.Choice("model", list(self.space.models))
        dense_init = self.space.choose_initializer(hp, "dense_kernel")
        # Keras Tuner tries to activate every scope it sees opened, so a
        # scope opens only for the model kinds in the space.
        conv = rec = None
        if "conv" in self.space.models:
            with hp.conditional_scope("model", ["conv"]):
                conv = self._conv_hps(hp)
        if "recurrent" in self.space.models:
            with hp.conditional_scope("model", ["recurrent"]):
                rec = self._recurrent_hps(hp)
        dropout = hp.Choice("dropout", list(self.space.dropout))
        learning_rate = hp.Choice(
            "learning_rate", list(self.space.learning_rate)
        )

        if kind == "conv":
            inputs = keras.Input((8, 8, 1), name=_INPUT_NAME[kind])
            x = inputs
            for i in range(conv["blocks"]):
                x = keras.layers.Conv2D(
                    conv["filters"] * 2**i,
                    3,
                    padding="same",
                    activation="relu",
                    kernel_initializer=conv["init"](),
                )(x)
                if i == 0:
                    x = keras.layers.MaxPooling2D(2)(x)
            x = keras.layers.Flatten()(x)
            x = keras.layers.Dropout(dropout)(x)
            x = keras.layers.Dense(
                conv["dense_units"],
                activation="relu",
                kernel_initializer=dense_init(),
            )(x)
        else:
            inputs = keras.Input((None, 8), name=_INPUT_NAME[kind])
            x = inputs
            for i in range(rec["layers"]):
                x = rec["cell"](
                    rec["units"],
                    i < rec["layers"] - 1,
                    dense_init(),
                    rec["init"](),
                )(x)
        x = keras.layers.Dropout(dropout)(x)
        outputs = keras.layers.Dense(
            NUM_CLASSES, activation="softmax", name="digit"
        )(x)
        model = keras.Model(inputs, outputs, name=f"digits_{kind}")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def _conv_hps(self, hp):
        return {
            "blocks": hp.Choice("conv_blocks", list(self.space.conv_blocks)),
            "filters": hp.Choice("filters", list(self.space.filters)),
            "dense_units": hp.Choice(
                "dense_units", list(self.space.dense_units)
            ),
            "init": self.space.choose_initializer(hp, "conv_kernel"),
        }

    def _recurrent_hps(self, hp):
        return {
            "cell": self.space.choose_cell(hp),
            "layers": hp.Choice(
                "recurrent_layers", list(self.space.recurrent_layers)
            ),
            "units": hp.Choice("units", list(self.space.units)),
            "init": self.space.choose_initializer(hp, "recurrent_kernel"),
        }

    def fit(self, hp, model, *args, **kwargs):
        """Train on the digits view that fits the model kind.

        Positional data arguments are ignored: the data comes from the
        split given to the constructor, by model kind.
        """
        kind = hp.get("model")
        split = self.data[kind]
        epochs = kwargs.get("epochs", self.epochs)
        watch = NonFiniteWatch()
        health = gradient_health_callback()
        callbacks = list(kwargs.get("callbacks") or [])
        callbacks.append(watch)
        if health is not None:
            callbacks.append(health)
        if self.display is not None:
            callbacks.append(ProgressCallback(self.display, epochs))
        self.last_fit = {"watch": watch, "health": health, "history": None}
        history = model.fit(
            split.x_train,
            split.y_train,
            validation_data=(split.x_val, split.y_val),
            epochs=epochs,
            initial_epoch=kwargs.get("initial_epoch", 0),
            batch_size=self.batch_size,
            callbacks=callbacks,
            verbose=0,
        )
        self.last_fit["history"] = history
        _, nonfinite, problems = health_summary(health)
        reason = watch.reason
        if reason is None and nonfinite:
            bad = [p for p in problems if p.startswith("nan")] or problems
            detail = f": {bad[0]}" if bad else ""
            reason = f"gradient health found non-finite values{detail}"
        if reason is None:
            scores = history.history.get(OBJECTIVE, [])
            if not scores or not all(math.isfinite(s) for s in scores):
                reason = f"{OBJECTIVE} was not finite: {scores}"
        if reason is not None:
            raise keras_tuner.errors.FailedTrialError(reason)
        return history


def build_hypermodel(space=None, seed=0, limit=None, epochs=4, batch_size=32):
    """A `DigitsHyperModel` over ``space`` with the digits data loaded.

    Args:
        space: A `SearchSpace`; default: everything installed.
        seed: Seed of the data split.
        limit: Keep only this many digits examples (for quick runs).
        epochs: Epochs per trial.
        batch_size: Training batch size.

    Returns:
        A `keras_tuner.HyperModel` usable with any Keras Tuner tuner; call
        ``tuner.search()`` without data arguments.
    """
    space = space or SearchSpace()
    data = {
        kind: load_digits(_VIEW[kind], seed=seed, limit=limit)
        for kind in space.models
    }
    return DigitsHyperModel(space, data, epochs, batch_size)


class _HonestTrials:
    """Tuner mixin: record every trial and fail non-finite ones (C07)."""

    def _kw_setup(self, display, total):
        self.kw_records = []
        self.kw_display = display
        self.kw_total = total

    def _kw_best(self):
        scores = [r.score for r in self.kw_records if r.finite]
        return max(scores) if scores else None

    def run_trial(self, trial, *args, **kwargs):
        hm = self.hypermodel
        number = len(self.kw_records) + 1
        epochs = trial.hyperparameters.values.get("tuner/epochs", hm.epochs)
        self.kw_display.trial_begin(
            number, self.kw_total, epochs, trial.hyperparameters.values
        )
        start = time.perf_counter()
        reason = None
        cause = None
        result = None
        try:
            result = super().run_trial(trial, *args, **kwargs)
        except keras_tuner.errors.FailedTrialError as exc:
            reason, cause = str(exc), exc
        except Exception as exc:  # a broken trial must not stop the search
            text = " ".join(str(exc).split())[:300]
            reason, cause = f"{type(exc).__name__}: {text}", exc
        hp = trial.hyperparameters
        record = TrialRecord(
            trial_id=trial.trial_id,
            number=number,
            hyperparameters={
                k: v for k, v in hp.values.items() if hp.is_active(k)
            },
            seconds=time.perf_counter() - start,
        )
        fit = hm.last_fit
        verdict, _, problems = health_summary(fit.get("health"))
        record.health, record.health_problems = verdict, problems
        history = fit.get("history")
        if history is not None:
            record.epochs = len(history.epoch)
        if reason is None:
            scores = [s for h in result for s in h.history[OBJECTIVE]]
            record.score = float(max(scores))
            record.status = COMPLETED
        else:
            record.status, record.reason = FAILED, reason
        self.kw_records.append(record)
        self.kw_display.trial_end(record, self._kw_best())
        if reason is not None:
            raise keras_tuner.errors.FailedTrialError(reason) from cause
        return result


_classes = {}


def _tuner_class(name):
    if name not in _classes:
        base = {
            "random": keras_tuner.RandomSearch,
            "hyperband": keras_tuner.Hyperband,
            "bayesian": keras_tuner.BayesianOptimization,
            "grid": keras_tuner.GridSearch,
        }[name]
        _classes[name] = type(
            f"KerasWeights{base.__name__}", (_HonestTrials, base), {}
        )
    return _classes[name]


@dataclasses.dataclass
class TuneResult:
    """The outcome of `tune`.

    Attributes:
        trials: Every `TrialRecord`, best first, failed trials last.
        best: The best finite `TrialRecord`.
        output: The output folder.
        files: ``{what: path}`` of everything written.
        test_accuracy: The best model's accuracy on the held-out test split.
        export: The SavedModel export and verification report.
        seconds: Wall time of the whole run.
        settings: The tuner, trials, epochs, seed and space used.
    """

    trials: list
    best: TrialRecord
    output: str
    files: dict
    test_accuracy: float
    export: dict
    seconds: float
    settings: dict

    def to_dict(self):
        """A JSON-ready summary."""
        return {
            "settings": self.settings,
            "best": self.best.to_dict(),
            "test_accuracy": self.test_accuracy,
            "output": self.output,
            "files": self.files,
            "export": self.export,
            "seconds": round(self.seconds, 2),
            "trials": [r.to_dict() for r in self.trials],
        }

    def table(self):
        """The results as a `rich.table.Table`."""
        return results_table(
            self.trials, f"{len(self.trials)} trials, best first"
        )


def _positive_int(name, value, flag):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(
            f"`{flag}` must be a positive integer. Received: {name}={value!r}"
        )


def _check_settings(tuner, trials, epochs, seed, batch_size):
    if tuner not in TUNERS:
        import difflib

        close = difflib.get_close_matches(str(tuner), TUNERS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidArgumentError(
            f"`tuner` must be one of {list(TUNERS)}. Received: "
            f"tuner={tuner!r}.{hint}"
        )
    if tuner == "hyperband":
        if trials is not None:
            raise InvalidArgumentError(
                "`trials` does not apply to the hyperband tuner, whose trial "
                "count follows from `epochs`; expected trials=None. "
                f"Received: trials={trials!r}"
            )
        if (
            not isinstance(epochs, int)
            or isinstance(epochs, bool)
            or (epochs < 2)
        ):
            raise InvalidArgumentError(
                "`epochs` must be an integer of at least 2 for the hyperband "
                f"tuner (its largest trial budget). Received: epochs={epochs!r}"
            )
    else:
        _positive_int("trials", trials, "trials")
    _positive_int("epochs", epochs, "epochs")
    _positive_int("batch_size", batch_size, "batch_size")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgumentError(
            f"`seed` must be a non-negative integer. Received: seed={seed!r}"
        )


def tune(
    space=None,
    tuner="random",
    trials=None,
    epochs=DEFAULT_EPOCHS,
    seed=0,
    output="kerasweights-output",
    overwrite=False,
    limit=None,
    batch_size=32,
    verbose=0,
    display=None,
    export=True,
):
    """Search the space on digits, then export and verify the best model.

    Every trial trains with the registry's gradient-health callback and a
    non-finite watch. A trial whose loss, metrics or gradients go
    non-finite, or that raises, is failed with its reason, ranked after
    every finite trial and never chosen as best; the search goes on.

    The output folder receives ``best_model.keras``, ``saved_model/`` (a
    SavedModel with a named, typed serving signature, checked in a fresh
    process that never imports kerasweights), ``trials.csv``,
    ``trials.json``, ``summary.json``, Keras Tuner's working files in
    ``tuner/``, and the ``kerasweights-manifest.json`` that marks them as
    ours (see `kerasweights.export.claim_output_folder`).

    Args:
        space: A `SearchSpace`; default: every installed plugin and the
            Keras baselines, conv and recurrent models.
        tuner: ``"random"``, ``"hyperband"``, ``"bayesian"`` or ``"grid"``.
        trials: Number of trials; default `DEFAULT_TRIALS`. The
            ``"hyperband"`` tuner sets its own count from ``epochs`` and
            refuses an explicit ``trials``.
        epochs: Epochs per trial (Hyperband's largest budget).
        seed: Seed of the data split, the tuner and Keras.
        output: Output folder.
        overwrite: Replace a previous kerasweights run in ``output``.
        limit: Use only this many digits examples (quick runs).
        batch_size: Training batch size.
        verbose: 0 silent, 1 one line per trial, 2 also every epoch.
        display: A `Display` to report through (overrides ``verbose``).
        export: Write and verify the best model; ``False`` stops after the
            trial files (``files`` then has no model paths and ``export``
            and ``test_accuracy`` are ``None``).

    Returns:
        A `TuneResult`.

    Raises:
        InvalidArgumentError: A setting is out of range or the tuner name
            is unknown.
        PluginNotFoundError: The space names an uninstalled plugin.
        OutputExistsError: ``output`` is in use (nothing is deleted).
        SearchFailedError: Every trial failed (the trial files are still
            written).
        ExportVerificationError: The SavedModel does not reproduce the best
            model.

    Example:

    >>> from kerasweights.tuning import SearchSpace, tune
    >>> space = SearchSpace(models=["recurrent"], cells=["gru", "lstm"])
    >>> result = tune(space, trials=2, epochs=1, output="out", limit=300)
    >>> result.best.score > 0
    True
    """
    from kerasweights.export import claim_output_folder
    from kerasweights.export.output_folder import record_output_files

    started = time.perf_counter()
    if trials is None and tuner != "hyperband":
        trials = DEFAULT_TRIALS
    _check_settings(tuner, trials, epochs, seed, batch_size)
    space = space if space is not None else SearchSpace()
    if not isinstance(space, SearchSpace):
        raise InvalidArgumentError(
            "`space` must be a kerasweights.tuning.SearchSpace. "
            f"Received: space of type {type(space).__name__}"
        )
    display = display or Display(verbose)
    hypermodel = build_hypermodel(space, seed, limit, epochs, batch_size)
    hypermodel.display = display
    folder = claim_output_folder(
        output, OUTPUT_ENTRIES, command="tune", overwrite=overwrite
    )

    try:
        keras.utils.set_random_seed(seed)
        kwargs = {
            "objective": OBJECTIVE,
            # Keras Tuner reads seed=0 as "no seed" and draws a random one.
            "seed": seed + 1,
            "directory": folder,
            "project_name": TUNER_DIR,
            "overwrite": True,
            # Failed trials are part of an honest search, not a reason to stop.
            "max_consecutive_failed_trials": 1_000_000,
        }
        if tuner == "hyperband":
            kwargs.update(max_epochs=epochs, factor=3, hyperband_iterations=1)
        else:
            kwargs["max_trials"] = trials
        search = _tuner_class(tuner)(hypermodel, **kwargs)
        search._kw_setup(display, trials)
        display.search_begin(tuner, trials, epochs, space)
        search.search(epochs=epochs, verbose=0)

        ranked = rank_trials(search.kw_records)
        files = {
            "trials_csv": os.path.join(folder, TRIALS_CSV),
            "trials_json": os.path.join(folder, TRIALS_JSON),
        }
        write_trials_csv(files["trials_csv"], ranked)
        write_json(files["trials_json"], [r.to_dict() for r in ranked])
        settings = {
            "tuner": tuner,
            "trials": trials,
            "epochs": epochs,
            "seed": seed,
            "limit": limit,
            "batch_size": batch_size,
            "space": space.describe(),
        }
        if not ranked or not ranked[0].finite:
            raise SearchFailedError(
                f"All {len(ranked)} trials failed (see {files['trials_csv']}); "
                "no model was exported."
            )
        best = ranked[0]
        files["summary"] = os.path.join(folder, SUMMARY_JSON)
        result = TuneResult(
            trials=ranked,
            best=best,
            output=folder,
            files=files,
            test_accuracy=None,
            export=None,
            seconds=0.0,
            settings=settings,
        )
        if export:
            _export_best(search, hypermodel, best, folder, result, display)
        result.seconds = time.perf_counter() - started
        write_json(files["summary"], result.to_dict())
        return result
    finally:
        # Every file of the run, also of a failed one, is recorded, so that
        # --overwrite later removes exactly these and nothing a user added.
        record_output_files(folder)


def _export_best(search, hypermodel, best, folder, result, display):
    from kerasweights.export import export_saved_model

    files = result.files
    display.message("Exporting the best model and verifying the SavedModel")
    with warnings.catch_warnings():
        # The best weights load into a fresh model whose optimizer has no
        # state yet; Keras warns that it skips the saved optimizer state,
        # which the export does not need.
        warnings.filterwarnings("ignore", message=".*optimizer.*")
        model = search.load_model(search.oracle.get_trial(best.trial_id))
    kind = best.hyperparameters["model"]
    split = hypermodel.data[kind]
    _, test_accuracy = model.evaluate(split.x_test, split.y_test, verbose=0)
    files["keras"] = os.path.join(folder, BEST_MODEL)
    model.save(files["keras"])
    files["saved_model"] = os.path.join(folder, SAVED_MODEL)
    export = export_saved_model(model, files["saved_model"], data=split.x_test)
    result.test_accuracy = float(test_accuracy)
    result.export = export
