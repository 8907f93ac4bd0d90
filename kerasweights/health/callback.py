"""The `GradientHealth` callback."""

import dataclasses
import json
import math
import os
import tempfile
import threading
import warnings

import keras
import numpy as np

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.health.diagnoses import DIAGNOSES
from kerasweights.health.diagnoses import Thresholds
from kerasweights.health.diagnoses import diagnose
from kerasweights.health.errors import GradientHealthError
from kerasweights.health.errors import GradientHealthWarning
from kerasweights.health.tap import READ_BATCH
from kerasweights.health.tap import READ_BATCH_WARN
from kerasweights.health.tap import GradientTap

__all__ = ["GradientHealth"]

_ON_PROBLEM = ("warn", "stop", "raise")
_THRESHOLD_NAMES = tuple(f.name for f in dataclasses.fields(Thresholds))


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="kerasweights")
class GradientHealth(keras.callbacks.Callback):
    """Watches the gradients of every training step and diagnoses problems.

    The callback taps the gradients that ``fit`` itself computes and hands
    to the optimizer (see `kerasweights.health.tap`): global and per-layer
    L2 norms, max abs, NaN/Inf and exact-zero counts, the update-to-weight
    ratio, dead ReLU units and tanh/sigmoid saturation, all computed inside
    the compiled train step. It works with Sequential, functional and
    subclassed models, ``jit_compile=True``, ``steps_per_execution > 1``
    and ``mixed_float16`` (norms are unscaled; a step the loss-scale
    optimizer skipped for overflow is reported as skipped, not as a NaN).

    Every recorded step is kept in a small ring buffer on the device; the
    callback reads it at every epoch end and, within an epoch, once 15
    recorded steps are waiting with ``on_problem="stop"`` or ``"raise"``,
    50 with ``"warn"`` (one device read per batch of steps: a read and its
    diagnoses cost about a millisecond of host time, which ``"warn"``,
    reporting only, pays less often), then runs the diagnoses
    (``nan``, ``exploding``, ``vanishing``, ``dead_relu``, ``saturated``,
    ``update_ratio_high``, ``update_ratio_low``, ``loss_not_decreasing``,
    ``oscillating``; see docs/health.md) and acts on a new problem as
    ``on_problem`` says.

    A problem is therefore acted on at most 15 (``"warn"``: 50) recorded
    steps after it appears, or at the end of its epoch if sooner; the step
    it names is the step where it appeared. With ``"stop"`` or ``"raise"``
    a non-finite loss in the batch ``logs`` is acted on at the end of that
    batch.

    Figures go into the ``logs`` dict at the end of each batch that reads
    and of each epoch (``grad_norm``, ``grad_max_abs``, ``grad_nonfinite``,
    ``grad_update_ratio``, ``grad_problems``, ``grad_records_lost`` and
    ``grad_norm/<layer>``), so
    History, CSVLogger and TensorBoard see them.

    When training is stopped (``"stop"`` or ``"raise"``) for a non-finite
    value, the model's weights are set back to the recovery point and
    saved to ``recovery_path``; the warning or error names the file and
    the step. The recovery point is the weights from before the latest
    recorded step whose loss and gradients were finite and whose loss was
    not far above the losses seen before (an exploding update can leave
    finite but useless weights, whose loss is NaN or huge: those are not
    kept), with the non-trainable weights of trainable layers (BatchNorm
    statistics) as that step left them. The optimizer's state is not part
    of it: resume with ``model.load_weights(recovery_path)`` and a fresh
    ``compile``. A Keras ``BackupAndRestore`` listed after this callback
    saves the restored weights at the end of the stopped epoch; Keras
    deletes that checkpoint at the end of a fit that ends normally (a
    ``"stop"`` included) unless ``delete_checkpoint=False``, and keeps it
    when fit ends with an error (``"raise"``); ``recovery_path`` is kept
    in every case.

    Args:
        every_n_steps: Record and check every n-th training step. 1 checks
            every step. With ``steps_per_execution=1`` the steps in between
            run the model's own train function, so 10 adds a tenth of the
            ops, plus, on CPU, the cost of switching between two compiled
            functions (see docs/benchmarks-health.md). A NaN that appears
            in between is reported at the next recorded step; with
            ``"stop"`` or ``"raise"``, a non-finite loss is acted on at the
            end of its own step (the diagnosis then names the loss, not a
            layer), except under a loss-scale optimizer.
        on_problem: ``"warn"`` (a `GradientHealthWarning`, training goes
            on), ``"stop"`` (warn and stop training cleanly) or
            ``"raise"`` (raise `GradientHealthError` from ``fit``).
        log_dir: Optional directory for TensorBoard (in its
            ``gradient_health`` subfolder): scalars of every recorded step
            (global and per-layer gradient norms, loss, update ratio) and,
            at each read of the ring buffer, a histogram per layer of the
            latest recorded step's gradients. Keeping those gradients
            costs one copy of them per recorded step.
        patience: Recorded steps in a row a symptom must persist before it
            is reported.
        dead_steps: Recorded steps in a row a ReLU unit must be zero on the
            whole batch to count as dead.
        thresholds: Optional dict overriding fields of `Thresholds`
            (``explode_norm``, ``vanish_ratio``, ``dead_fraction``...).
        diagnoses: Names of the diagnoses to run; None runs all.
        watch_activations: Record the saturated fraction of tanh and
            sigmoid layers (wraps their activation during fit).
        recovery_path: Where to save the recovery point when training
            stops on a non-finite value; must end in ``.weights.h5``.
            None: a file in ``log_dir`` or in the system temp directory.
        read_every: Recorded steps between reads of the ring buffer (a
            read also runs the diagnoses; the buffer is read at each epoch
            end too). None (default): 50 with ``on_problem="warn"``, 15
            with ``"stop"`` or ``"raise"``. Smaller reports problems
            sooner and costs about a millisecond of host time per read.

    Attributes:
        verdict: ``"healthy"`` or the name of the first problem found.
        nonfinite: True when the loss, gradients or weights went NaN/Inf
            (on a step the optimizer did not skip).
        problems: The `Diagnosis` objects found, in order.
        records: Every `StepRecord` read, in step order.
        skipped_steps: Steps a loss-scale optimizer skipped for overflow.
        records_lost: Recorded steps whose ring-buffer row was overwritten
            before the callback read it (the batch-end hook fell more than
            the buffer's slack behind training); a `GradientHealthWarning`
            says so once per fit.
        recovery_path: Where the recovery point was saved, or None.
        recovery_step: The recorded step whose weights (before its update)
            were saved, or None.

    Raises:
        GradientHealthError: From ``fit``, when ``on_problem="raise"`` and
            a problem is found.

    Example:

    ```python
    import numpy as np
    import keras
    from kerasweights.health import GradientHealth

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    health = GradientHealth()
    model.fit(np.ones((32, 4)), np.ones((32, 1)), verbose=0,
              callbacks=[health])
    print(health.verdict)
    ```
    """

    plugin_kind = "callback"
    plugin_name = "gradient_health"
    # The one diagnosis a subclass in `kerasweights.health.checks` runs.
    diagnosis = None

    def __init__(
        self,
        every_n_steps=1,
        on_problem="warn",
        log_dir=None,
        patience=5,
        dead_steps=3,
        thresholds=None,
        diagnoses=None,
        watch_activations=True,
        recovery_path=None,
        read_every=None,
    ):
        super().__init__()
        if read_every is not None:
            _check_positive_int("read_every", read_every)
        _check_positive_int("every_n_steps", every_n_steps)
        _check_positive_int("patience", patience)
        _check_positive_int("dead_steps", dead_steps)
        if on_problem not in _ON_PROBLEM:
            raise InvalidArgumentError(
                f"`on_problem` must be one of {list(_ON_PROBLEM)}. "
                f"Received: on_problem={on_problem!r}"
            )
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise InvalidTypeError(
                "`log_dir` must be a path or None. "
                f"Received: log_dir={log_dir!r} of type {type(log_dir)}"
            )
        thresholds = dict(thresholds or {})
        unknown = sorted(set(thresholds) - set(_THRESHOLD_NAMES))
        if unknown:
            raise InvalidArgumentError(
                f"`thresholds` keys must be among {list(_THRESHOLD_NAMES)}. "
                f"Received unknown keys: {unknown}"
            )
        if diagnoses is not None:
            diagnoses = list(diagnoses)
            bad = [d for d in diagnoses if d not in DIAGNOSES]
            if bad:
                raise InvalidArgumentError(
                    f"`diagnoses` must be names among {list(DIAGNOSES)}. "
                    f"Received: diagnoses={bad}"
                )
        if recovery_path is not None and not str(recovery_path).endswith(
            ".weights.h5"
        ):
            raise InvalidArgumentError(
                "`recovery_path` must end in '.weights.h5'. "
                f"Received: recovery_path={recovery_path!r}"
            )

        self.every_n_steps = every_n_steps
        self.on_problem = on_problem
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.patience = patience
        self.dead_steps = dead_steps
        self.thresholds = thresholds
        self.diagnoses = diagnoses
        self.watch_activations = bool(watch_activations)
        self._recovery_path_arg = recovery_path
        self.read_every = read_every
        self._reset_state()

    def _reset_state(self):
        self.verdict = "healthy"
        self.nonfinite = False
        self.problems = []
        self.records = []
        self.skipped_steps = []
        self.recovery_path = None
        self.recovery_step = None
        self._tap = None
        self._lock = _NoLock()
        self._epoch_start = 0
        self._seen = 0
        self._unread = 0
        self._writer = None
        self.records_lost = 0
        self._diagnose_state = {}
        # (first, last) step of the train-function call after which fit's
        # logs first showed a non-finite loss ("stop"/"raise" only).
        self._first_bad_loss = None

    def get_config(self):
        return {
            "every_n_steps": self.every_n_steps,
            "on_problem": self.on_problem,
            "log_dir": self.log_dir,
            "patience": self.patience,
            "dead_steps": self.dead_steps,
            "thresholds": dict(self.thresholds),
            "diagnoses": None
            if self.diagnoses is None
            else list(self.diagnoses),
            "watch_activations": self.watch_activations,
            "recovery_path": self._recovery_path_arg,
            "read_every": self.read_every,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ---------------------------------------------------------------- fit
    def on_train_begin(self, logs=None):
        self._reset_state()
        self._lock = threading.Lock()
        self._thresholds = Thresholds(patience=self.patience, **self.thresholds)
        self._tap = GradientTap(
            self.model,
            every_n_steps=self.every_n_steps,
            dead_steps=self.dead_steps,
            watch_activations=self.watch_activations,
            keep_gradients=self.log_dir is not None,
            read_batch=self._read_batch(),
        )
        self._tap.install()
        if self.log_dir is not None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "gradient_health")
            )

    def _read_batch(self):
        # "warn" only reports: fewer reads (each costs about a millisecond
        # of host time); "stop" and "raise" read often to stop soon.
        if self.read_every is not None:
            return self.read_every
        return READ_BATCH_WARN if self.on_problem == "warn" else READ_BATCH

    @property
    def async_safe(self):
        # With "warn" nothing here has to happen before the next step, so
        # Keras may run the batch hook in its worker thread and keep the
        # training loop free of a host sync per step. "stop" and "raise"
        # run in step with training so the recovery point is exact.
        return self.on_problem == "warn"

    def on_train_batch_end(self, batch, logs=None):
        with self._lock:
            if self._tap is None:
                return
            # ``batch`` is the index of the last step run, in this epoch.
            steps = self._epoch_start + batch + 1
            if steps <= self._seen:
                return
            first, self._seen = self._seen, steps
            n = self.every_n_steps
            # Recorded steps (k % n == 0) among [first, steps).
            self._unread += -(-steps // n) - (-(-first // n))
            bad_loss = self.on_problem != "warn" and _loss_not_finite(logs)
            if (
                bad_loss
                and self._first_bad_loss is None
                and n > 1
                and not self._tap.loss_scaled
            ):
                # fit's batch logs carry the epoch's running mean loss,
                # which turns non-finite with the first such step: one of
                # the steps this call ran, the last of them at the latest.
                # Only needed when steps go unrecorded; not under a loss-
                # scale optimizer, whose skipped steps the logs do not show.
                self._first_bad_loss = (first, steps - 1)
            if self._unread >= self._tap.read_batch or bad_loss:
                # A non-finite loss is acted on at once when stopping, even
                # when its step was not recorded, so callbacks after this
                # one (BackupAndRestore, checkpoints) see the restored
                # weights at the end of this epoch.
                self._read_and_check(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._tap is None:
            return
        with self._lock:
            self._epoch_start = self._seen
            self._read_and_check(None)
            if logs is not None:
                self._fill_logs(logs)

    def on_train_end(self, logs=None):
        if self._tap is None:
            return
        try:
            with self._lock:
                self._read_and_check(None, final=True)
        finally:
            self._tap.remove()
            self._tap = None
            # No lock is kept between fits: keras-tuner deep-copies
            # callbacks, and a lock cannot be copied.
            self._lock = _NoLock()
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # ----------------------------------------------------------- checking
    def _read_and_check(self, logs, final=False):
        tap = self._tap
        self._unread = 0
        new = tap.read()
        if tap.lost > self.records_lost:
            self._report_lost(tap.lost)
        if new:
            self.records.extend(new)
            self.skipped_steps.extend(r.step for r in new if r.skipped)
            self._write_tensorboard(new)
            if logs is not None:
                self._fill_logs(logs)
        skip = {p.name for p in self.problems}
        if self.diagnoses is not None:
            skip |= set(DIAGNOSES) - set(self.diagnoses)
        bad_loss = self._first_bad_loss
        if not new:
            if bad_loss is None or "nan" in skip:
                return
            # Only the non-finite loss of a step that was not recorded.
            skip |= set(DIAGNOSES) - {"nan"}
        found = diagnose(
            self.records,
            self._thresholds,
            first_bad_loss_step=bad_loss,
            skip=skip,
            new=len(new),
            state=self._diagnose_state,
        )
        # Several records are read at once: report in the order the
        # problems appeared.
        found.sort(key=lambda p: (p.step, DIAGNOSES.index(p.name)))
        for problem in found:
            self._handle(problem, final)

    def _report_lost(self, lost):
        first = self.records_lost == 0
        self.records_lost = lost
        if not first:
            return
        # Once per fit; the running count is in `records_lost`, the
        # ``grad_records_lost`` log and the report.
        reason = (
            "its batch-end hook, run in a Keras worker thread with "
            "on_problem='warn', fell behind training"
            if self.on_problem == "warn"
            else "it was not read often enough"
        )
        warnings.warn(
            f"Gradient health: {lost} recorded step(s) were overwritten in "
            f"the ring buffer ({self._tap.capacity} rows) before the "
            f"callback read them, because {reason}; the diagnoses did not "
            "see them (the count so far is in `records_lost`, the "
            "'grad_records_lost' log and the report). To lose none, record "
            "less often (a larger every_n_steps) or use on_problem='stop', "
            "which reads in step with training.",
            GradientHealthWarning,
            stacklevel=3,
        )

    def _handle(self, problem, final):
        self.problems.append(problem)
        if self.verdict == "healthy":
            self.verdict = problem.name
        if problem.name == "nan":
            self.nonfinite = True
            if self.verdict != "nan":
                self.verdict = "nan"
        message = f"Gradient health: {problem}"
        stopping = self.on_problem in ("stop", "raise") and not final
        if stopping and problem.name == "nan":
            message = message.rstrip(". ") + ". " + self._save_last_finite()
        if self.on_problem == "raise" and not final:
            # fit will not reach on_train_end: put the model back now.
            self._tap.remove()
            self._tap = None
            raise GradientHealthError(
                message, diagnosis=problem, recovery_path=self.recovery_path
            )
        warnings.warn(message, GradientHealthWarning, stacklevel=2)
        if self.on_problem == "stop":
            self.model.stop_training = True

    def _save_last_finite(self):
        """Restores and saves the recovery point; returns what to tell."""
        tap = self._tap
        point = tap.recovery_point()
        if point is None:
            return (
                "No recovery point was saved: no recorded step had a finite "
                "loss and finite gradients before the problem appeared."
            )
        for variable, value in zip(
            tap.variables, point["weights"], strict=True
        ):
            variable.assign(value)
        for variable, value in point["extra"]:
            variable.assign(value)
        self.recovery_step = point["step"]
        path = self._recovery_path_arg
        if path is None:
            folder = self.log_dir or tempfile.gettempdir()
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(
                folder,
                f"gradient_health_last_finite_{os.getpid()}_{id(self)}"
                ".weights.h5",
            )
        self.model.save_weights(path, overwrite=True)
        self.recovery_path = path
        return (
            f"The model's weights were set back to those from before step "
            f"{point['step']} (the last recorded step with a finite, sane "
            f"loss ({point['loss']:.4g}) and finite gradients) and saved to "
            f"{path}; resume with model.load_weights({path!r}) and a freshly "
            "compiled optimizer, with a lower learning rate."
        )

    def _fill_logs(self, logs):
        if not self.records:
            return
        last = self.records[-1]
        logs["grad_norm"] = last.global_norm
        logs["grad_max_abs"] = max(
            (s.max_abs for s in last.layers), default=0.0
        )
        logs["grad_nonfinite"] = float(last.grad_nonfinite)
        logs["grad_update_ratio"] = last.update_ratio
        logs["grad_problems"] = float(len(self.problems))
        logs["grad_records_lost"] = float(self.records_lost)
        for layer in last.layers:
            logs[f"grad_norm/{layer.name}"] = layer.norm

    def _write_tensorboard(self, records):
        if self._writer is None:
            return
        import tensorflow as tf

        with self._writer.as_default():
            for rec in records:
                tf.summary.scalar("grad_norm/global", rec.global_norm, rec.step)
                tf.summary.scalar("loss", rec.loss, rec.step)
                tf.summary.scalar("update_ratio", rec.update_ratio, rec.step)
                for layer in rec.layers:
                    tf.summary.scalar(
                        f"grad_norm/{layer.name}", layer.norm, rec.step
                    )
            # One histogram per layer of the latest recorded step's
            # gradients, at each read (not at every recorded step).
            step, grads = self._tap.latest_gradients()
            for name, values in grads.items():
                values = values[np.isfinite(values)]
                tf.summary.histogram(f"grad_hist/{name}", values, step)
            self._writer.flush()

    # ------------------------------------------------------------ reports
    def report(self):
        """The whole result as a JSON-ready dict.

        Returns:
            A dict with ``verdict``, ``nonfinite``, ``problems``,
            ``skipped_steps``, ``recovery_path``, ``recovery_step``,
            ``steps_recorded``, ``records_lost`` (recorded steps
            overwritten in the ring buffer before they were read),
            ``layers`` and ``history`` (per recorded step: step, loss,
            global norm, update ratio, per-layer norms).
        """
        layers = (
            [s.name for s in self.records[0].layers] if self.records else []
        )
        history = [
            {
                "step": r.step,
                "loss": _json(r.loss),
                "skipped": r.skipped,
                "global_norm": _json(r.global_norm),
                "update_ratio": _json(r.update_ratio),
                "layer_norms": [_json(s.norm) for s in r.layers],
            }
            for r in self.records
        ]
        out = {
            "verdict": self.verdict,
            "nonfinite": self.nonfinite,
            "problems": [p.to_dict() for p in self.problems],
            "skipped_steps": list(self.skipped_steps),
            "recovery_path": self.recovery_path,
            "recovery_step": self.recovery_step,
            "steps_recorded": len(self.records),
            "records_lost": self.records_lost,
            "every_n_steps": self.every_n_steps,
            "layers": layers,
            "history": history,
        }
        json.dumps(out)
        return out

    def summary(self):
        """A few lines of text: the verdict and each problem."""
        lines = [
            f"Gradient health: {self.verdict} "
            f"({len(self.records)} recorded steps, every "
            f"{self.every_n_steps})"
        ]
        if self.records:
            last = self.records[-1]
            lines.append(
                f"  last step {last.step}: loss {last.loss:.4g}, "
                f"gradient norm {last.global_norm:.3g}, "
                f"update ratio {last.update_ratio:.3g}"
            )
        if self.records_lost:
            lines.append(
                f"  {self.records_lost} recorded step(s) lost: overwritten "
                "in the ring buffer before they were read"
            )
        if self.skipped_steps:
            lines.append(
                f"  {len(self.skipped_steps)} step(s) skipped by the "
                f"loss-scale optimizer (overflow): {self.skipped_steps[:5]}"
            )
        for problem in self.problems:
            lines.append(f"  - {problem}")
        if self.recovery_path:
            lines.append(
                f"  recovery point (weights from before step "
                f"{self.recovery_step}): {self.recovery_path}"
            )
        return "\n".join(lines)

    def plot(self, path):
        """Writes a PNG of per-layer gradient norms over the recorded steps.

        Args:
            path: Output file name (``.png``).

        Returns:
            The path written.

        Raises:
            InvalidArgumentError: Nothing was recorded yet.
        """
        if not self.records:
            raise InvalidArgumentError(
                "There is nothing to plot: no step was recorded. "
                "Received: records=[]"
            )
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        steps = [r.step for r in self.records]
        fig, ax = plt.subplots(figsize=(8, 4.5))
        names = [s.name for s in self.records[0].layers]
        for i, name in enumerate(names):
            values = [_positive(r.layers[i].norm) for r in self.records]
            ax.plot(steps, values, label=name, linewidth=1.2)
        ax.plot(
            steps,
            [_positive(r.global_norm) for r in self.records],
            label="global",
            color="black",
            linewidth=2,
        )
        for problem in self.problems:
            ax.axvline(problem.step, color="red", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("gradient L2 norm")
        ax.set_title(f"Gradient health: {self.verdict}")
        ax.legend(fontsize="small", loc="best")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _loss_not_finite(logs):
    value = (logs or {}).get("loss")
    if value is None:
        return False
    if hasattr(value, "numpy"):
        # A tensor: NumPy 2 warns when it converts one with a dtype.
        value = value.numpy()
    try:
        return not np.all(np.isfinite(np.asarray(value, dtype=np.float64)))
    except (TypeError, ValueError):
        return False


class _NoLock:
    """A stand-in for a lock outside fit (copyable, does nothing)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _json(value):
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _positive(value):
    return value if math.isfinite(value) and value > 0 else float("nan")
