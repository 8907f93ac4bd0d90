"""The kerasweights search: Keras Tuner over a registry-built space.

This module imports Keras Tuner at the top, so ``import kerasweights``
never loads it; `kerasweights.tuning.tune` imports it on first use.
"""

import dataclasses
import glob
import json
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
from kerasweights.tuning.results import PRUNED
from kerasweights.tuning.results import TrialRecord
from kerasweights.tuning.results import plot_trials
from kerasweights.tuning.results import rank_trials
from kerasweights.tuning.results import write_json
from kerasweights.tuning.results import write_trials_csv
from kerasweights.tuning.space import SearchSpace
from kerasweights.tuning.watch import NonFiniteWatch
from kerasweights.tuning.watch import PruneWatch
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
# The objectives a search may rank by, and which way each improves.
OBJECTIVES = {
    "val_accuracy": "max",
    "val_loss": "min",
    # Adult only: accuracy minus the demographic parity gap, and the gap.
    "val_fair_accuracy": "max",
    "val_dp_difference": "min",
}
TASKS = ("digits", "adult")
DEFAULT_TRIALS = 6
DEFAULT_EPOCHS = 4
DEFAULT_PRUNE_STEPS = 40
BEST_MODEL = "best_model.keras"
SAVED_MODEL = "saved_model"
TRIALS_CSV = "trials.csv"
TRIALS_JSON = "trials.json"
TRIALS_PNG = "trials.png"
SUMMARY_JSON = "summary.json"
# The tuner is seeded with seed + 1 (Keras Tuner reads 0 as "no seed") and
# the Bayesian oracle passes it to NumPy, whose seeds stop at 2**32 - 1.
MAX_SEED = 2**32 - 2
TUNER_DIR = "tuner"
# Inside TUNER_DIR: the settings of the search (checked on resume and by
# workers) and each process's trial records, rewritten after every trial.
SETTINGS_FILE = "kerasweights-search.json"
RECORDS_FILE = "kerasweights-trials-{}.json"
OUTPUT_ENTRIES = (
    BEST_MODEL,
    SAVED_MODEL,
    TRIALS_CSV,
    TRIALS_JSON,
    TRIALS_PNG,
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
        objective: ``"val_accuracy"`` or ``"val_loss"``.
        prune_steps: Prune a trial whose gradients explode or vanish
            before this optimizer step (`PruneWatch`); ``None``: no pruning.
    """

    def __init__(
        self,
        space,
        data,
        epochs,
        batch_size=32,
        display=None,
        objective=OBJECTIVE,
        prune_steps=None,
    ):
        super().__init__(name="kerasweights_digits")
        self.space = space
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.display = display
        self.objective = objective
        self.prune_steps = prune_steps
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
        split = self.data[hp.get("model")]
        return _fit_watched(
            self,
            model,
            split.x_train,
            split.y_train,
            (split.x_val, split.y_val),
            kwargs,
        )

    def serving(self, model, hp):
        """``(model to export, x_test, y_test)`` for the best trial."""
        split = self.data[hp["model"]]
        return model, split.x_test, split.y_test


def _fit_watched(hm, model, x, y, validation, kwargs, extra_callbacks=()):
    """``model.fit`` with the non-finite watch, health and pruning.

    Raises `TrialPruned` or `keras_tuner.errors.FailedTrialError` with the
    reason; stores the callbacks and history in ``hm.last_fit``.
    """
    epochs = kwargs.get("epochs", hm.epochs)
    health = gradient_health_callback()
    watch = NonFiniteWatch(health)
    callbacks = list(kwargs.get("callbacks") or [])
    # Extra loggers first, so the watch sees the values they add; the
    # health callback before the watches, which read what it found. No
    # batch hook here reads a tensor (see `NonFiniteWatch`).
    callbacks.extend(extra_callbacks)
    if health is not None:
        callbacks.append(health)
    callbacks.append(watch)
    prune = None
    if health is not None:
        if hm.prune_steps:
            prune = PruneWatch(health, hm.prune_steps)
            callbacks.append(prune)
    if hm.display is not None:
        callbacks.append(ProgressCallback(hm.display, epochs))
    hm.last_fit = {
        "watch": watch,
        "health": health,
        "prune": prune,
        "history": None,
    }
    history = model.fit(
        x,
        y,
        validation_data=validation,
        epochs=epochs,
        initial_epoch=kwargs.get("initial_epoch", 0),
        batch_size=hm.batch_size,
        callbacks=callbacks,
        verbose=0,
    )
    hm.last_fit["history"] = history
    _, nonfinite, problems = health_summary(health)
    reason = watch.reason
    if reason is None and nonfinite:
        bad = [p for p in problems if p.startswith("nan")] or problems
        detail = f": {bad[0]}" if bad else ""
        reason = f"gradient health found non-finite values{detail}"
    if reason is None and prune is not None and prune.reason:
        raise TrialPruned(prune.reason)
    if reason is None:
        scores = history.history.get(hm.objective, [])
        if not scores or not all(math.isfinite(s) for s in scores):
            reason = f"{hm.objective} was not finite: {scores}"
    if reason is not None:
        raise keras_tuner.errors.FailedTrialError(reason)
    return history


class TrialPruned(keras_tuner.errors.FailedTrialError):
    """A trial stopped early for exploding or vanishing gradients.

    Keras Tuner records it as failed (it never reaches the Bayesian model
    and is never retried); kerasweights records it as ``"pruned"``.
    """


def build_hypermodel(
    space=None,
    seed=0,
    limit=None,
    epochs=4,
    batch_size=32,
    objective=OBJECTIVE,
    prune_steps=None,
):
    """A `DigitsHyperModel` over ``space`` with the digits data loaded.

    Args:
        space: A `SearchSpace`; default: everything installed.
        seed: Seed of the data split.
        limit: Keep only this many digits examples (for quick runs).
        epochs: Epochs per trial.
        batch_size: Training batch size.
        objective: ``"val_accuracy"`` or ``"val_loss"``.
        prune_steps: Prune trials whose gradients explode or vanish before
            this optimizer step; ``None`` never prunes.

    Returns:
        A `keras_tuner.HyperModel` usable with any Keras Tuner tuner; call
        ``tuner.search()`` without data arguments.
    """
    space = space or SearchSpace()
    data = {
        kind: load_digits(_VIEW[kind], seed=seed, limit=limit)
        for kind in space.models
    }
    return DigitsHyperModel(
        space,
        data,
        epochs,
        batch_size,
        objective=objective,
        prune_steps=prune_steps,
    )


class _HonestTrials:
    """Tuner mixin: record every trial and fail non-finite ones."""

    def _kw_setup(self, display, total, records_path, previous=()):
        self.kw_records = list(previous)
        self.kw_new = []
        self.kw_display = display
        self.kw_total = total
        self.kw_records_path = records_path

    def _kw_best(self):
        direction = OBJECTIVES[self.hypermodel.objective]
        scores = [r.score for r in self.kw_records if r.finite]
        if not scores:
            return None
        return max(scores) if direction == "max" else min(scores)

    def _kw_save(self):
        """Rewrite this process's records, atomically, after every trial."""
        if self.kw_records_path is None:
            return
        tmp = self.kw_records_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump([r.to_dict() for r in self.kw_new], f, default=str)
        os.replace(tmp, self.kw_records_path)

    def on_trial_end(self, trial):
        # The record is stored only once the oracle has ended the trial, so
        # a trial killed before that runs again on resume and is never
        # stored twice.
        super().on_trial_end(trial)
        self._kw_save()

    def run_trial(self, trial, *args, **kwargs):
        hm = self.hypermodel
        number = _trial_number(trial.trial_id, len(self.kw_records) + 1)
        epochs = trial.hyperparameters.values.get("tuner/epochs", hm.epochs)
        self.kw_display.trial_begin(
            number, self.kw_total, epochs, trial.hyperparameters.values
        )
        start = time.perf_counter()
        reason = None
        cause = None
        result = None
        pruned = False
        hm.last_fit = {}
        try:
            result = super().run_trial(trial, *args, **kwargs)
        except TrialPruned as exc:
            reason, cause, pruned = str(exc), exc, True
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
            worker=os.environ.get("KERASTUNER_TUNER_ID"),
        )
        fit = hm.last_fit
        verdict, _, problems = health_summary(fit.get("health"))
        record.health, record.health_problems = verdict, problems
        history = fit.get("history")
        if history is not None:
            record.epochs = len(history.epoch)
        # The callbacks hold the trial's model: let it go with the trial,
        # so the next trial's garbage collection does not walk it.
        hm.last_fit = {}
        if reason is None:
            scores = [s for h in result for s in h.history[hm.objective]]
            best = max if OBJECTIVES[hm.objective] == "max" else min
            record.score = float(best(scores))
            record.status = COMPLETED
        else:
            record.status = PRUNED if pruned else FAILED
            record.reason = reason
        self.kw_records.append(record)
        self.kw_new.append(record)
        self.kw_display.trial_end(record, self._kw_best(), hm.objective)
        if reason is not None:
            raise keras_tuner.errors.FailedTrialError(reason) from cause
        return result


def _trial_number(trial_id, fallback):
    """1-based number of a trial: its Keras Tuner id (``"03"``) plus one."""
    try:
        return int(trial_id) + 1
    except (TypeError, ValueError):
        return fallback


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
        export_kept: True when a rerun found the same best trial and left
            its earlier, verified export as it was instead of exporting
            again.
    """

    trials: list
    best: TrialRecord
    output: str
    files: dict
    test_accuracy: float
    export: dict
    seconds: float
    settings: dict
    export_kept: bool = False

    def to_dict(self):
        """A JSON-ready summary."""
        return {
            "settings": self.settings,
            "best": self.best.to_dict(),
            "test_accuracy": self.test_accuracy,
            "output": self.output,
            "files": self.files,
            "export": self.export,
            "export_kept": self.export_kept,
            "seconds": round(self.seconds, 2),
            "trials": [r.to_dict() for r in self.trials],
        }

    def table(self):
        """The results as a `rich.table.Table`."""
        return results_table(
            self.trials,
            f"{len(self.trials)} trials, best first",
            self.settings.get("objective", OBJECTIVE),
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
    if (
        not isinstance(seed, int)
        or isinstance(seed, bool)
        or not 0 <= seed <= MAX_SEED
    ):
        raise InvalidArgumentError(
            f"`seed` must be an integer from 0 to {MAX_SEED}. "
            f"Received: seed={seed!r}"
        )


def _settings_differences(old, new):
    """Lines naming every setting that differs between two searches."""
    changed = []
    for key in sorted(set(old) | set(new)):
        if key in _BUDGET_SETTINGS:
            continue
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    changed.append(
                        f"{key}.{sub} {a.get(sub)!r} -> {b.get(sub)!r}"
                    )
        else:
            changed.append(f"{key} {a!r} -> {b!r}")
    return changed


# Settings that may change when a search resumes: the trial budget (to run
# more trials) and where it runs.
_BUDGET_SETTINGS = ("trials",)


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _previous_search(folder):
    """The stored settings of a previous tune run in ``folder``, or None."""
    from kerasweights.export.output_folder import MANIFEST_NAME
    from kerasweights.export.output_folder import read_manifest

    manifest = read_manifest(folder)
    if manifest is None or manifest.get("command") != "tune":
        return None
    settings = _read_json(os.path.join(folder, TUNER_DIR, SETTINGS_FILE))
    if not isinstance(settings, dict):
        return None
    allowed = set(manifest.get("entries", ())) | {MANIFEST_NAME}
    if set(os.listdir(folder)) - allowed:
        return None  # something else lives here: let the claim refuse it
    if set(OUTPUT_ENTRIES) - set(manifest.get("entries", ())):
        return None  # written by another version: no resume
    return settings


def _load_records(folder):
    """Every process's stored trial records, by trial id (last wins)."""
    found = {}
    pattern = os.path.join(folder, TUNER_DIR, RECORDS_FILE.format("*"))
    for path in sorted(glob.glob(pattern)):
        if path.endswith(".tmp"):
            continue
        for item in _read_json(path) or []:
            record = TrialRecord.from_dict(item)
            found[record.trial_id] = record
    return found


def _record_from_oracle(trial):
    """A record for a finished trial whose own record was lost.

    Only when a process was killed between Keras Tuner ending the trial and
    kerasweights storing its record: the oracle's score, status and
    hyperparameters are kept; the health verdict is unknown.
    """
    status = str(getattr(trial.status, "value", trial.status))
    hp = trial.hyperparameters
    record = TrialRecord(
        trial_id=trial.trial_id,
        number=_trial_number(trial.trial_id, 0),
        hyperparameters={k: v for k, v in hp.values.items() if hp.is_active(k)},
        health="unknown",
    )
    if status == "COMPLETED" and trial.score is not None:
        record.score = float(trial.score)
    else:
        record.status = FAILED
        lines = (trial.message or "").strip().splitlines()
        record.reason = lines[-1] if lines else "failed (record lost)"
    return record


def _finished_trials(search):
    """Ids of the trials Keras Tuner has finished (completed or failed)."""
    done = ("COMPLETED", "FAILED")
    return {
        tid
        for tid, t in search.oracle.trials.items()
        if str(getattr(t.status, "value", t.status)) in done
    }


def _distributed_env(distributed):
    """Keras Tuner's environment for a chief or worker, checked."""
    if distributed is None:
        return None
    if not isinstance(distributed, dict):
        raise InvalidArgumentError(
            "`distributed` must be None or a dict with role, address and "
            f"(for workers) tuner_id. Received: distributed={distributed!r}"
        )
    role = distributed.get("role")
    if role not in ("chief", "worker"):
        raise InvalidArgumentError(
            "`distributed['role']` must be 'chief' or 'worker'. "
            f"Received: role={role!r}"
        )
    address = str(distributed.get("address", ""))
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgumentError(
            "The oracle address must be HOST:PORT with a port from 1 to "
            f"65535. Received: {address!r}"
        )
    tuner_id = "chief" if role == "chief" else distributed.get("tuner_id")
    if role == "worker":
        if (
            not isinstance(tuner_id, str)
            or not tuner_id
            or "chief" in tuner_id
            or not tuner_id.replace("-", "").replace("_", "").isalnum()
        ):
            raise InvalidArgumentError(
                "A worker needs an id of letters, digits, - and _ that does "
                f"not contain 'chief'. Received: worker id {tuner_id!r}"
            )
    return {
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": host,
        "KERASTUNER_ORACLE_PORT": port,
    }


def _wait_for_chief(folder, timeout, display):
    path = os.path.join(folder, TUNER_DIR, SETTINGS_FILE)
    deadline = time.monotonic() + timeout
    told = False
    while True:
        settings = _read_json(path)
        if isinstance(settings, dict):
            return settings
        if time.monotonic() > deadline:
            raise SearchFailedError(
                f"No chief started a search in {folder} within {timeout:.0f}s "
                f"(waited for {path}); start the chief with the same --output"
            )
        if not told:
            display.message(f"Waiting for the chief to set up {folder}")
            told = True
        time.sleep(0.5)


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
    objective=OBJECTIVE,
    prune=True,
    prune_steps=DEFAULT_PRUNE_STEPS,
    strategy=None,
    distributed=None,
    worker_wait=600.0,
    task="digits",
    task_options=None,
):
    """Search the space on digits, then export and verify the best model.

    Every trial trains with the registry's gradient-health callback and a
    non-finite watch. A trial whose loss, metrics or gradients go
    non-finite, or that raises, is failed with its reason, ranked after
    every finite trial and never chosen as best; the search goes on. A
    trial whose gradients explode or vanish within its first
    ``prune_steps`` optimizer steps is stopped there and recorded as
    ``"pruned"`` with the diagnosis (see `kerasweights.tuning.watch`).

    **Resume.** When ``output`` holds a previous ``tune`` run and
    ``overwrite`` is false, the search continues: Keras Tuner reloads its
    oracle, finished trials are kept (never run again), a trial that was
    interrupted runs again from its start, and the result covers every
    trial of both runs. The settings must be the same as before, except
    ``trials`` (raise it to run more); any other change (objective, tuner,
    epochs, seed, limit, batch size, space, pruning) is refused with an
    `InvalidArgumentError` naming what changed.

    The output folder receives ``best_model.keras``, ``saved_model/`` (a
    SavedModel with a named, typed serving signature, checked in a fresh
    process that never imports kerasweights), ``trials.csv``,
    ``trials.json``, ``trials.png`` (score by trial and by hyperparameter),
    ``summary.json``, Keras Tuner's working files in ``tuner/``, and the
    ``kerasweights-manifest.json`` that marks them as ours (see
    `kerasweights.export.claim_output_folder`).

    Args:
        space: A `SearchSpace`; default: every installed plugin and the
            Keras baselines, conv and recurrent models.
        tuner: ``"random"``, ``"hyperband"``, ``"bayesian"`` or ``"grid"``.
        trials: Number of trials; default `DEFAULT_TRIALS`. The
            ``"hyperband"`` tuner sets its own count from ``epochs`` and
            refuses an explicit ``trials``.
        epochs: Epochs per trial (Hyperband's largest budget).
        seed: Seed of the data split, the tuner and Keras, from 0 to
            `MAX_SEED` (4294967294: the tuner gets ``seed + 1``).
        output: Output folder.
        overwrite: Replace a previous kerasweights run in ``output``
            instead of resuming it.
        limit: Use only this many digits examples (quick runs).
        batch_size: Training batch size (global, over all replicas).
        verbose: 0 silent, 1 one line per trial, 2 also every epoch.
        display: A `Display` to report through (overrides ``verbose``).
        export: Write and verify the best model; ``False`` stops after the
            trial files (``files`` then has no model paths and ``export``
            and ``test_accuracy`` are ``None``).
        objective: ``"val_accuracy"`` (higher is better) or ``"val_loss"``
            (lower is better).
        prune: Prune trials whose gradients explode or vanish early.
        prune_steps: The pruning window, in optimizer steps.
        strategy: ``None`` (Keras' default placement), or one of
            ``"auto"``, ``"one-device"``, ``"mirrored"``, ``"tpu"``, or a
            `tf.distribute.Strategy` (see `kerasweights.tuning.devices`).
        distributed: ``None``, or Keras Tuner's distributed mode:
            ``{"role": "chief", "address": "HOST:PORT"}`` runs the oracle
            (it trains nothing, waits for the workers, then writes the
            results and exports the best model);
            ``{"role": "worker", "tuner_id": "tuner1", "address": ...}``
            runs trials the chief hands out. All processes must see the
            same ``output`` folder.
        worker_wait: Seconds a worker waits for the chief to set up the
            output folder.
        task: ``"digits"`` (conv and recurrent models on the digits) or
            ``"adult"`` (dense income classifiers on UCI Adult with the
            fairness penalty and its weight as hyperparameters; see
            `kerasweights.tuning.adult.AdultHyperModel`, whose
            ``dense_kernel`` slot, ``dense_units``, ``dropout`` and
            ``learning_rate`` come from ``space``). The adult task also
            accepts the objectives ``"val_fair_accuracy"`` (validation
            accuracy minus the demographic parity gap) and
            ``"val_dp_difference"``; its export is the predictor alone
            (no sensitive input).
        task_options: For ``"adult"``: ``penalties``, ``penalty_weights``,
            ``hidden_layers`` (see `AdultHyperModel`).

    Returns:
        A `TuneResult`. On a worker, ``trials`` holds only that worker's
        trials and nothing is exported.

    Raises:
        InvalidArgumentError: A setting is out of range, the tuner name
            is unknown, or a resumed search changed a setting.
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
    started = time.perf_counter()
    if trials is None and tuner != "hyperband":
        trials = DEFAULT_TRIALS
    _check_settings(tuner, trials, epochs, seed, batch_size)
    if not isinstance(output, str | os.PathLike) or not os.fspath(output):
        raise InvalidArgumentError(
            "`output` must be a folder path (an empty one would mean the "
            f"current folder). Received: output={output!r}"
        )
    if task not in TASKS:
        raise InvalidArgumentError(
            f"`task` must be one of {list(TASKS)}. Received: task={task!r}"
        )
    allowed = list(OBJECTIVES) if task == "adult" else list(OBJECTIVES)[:2]
    if objective not in allowed:
        raise InvalidArgumentError(
            f"`objective` must be one of {allowed} for the {task} task. "
            f"Received: objective={objective!r}"
        )
    if prune:
        _positive_int("prune_steps", prune_steps, "prune_steps")
    if space is None:
        space = (
            SearchSpace(models=["conv"]) if task == "adult" else SearchSpace()
        )
    if not isinstance(space, SearchSpace):
        raise InvalidArgumentError(
            "`space` must be a kerasweights.tuning.SearchSpace. "
            f"Received: space of type {type(space).__name__}"
        )
    env = _distributed_env(distributed)
    role = None if distributed is None else distributed["role"]
    if isinstance(strategy, str) or strategy is None:
        from kerasweights.tuning.devices import resolve_strategy

        strategy = None if strategy is None else resolve_strategy(strategy)
    display = display or Display(verbose)
    if task == "adult":
        from kerasweights.tuning.adult import AdultHyperModel

        hypermodel = AdultHyperModel(
            space,
            epochs=epochs,
            batch_size=batch_size,
            limit=limit,
            seed=seed,
            **(task_options or {}),
        )
        hypermodel.objective = objective
        hypermodel.prune_steps = prune_steps if prune else None
        described = hypermodel.describe()
    else:
        if task_options:
            raise InvalidArgumentError(
                "`task_options` applies to the adult task only. "
                f"Received: task_options={task_options!r}"
            )
        hypermodel = build_hypermodel(
            space,
            seed,
            limit,
            epochs,
            batch_size,
            objective=objective,
            prune_steps=prune_steps if prune else None,
        )
        described = space.describe()
    settings = _jsonable(
        {
            "task": task,
            "tuner": tuner,
            "objective": objective,
            "trials": trials,
            "epochs": epochs,
            "seed": seed,
            "limit": limit,
            "batch_size": batch_size,
            "prune_steps": prune_steps if prune else None,
            "space": described,
        }
    )
    hypermodel.display = display

    saved_env = {k: os.environ.get(k) for k in env or {}}
    try:
        if env:
            os.environ.update(env)
        if role == "worker":
            return _run_worker(
                hypermodel,
                tuner,
                trials,
                epochs,
                seed,
                output,
                settings,
                strategy,
                display,
                worker_wait,
                env,
                started,
            )
        return _run_search(
            hypermodel,
            tuner,
            trials,
            epochs,
            seed,
            output,
            overwrite,
            settings,
            strategy,
            display,
            export,
            role,
            env,
            started,
        )
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _quiet_search(search, epochs, display):
    """Run ``search.search``; failed trials are reported by kerasweights.

    Keras Tuner prints every failed trial's traceback on standard error in
    its default debug mode; each failure is in the trial records instead.
    Below verbosity 2 the trials' gradient-health warnings are not shown
    either: each trial's verdict is in its record and the results table.
    """
    try:
        from keras_tuner.src import config as kt_config
    except ImportError:  # another layout: keep its default
        kt_config = None
    old = getattr(kt_config, "DEBUG", None)
    if kt_config is not None:
        kt_config.DEBUG = False
    import contextlib
    import io

    try:
        # Keras Tuner 1.4 prints each condition's value when it turns a
        # space into a gRPC message (distributed mode): keep standard
        # output for the results.
        with contextlib.redirect_stdout(io.StringIO()):
            with warnings.catch_warnings():
                if getattr(display, "verbose", 1) < 2:
                    from kerasweights.health import GradientHealthWarning

                    warnings.simplefilter("ignore", GradientHealthWarning)
                search.search(epochs=epochs, verbose=0)
    finally:
        if kt_config is not None:
            kt_config.DEBUG = old


def _atomic_keras_tuner_files():
    """Make Keras Tuner write its JSON state files atomically.

    Keras Tuner 1.4 rewrites ``oracle.json`` and each ``trial.json`` in
    place, so a process killed during a write leaves an empty or cut file
    and the search can no longer be resumed. Local files are written to a
    temporary file and renamed instead (the same contents); other paths
    (``gs://``) are left to Keras Tuner.
    """
    try:
        from keras_tuner.src import utils as kt_utils
    except ImportError:  # another layout: keep its behaviour
        return
    original = kt_utils.save_json
    if getattr(original, "kerasweights_atomic", False):
        return

    def save_json(path, obj):
        path = str(path)
        if "://" in path:
            return original(path, obj)
        text = json.dumps(obj)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return text

    save_json.kerasweights_atomic = True
    kt_utils.save_json = save_json


def _make_tuner(hypermodel, tuner, trials, epochs, seed, folder, strategy):
    _atomic_keras_tuner_files()
    kwargs = {
        "objective": keras_tuner.Objective(
            hypermodel.objective, OBJECTIVES[hypermodel.objective]
        ),
        # Keras Tuner reads seed=0 as "no seed" and draws a random one.
        "seed": seed + 1,
        "directory": folder,
        "project_name": TUNER_DIR,
        # A previous run is removed by claim_output_folder, never here.
        "overwrite": False,
        # Failed trials are part of an honest search, not a reason to stop.
        "max_consecutive_failed_trials": 1_000_000,
    }
    if strategy is not None:
        kwargs["distribution_strategy"] = strategy
    if tuner == "hyperband":
        kwargs.update(max_epochs=epochs, factor=3, hyperband_iterations=1)
    else:
        kwargs["max_trials"] = trials
    import contextlib
    import io

    # Keras Tuner prints "Reloading Tuner from ..." on stdout; kerasweights
    # says what it reloaded itself.
    with contextlib.redirect_stdout(io.StringIO()):
        return _tuner_class(tuner)(hypermodel, **kwargs)


def _run_worker(
    hypermodel,
    tuner,
    trials,
    epochs,
    seed,
    output,
    settings,
    strategy,
    display,
    worker_wait,
    env,
    started,
):
    folder = os.path.abspath(os.fspath(output))
    tuner_id = env["KERASTUNER_TUNER_ID"]
    chief = _wait_for_chief(folder, worker_wait, display)
    changed = _settings_differences(chief, settings)
    if changed:
        raise InvalidArgumentError(
            f"Worker {tuner_id}'s settings differ from the chief's in "
            f"{folder}: {'; '.join(changed)}; start every worker with the "
            "chief's settings"
        )
    keras.utils.set_random_seed(seed)
    search = _make_tuner(
        hypermodel, tuner, trials, epochs, seed, folder, strategy
    )
    records_path = os.path.join(
        folder, TUNER_DIR, RECORDS_FILE.format(tuner_id)
    )
    # A restarted worker keeps the records of its earlier run.
    previous = [
        TrialRecord.from_dict(d) for d in (_read_json(records_path) or [])
    ]
    search._kw_setup(display, trials, records_path)
    search.kw_new = list(previous)
    display.message(
        f"Worker {tuner_id}: asking the chief at "
        f"{env['KERASTUNER_ORACLE_IP']}:{env['KERASTUNER_ORACLE_PORT']} "
        "for trials"
    )
    _quiet_search(search, epochs, display)
    ran = search.kw_new[len(previous) :]
    display.message(
        f"Worker {tuner_id} done: ran trials {[r.trial_id for r in ran]}"
    )
    direction = OBJECTIVES[hypermodel.objective]
    ranked = rank_trials(ran, direction)
    return TuneResult(
        trials=ranked,
        best=next((r for r in ranked if r.finite), None),
        output=folder,
        files={"records": records_path},
        test_accuracy=None,
        export=None,
        seconds=time.perf_counter() - started,
        settings={**settings, "role": "worker", "tuner_id": tuner_id},
    )


def _run_search(
    hypermodel,
    tuner,
    trials,
    epochs,
    seed,
    output,
    overwrite,
    settings,
    strategy,
    display,
    export,
    role,
    env,
    started,
):
    from kerasweights.export import claim_output_folder
    from kerasweights.export.output_folder import record_output_files
    from kerasweights.tuning.devices import describe_strategy

    folder = os.path.abspath(os.fspath(output))
    previous = None
    if not overwrite and os.path.isdir(folder):
        previous = _previous_search(folder)
    if previous is not None:
        changed = _settings_differences(previous, settings)
        if changed:
            raise InvalidArgumentError(
                f"{folder} holds a search with other settings "
                f"({'; '.join(changed)}); resume it with the same settings "
                "(only --trials may change) or pass --overwrite to start "
                "again"
            )
    else:
        folder = claim_output_folder(
            output, OUTPUT_ENTRIES, command="tune", overwrite=overwrite
        )
        os.makedirs(os.path.join(folder, TUNER_DIR), exist_ok=True)
    settings_path = os.path.join(folder, TUNER_DIR, SETTINGS_FILE)
    tuner_id = (env or {}).get("KERASTUNER_TUNER_ID", "tuner0")
    records_path = (
        None
        if role == "chief"
        else os.path.join(folder, TUNER_DIR, RECORDS_FILE.format(tuner_id))
    )
    direction = OBJECTIVES[hypermodel.objective]

    try:
        keras.utils.set_random_seed(seed)
        try:
            search = _make_tuner(
                hypermodel, tuner, trials, epochs, seed, folder, strategy
            )
        except (ValueError, KeyError, RuntimeError) as exc:
            if previous is None:
                raise
            text = " ".join(str(exc).split())[:200]
            raise InvalidArgumentError(
                f"Cannot resume the search in {folder}: Keras Tuner could "
                f"not reload {os.path.join(folder, TUNER_DIR)} ({text}); "
                "pass --overwrite to start again"
            ) from None
        reloaded = []
        resumed = None
        if previous is not None:
            finished = _finished_trials(search)
            stored = _load_records(folder)
            reloaded = [
                stored.get(t) or _record_from_oracle(search.oracle.trials[t])
                for t in sorted(finished)
            ]
            interrupted = sorted(
                tid
                for tid, t in search.oracle.trials.items()
                if tid not in finished
            )
            best = rank_trials(reloaded, direction)
            resumed = {
                "finished_trials": len(finished),
                "reloaded_records": len(reloaded),
                "interrupted_trials": interrupted,
                "trials_before": previous.get("trials"),
            }
            best_text = (
                f", best so far {best[0].score:.4f}"
                if best and best[0].finite
                else ""
            )
            display.message(
                f"Resumed the search in {folder}: reloaded {len(finished)} "
                f"finished trials ({sum(not r.finite for r in reloaded)} "
                f"failed or pruned){best_text}; "
                + (
                    f"interrupted trials {interrupted} run again; "
                    if interrupted
                    else ""
                )
                + (
                    f"up to {trials} trials in all"
                    if trials is not None
                    else "hyperband continues its brackets"
                )
            )
        # The settings are stored once the tuner exists, so a worker that
        # reads them finds the oracle's project ready.
        from kerasweights.tuning.results import write_json as _write

        _write(settings_path, settings)
        # Records of this process from an interrupted run are kept.
        mine = []
        if records_path is not None:
            mine = [
                TrialRecord.from_dict(d)
                for d in (_read_json(records_path) or [])
            ]
            keep = {r.trial_id for r in reloaded}
            mine = [r for r in mine if r.trial_id in keep]
        search._kw_setup(display, trials, records_path, previous=reloaded)
        search.kw_new = mine
        if strategy is not None:
            display.message(f"Training on {describe_strategy(strategy)}")
        if isinstance(hypermodel, DigitsHyperModel):
            display.search_begin(tuner, trials, epochs, hypermodel.space)
        else:
            described = hypermodel.describe()
            display.message(
                f"Searching {'?' if trials is None else trials} trials of "
                f"{epochs} epochs with the {tuner} tuner on Adult income, "
                f"penalties {', '.join(described['penalties'])}"
            )
        if role == "chief":
            display.message(
                f"Chief oracle listening on {env['KERASTUNER_ORACLE_IP']}:"
                f"{env['KERASTUNER_ORACLE_PORT']}; start the workers"
            )
        _quiet_search(search, epochs, display)

        if role == "chief":
            records = _load_records(folder)
            finished = _finished_trials(search)
            all_records = [
                records.get(t) or _record_from_oracle(search.oracle.trials[t])
                for t in sorted(finished)
            ]
        else:
            all_records = search.kw_records
        ranked = rank_trials(all_records, direction)
        files = {
            "trials_csv": os.path.join(folder, TRIALS_CSV),
            "trials_json": os.path.join(folder, TRIALS_JSON),
            "trials_png": os.path.join(folder, TRIALS_PNG),
        }
        write_trials_csv(files["trials_csv"], ranked, hypermodel.objective)
        write_json(files["trials_json"], [r.to_dict() for r in ranked])
        if ranked:
            plot_trials(files["trials_png"], ranked, hypermodel.objective)
        run_settings = dict(settings)
        if resumed is not None:
            run_settings["resumed"] = resumed
        if role is not None:
            run_settings["role"] = role
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
            settings=run_settings,
        )
        if export:
            current = (
                None if previous is None else _current_export(folder, best)
            )
            if current is not None:
                # A rerun that found the same best trial: the exported
                # model is that trial's, already verified.
                result.files.update(current["files"])
                result.test_accuracy = current["test_accuracy"]
                result.export = current["export"]
                result.export_kept = True
                display.message(
                    f"The exported model in {folder} is current (best trial "
                    f"{best.number} unchanged); not exported again"
                )
            else:
                # On a resume the previous export is ours: replace it.
                _export_best(
                    search,
                    hypermodel,
                    best,
                    folder,
                    result,
                    display,
                    overwrite=previous is not None,
                )
        result.seconds = time.perf_counter() - started
        write_json(files["summary"], result.to_dict())
        return result
    finally:
        # Every file of the run, also of a failed one, is recorded, so that
        # --overwrite later removes exactly these and nothing a user added.
        record_output_files(folder)


def _current_export(folder, best):
    """The previous run's export when it is of ``best``'s trial, or None."""
    summary = _read_json(os.path.join(folder, SUMMARY_JSON))
    if not isinstance(summary, dict) or not summary.get("export"):
        return None
    if (summary.get("best") or {}).get("trial_id") != best.trial_id:
        return None
    files = summary.get("files") or {}
    paths = {k: files.get(k) for k in ("keras", "saved_model")}
    expected = {
        "keras": os.path.join(folder, BEST_MODEL),
        "saved_model": os.path.join(folder, SAVED_MODEL),
    }
    if paths != expected or not all(os.path.exists(p) for p in paths.values()):
        return None
    return {
        "files": paths,
        "test_accuracy": summary.get("test_accuracy"),
        "export": summary["export"],
    }


def _export_best(
    search, hypermodel, best, folder, result, display, overwrite=False
):
    import numpy as np

    from kerasweights.export import export_saved_model

    files = result.files
    display.message("Exporting the best model and verifying the SavedModel")
    with warnings.catch_warnings():
        # The best weights load into a fresh model whose optimizer has no
        # state yet; Keras warns that it skips the saved optimizer state,
        # which the export does not need.
        warnings.filterwarnings("ignore", message=".*optimizer.*")
        model = search.load_model(search.oracle.get_trial(best.trial_id))
    model, x_test, y_test = hypermodel.serving(model, best.hyperparameters)
    scores = np.asarray(model.predict(x_test, verbose=0))
    if scores.shape[-1] == 1:
        predicted = (scores.reshape(-1) >= 0.5).astype(y_test.dtype)
    else:
        predicted = scores.argmax(axis=-1)
    test_accuracy = float(np.mean(predicted == y_test))
    files["keras"] = os.path.join(folder, BEST_MODEL)
    model.save(files["keras"])
    files["saved_model"] = os.path.join(folder, SAVED_MODEL)
    export = export_saved_model(
        model, files["saved_model"], data=x_test, overwrite=overwrite
    )
    result.test_accuracy = test_accuracy
    result.export = export
