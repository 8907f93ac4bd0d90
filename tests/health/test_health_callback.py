"""The GradientHealth callback: contract, logs, actions, reports."""

import csv
import inspect
import json
import math
import os
import warnings

import health_helpers as hh
import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import KerasWeightsError
from kerasweights.health import GradientHealth
from kerasweights.health import GradientHealthError
from kerasweights.health import GradientHealthWarning

CALLBACKS = kerasweights.plugins(kind="callback")


def _ids(records):
    return [r.registered_name for r in records]


# ------------------------------------------------- every callback plugin
@pytest.mark.parametrize("record", CALLBACKS, ids=_ids(CALLBACKS))
def test_callback_plugin_contract(record):
    cls = record.obj
    assert issubclass(cls, keras.callbacks.Callback)
    assert record.kind == "callback"
    assert keras.saving.get_registered_name(cls) == record.registered_name
    assert keras.saving.get_registered_object(record.registered_name) is cls


@pytest.mark.parametrize("record", CALLBACKS, ids=_ids(CALLBACKS))
def test_callback_config_names_every_argument(record):
    cls = record.obj
    obj = cls()
    config = obj.get_config()
    params = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    assert {p.name for p in params} <= set(config)
    json.dumps(config)
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(obj)
    )
    assert type(again) is cls
    assert again.get_config() == config


def test_config_round_trip_keeps_non_default_values():
    health = GradientHealth(
        every_n_steps=3,
        on_problem="stop",
        log_dir="/tmp/somewhere",
        patience=7,
        dead_steps=2,
        thresholds={"explode_norm": 50.0},
        diagnoses=["nan", "exploding"],
        watch_activations=False,
        recovery_path="/tmp/x.weights.h5",
        read_every=7,
    )
    config = health.get_config()
    again = GradientHealth.from_config(config)
    assert again.get_config() == config
    assert again.read_every == 7 and again._read_batch() == 7
    assert config["every_n_steps"] == 3 and config["dead_steps"] == 2
    assert config["thresholds"] == {"explode_norm": 50.0}


def test_deserializes_in_a_fresh_process(fresh_python):
    config = GradientHealth(every_n_steps=5, on_problem="raise").get_config()
    code = (
        "import json, keras, kerasweights\n"
        f"cfg = json.loads({json.dumps(config)!r})\n"
        "obj = keras.saving.deserialize_keras_object({'class_name': "
        "'kerasweights>GradientHealth', 'config': cfg, 'module': None, "
        "'registered_name': 'kerasweights>GradientHealth'})\n"
        "assert obj.get_config() == cfg, obj.get_config()\n"
        "print(type(obj).__name__, obj.every_n_steps)\n"
    )
    result = fresh_python(code)
    assert result.returncode == 0, result.stderr
    assert "GradientHealth 5" in result.stdout


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"every_n_steps": 0}, "`every_n_steps` must be a positive integer"),
        ({"every_n_steps": 2.5}, "Received: every_n_steps=2.5"),
        ({"read_every": 0}, "`read_every` must be a positive integer"),
        ({"on_problem": "panic"}, "Received: on_problem='panic'"),
        ({"thresholds": {"explode": 1}}, "unknown keys: ['explode']"),
        ({"diagnoses": ["nan", "nope"]}, "Received: diagnoses=['nope']"),
        ({"recovery_path": "w.h5"}, "must end in '.weights.h5'"),
    ],
)
def test_bad_arguments_are_refused(kwargs, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        GradientHealth(**kwargs)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_uncompiled_model_is_refused():
    model = hh.sequential()
    health = GradientHealth()
    health.set_model(model)
    with pytest.raises(KerasWeightsError, match="compiled"):
        health.on_train_begin()


# ---------------------------------------------------------------- fit
def test_figures_reach_history_and_csv_logger(tmp_path):
    x, y = hh.data(n=64)
    model = hh.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    health = GradientHealth(log_dir=str(tmp_path / "tb"))
    csv_path = tmp_path / "log.csv"
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[health, keras.callbacks.CSVLogger(str(csv_path))],
    )
    for key in ("grad_norm", "grad_update_ratio", "grad_problems"):
        assert len(history.history[key]) == 2
    assert history.history["grad_norm"][-1] == pytest.approx(
        health.records[-1].global_norm
    )
    per_layer = [k for k in history.history if k.startswith("grad_norm/")]
    assert len(per_layer) == 3
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "grad_norm" in rows[0]
    # TensorBoard: a scalar per recorded step for the global and each
    # layer's norm, and per-layer gradient histograms.
    scalars, histograms = _tensorboard_tags(tmp_path / "tb")
    layers = [s.name for s in health.records[0].layers]
    assert len(scalars["grad_norm/global"]) == len(health.records) == 8
    for name in layers:
        assert len(scalars[f"grad_norm/{name}"]) == 8
        assert histograms[f"grad_hist/{name}"]
    # The histogram counts every gradient entry of the layer.
    sizes = {}
    for v in model.trainable_variables:
        key = v.path.rsplit("/", 1)[0]
        sizes[key] = sizes.get(key, 0) + int(np.prod(v.shape))
    for name in layers:
        buckets = histograms[f"grad_hist/{name}"][-1]
        assert buckets[:, 2].sum() == pytest.approx(sizes[name])

    # After fit the optimizer and layers are back to their own methods
    # and a later fit without the callback still trains.
    assert "apply" not in vars(model.optimizer)
    assert model.get_layer("hidden2").activation is keras.activations.tanh
    before = model.get_weights()[0].copy()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_weights()[0])


def _tensorboard_tags(folder):
    """``({scalar tag: [values]}, {histogram tag: [bucket arrays]})``."""
    import tensorflow as tf

    scalars, histograms, plugins = {}, {}, {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                # The plugin may be named on a tag's first event only.
                plugin = value.metadata.plugin_data.plugin_name
                plugin = plugins.setdefault(value.tag, plugin)
                if plugin == "histograms":
                    histograms.setdefault(value.tag, []).append(tensor)
                elif plugin == "scalars":
                    scalars.setdefault(value.tag, []).append(float(tensor))
    return scalars, histograms


def test_same_model_can_be_watched_twice():
    x, y = hh.data(n=32)
    model = hh.sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # traced plain
    health = GradientHealth()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[health])
    assert [r.step for r in health.records] == [0, 1]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[health])
    assert [r.step for r in health.records] == [0, 1]


def _nan_model(lr_epoch=1):
    """A model whose learning rate turns absurd at epoch ``lr_epoch``."""
    x, y = hh.data(n=64)
    model = hh.sequential()
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: float("inf") if epoch >= lr_epoch else 0.01
    )
    return model, x, y, schedule


def test_stop_keeps_the_last_finite_weights(tmp_path):
    model, x, y, schedule = _nan_model()
    recovery = str(tmp_path / "last.weights.h5")
    backup = tmp_path / "backup"
    health = GradientHealth(on_problem="stop", recovery_path=recovery)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=4,
            verbose=0,
            callbacks=[
                schedule,
                health,
                keras.callbacks.BackupAndRestore(str(backup)),
                keras.callbacks.EarlyStopping(
                    monitor="loss", restore_best_weights=True, patience=5
                ),
            ],
        )
    assert health.nonfinite is True
    assert health.verdict == "nan"
    assert health.recovery_path == recovery
    messages = [
        str(w.message)
        for w in caught
        if issubclass(w.category, GradientHealthWarning)
    ]
    assert any(recovery in m for m in messages)
    # Stopped within the first bad epoch (4 steps per epoch).
    assert health.records[-1].step < 8
    # The model holds finite weights, and the saved file reloads them.
    assert all(np.isfinite(w).all() for w in model.get_weights())
    fresh = hh.sequential(seed=9)
    fresh.load_weights(recovery)
    for a, b in zip(fresh.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _backup_weights_and_epoch(backup):
    """The weights and epoch a BackupAndRestore folder would resume from."""
    fresh = hh.sequential(seed=9)
    fresh.load_weights(str(backup / "latest.weights.h5"))
    with open(backup / "training_metadata.json") as f:
        return fresh.get_weights(), json.load(f)["epoch"]


def test_c19_stop_leaves_a_finite_backup_to_resume(tmp_path):
    # Case C19: the learning rate turns infinite in the second epoch;
    # "stop" ends fit cleanly, so a BackupAndRestore that keeps its
    # checkpoint holds the restored finite weights, not NaNs.
    model, x, y, schedule = _nan_model(lr_epoch=1)
    backup = tmp_path / "backup"
    health = GradientHealth(
        on_problem="stop", recovery_path=str(tmp_path / "last.weights.h5")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientHealthWarning)
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=4,
            verbose=0,
            callbacks=[
                schedule,
                health,
                keras.callbacks.BackupAndRestore(
                    str(backup), delete_checkpoint=False
                ),
            ],
        )
    assert health.verdict == "nan" and 4 <= health.problems[0].step < 8
    weights, epoch = _backup_weights_and_epoch(backup)
    assert epoch == 2  # saved at the end of the stopped epoch
    assert all(np.isfinite(w).all() for w in weights)
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_c19_raise_keeps_the_backup_and_restore_checkpoint(tmp_path):
    # Keras deletes a BackupAndRestore checkpoint (delete_checkpoint=True,
    # its default) at the end of any fit that ends normally, a "stop"
    # included. With "raise" fit ends with an error: the checkpoint of
    # the last finite epoch survives and the next fit resumes from it.
    model, x, y, schedule = _nan_model(lr_epoch=1)
    backup = tmp_path / "backup"
    health = GradientHealth(
        on_problem="raise", recovery_path=str(tmp_path / "last.weights.h5")
    )
    first_epoch = {}

    class AfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                first_epoch["w"] = [w.copy() for w in model.get_weights()]

    with pytest.raises(GradientHealthError) as info:
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=4,
            verbose=0,
            callbacks=[
                schedule,
                health,
                keras.callbacks.BackupAndRestore(str(backup)),
                AfterFirstEpoch(),
            ],
        )
    assert "last.weights.h5" in str(info.value)
    weights, epoch = _backup_weights_and_epoch(backup)
    assert epoch == 1
    for a, b in zip(weights, first_epoch["w"], strict=True):
        np.testing.assert_array_equal(a, b)
    # Resuming: fit starts again after the backed-up epoch, from finite
    # weights, with a sane learning rate.
    resumed = hh.sequential(seed=9)
    resumed.compile(
        keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy"
    )
    history = resumed.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(backup))],
    )
    assert len(history.history["loss"]) == 2  # epochs 1 and 2 only
    assert all(np.isfinite(w).all() for w in resumed.get_weights())


def _c19_fit(model, x, y, schedule, tmp_path, on_problem="stop"):
    """Fits with the C19 callbacks; returns health, messages, epoch-end
    weights (by epoch) and the evaluation losses of those weights."""
    recovery = str(tmp_path / "recovery.weights.h5")
    health = GradientHealth(on_problem=on_problem, recovery_path=recovery)
    at_epoch_end = {}

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            at_epoch_end[epoch] = [w.copy() for w in model.get_weights()]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=6,
            verbose=0,
            callbacks=[
                Snapshot(),
                health,
                keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
                keras.callbacks.EarlyStopping(
                    monitor="loss", patience=5, restore_best_weights=True
                ),
                schedule,
            ],
        )
    messages = [
        " ".join(str(w.message).split())
        for w in caught
        if issubclass(w.category, GradientHealthWarning)
    ]
    return health, messages, at_epoch_end


def _reload_and_resume(build, loss, path, x, y):
    """Loads a recovery file into a fresh model: its loss, and the loss
    after one more epoch at a sane learning rate."""
    fresh = build()
    fresh.load_weights(path)
    loaded = [w.copy() for w in fresh.get_weights()]
    fresh.compile(keras.optimizers.SGD(0.01), loss)
    first = fresh.evaluate(x, y, verbose=0)
    history = fresh.fit(x, y, batch_size=16, epochs=1, verbose=0)
    return first, history.history["loss"][-1], loaded


def _c19_net(seed=3):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_c19_huge_learning_rate_keeps_weights_from_before_the_blow_up(
    tmp_path, jit_compile
):
    # Case C19 as reported: lr 1e30 from the third epoch. The first such
    # step leaves finite weights of about 1e29 whose loss is NaN; the
    # recovery point must be the weights from before that step (the end
    # of the second epoch), and loading it must give a finite loss.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = _c19_net()
    model.compile(
        keras.optimizers.SGD(0.01),
        "sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 1e30 if epoch >= 2 else 0.01
    )
    health, messages, snaps = _c19_fit(model, x, y, schedule, tmp_path)
    assert health.verdict == "nan"
    # 4 steps per epoch: step 8 is the first with lr 1e30.
    assert health.recovery_step == 8
    assert len(snaps) == 3  # stopped in the third epoch
    path = health.recovery_path
    assert any("before step 8" in m and path in m for m in messages)
    assert any(". The model's weights were set back" in m for m in messages)
    assert health.report()["recovery_step"] == 8
    assert f"weights from before step 8): {path}" in health.summary()
    first, after, loaded = _reload_and_resume(
        _c19_net, "sparse_categorical_crossentropy", path, x, y
    )
    for a, b in zip(loaded, snaps[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert math.isfinite(first) and first < 1.0
    assert math.isfinite(after)


def test_recovery_point_skips_finite_weights_with_an_absurd_loss(tmp_path):
    # A linear model under mean absolute error: lr 1e30 leaves weights of
    # about 1e30 whose loss is finite but absurd (about 1e30) for several
    # steps before lr inf makes them NaN. The last finite weights are
    # useless; the recovery point is from before the first 1e30 step.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5, 0.0], "float32")[:, None]

    def linear():
        keras.utils.set_random_seed(4)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])

    model = linear()
    model.compile(keras.optimizers.SGD(0.01), "mae")
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: [0.01, 1e30][epoch] if epoch < 2 else float("inf")
    )
    health, messages, snaps = _c19_fit(model, x, y, schedule, tmp_path)
    assert health.verdict == "nan"
    losses = {r.step: r.loss for r in health.records}
    assert all(1e20 < losses[s] < np.inf for s in (5, 6, 7, 8))
    assert health.recovery_step == 4
    first, after, loaded = _reload_and_resume(
        linear, "mae", health.recovery_path, x, y
    )
    for a, b in zip(loaded, snaps[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert math.isfinite(first) and first < 10.0
    assert math.isfinite(after)


def test_recovery_point_restores_batchnorm_statistics(tmp_path):
    # The NaN step also makes BatchNorm's moving statistics NaN (they are
    # updated by the forward pass): they belong to the recovery point too,
    # or the saved file predicts NaN.
    x, y = hh.data(n=64)

    def with_batchnorm():
        keras.utils.set_random_seed(5)
        return keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )

    model = with_batchnorm()
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: float("inf") if epoch >= 1 else 0.01
    )
    health, messages, snaps = _c19_fit(model, x, y, schedule, tmp_path)
    assert health.verdict == "nan" and health.recovery_step == 4
    assert all(np.isfinite(w).all() for w in model.get_weights())
    first, after, _ = _reload_and_resume(
        with_batchnorm,
        "sparse_categorical_crossentropy",
        health.recovery_path,
        x,
        y,
    )
    assert math.isfinite(first) and math.isfinite(after)


def test_no_recovery_point_when_the_first_step_is_already_nan(tmp_path):
    x, y = hh.data(n=32)
    x[0, 0] = np.nan
    model = hh.sequential()
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    health = GradientHealth(
        on_problem="stop", recovery_path=str(tmp_path / "r.weights.h5")
    )
    before = [w.copy() for w in model.get_weights()]
    with pytest.warns(GradientHealthWarning, match="No recovery point"):
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[health])
    assert health.recovery_path is None and health.recovery_step is None
    assert not os.path.exists(tmp_path / "r.weights.h5")
    # The weights are not replaced by the empty recovery buffers.
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(model.get_weights(), before, strict=True)
    ]
    assert any(changed)


def test_raise_stops_fit_and_restores_the_model(tmp_path):
    model, x, y, schedule = _nan_model(lr_epoch=0)
    health = GradientHealth(
        on_problem="raise", recovery_path=str(tmp_path / "r.weights.h5")
    )
    with pytest.raises(GradientHealthError) as info:
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            verbose=0,
            callbacks=[schedule, health],
        )
    assert info.value.diagnosis.name == "nan"
    assert info.value.recovery_path == str(tmp_path / "r.weights.h5")
    assert os.path.exists(info.value.recovery_path)
    assert isinstance(info.value, RuntimeError)
    assert "apply" not in vars(model.optimizer)


def test_warn_lets_training_go_on():
    model, x, y, schedule = _nan_model(lr_epoch=0)
    health = GradientHealth(on_problem="warn")
    with pytest.warns(GradientHealthWarning, match="nan"):
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            verbose=0,
            callbacks=[schedule, health],
        )
    assert health.records[-1].step == 7  # every step ran
    assert health.nonfinite and health.recovery_path is None


def test_report_summary_and_plot(tmp_path):
    x, y = hh.data(n=64)
    model = hh.functional()
    model.compile("adam", "sparse_categorical_crossentropy")
    health = GradientHealth(every_n_steps=2)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[health])
    report = health.report()
    text = json.dumps(report)
    assert json.loads(text)["verdict"] == health.verdict == "healthy"
    assert report["steps_recorded"] == 4
    assert [h["step"] for h in report["history"]] == [0, 2, 4, 6]
    assert len(report["layers"]) == len(report["history"][0]["layer_norms"])
    assert all(
        math.isfinite(n) for h in report["history"] for n in h["layer_norms"]
    )
    summary = health.summary()
    assert summary.startswith("Gradient health: healthy")
    path = health.plot(str(tmp_path / "norms.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_before_fit_is_refused():
    with pytest.raises(InvalidArgumentError, match="nothing to plot"):
        GradientHealth().plot("x.png")


def test_health_modules_do_not_import_matplotlib_at_top_level():
    # keras itself may import matplotlib; our modules must not add it.
    import kerasweights.health as health

    folder = os.path.dirname(health.__file__)
    for name in os.listdir(folder):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name)) as f:
            top = [ln for ln in f if ln.startswith(("import ", "from "))]
        assert not any("matplotlib" in ln for ln in top), name


def test_docs_example_runs(tmp_path, monkeypatch):
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    with open(os.path.join(root, "docs", "health.md")) as f:
        text = f.read()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientHealthWarning)
        exec(compile(code, "docs/health.md", "exec"), namespace)
    assert namespace["health"].verdict == "update_ratio_low"
    assert (tmp_path / "grad_norms.png").exists()
    assert json.dumps(namespace["report"])


def test_callback_can_be_deep_copied_before_and_after_fit():
    # keras-tuner deep-copies the callbacks of every trial.
    import copy

    x, y = hh.data(n=32)
    model = hh.sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    health = copy.deepcopy(GradientHealth(every_n_steps=2))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[health])
    again = copy.deepcopy(health)
    assert again.verdict == health.verdict == "healthy"
    assert [r.step for r in health.records] == [0, 2]


def test_each_diagnosis_is_a_callback_plugin_of_its_own():
    from kerasweights.health import DIAGNOSES

    by_diagnosis = {}
    for record in CALLBACKS:
        if issubclass(record.obj, GradientHealth) and record.obj.diagnosis:
            by_diagnosis[record.obj.diagnosis] = record
    assert sorted(by_diagnosis) == sorted(DIAGNOSES)
    for name, record in by_diagnosis.items():
        assert record.name == f"health_{name}"
        assert record.obj().diagnoses == [name]
    assert kerasweights.get_plugin("gradient_health", kind="callback").obj is (
        GradientHealth
    )


def test_one_diagnosis_plugin_runs_only_its_diagnosis():
    from kerasweights.health import ExplodingGradientCheck
    from kerasweights.health import NonFiniteCheck

    for cls, expected in (
        (NonFiniteCheck, "nan"),
        (ExplodingGradientCheck, None),
    ):
        model, x, y, schedule = _nan_model(lr_epoch=0)
        check = cls()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientHealthWarning)
            model.fit(
                x,
                y,
                batch_size=16,
                epochs=1,
                verbose=0,
                callbacks=[schedule, check],
            )
        assert [p.name for p in check.problems] == (
            [expected] if expected else []
        )


@pytest.mark.parametrize("on_problem, first", [("warn", 50), ("stop", 15)])
def test_reads_every_50_recorded_steps_with_warn_15_otherwise(
    on_problem, first
):
    # A probe after the callback sees how many records were read at the
    # end of each batch (a probe that is not async-safe keeps the batch
    # hooks in step with training).
    class Probe(keras.callbacks.Callback):
        def __init__(self, health):
            super().__init__()
            self.health, self.read = health, []

        def on_train_batch_end(self, batch, logs=None):
            self.read.append(len(self.health.records))

    x, y = hh.data(n=64)
    model = hh.sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    # No diagnosis runs: "stop" must not end this run early.
    health = GradientHealth(on_problem=on_problem, diagnoses=[])
    probe = Probe(health)
    model.fit(
        x, y, batch_size=1, epochs=1, verbose=0, callbacks=[health, probe]
    )
    reads = [i for i in range(1, 64) if probe.read[i] != probe.read[i - 1]]
    assert probe.read[0] == 0
    assert reads[0] == first - 1 and probe.read[reads[0]] == first
    # Every step recorded and read by the end of the epoch.
    assert [r.step for r in health.records] == list(range(64))


def test_every_n_steps_dispatcher_is_set_once_and_removed():
    x, y = hh.data(n=64)
    model = hh.sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.train_function)

    health = GradientHealth(every_n_steps=3)
    model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, callbacks=[health, Probe()]
    )
    # One train function for the whole fit: the tap's dispatcher, which
    # ran the tapped step on steps 0, 3, 6... only.
    assert len({id(f) for f in seen}) == 1
    assert seen[0] is not model.train_function
    assert [r.step for r in health.records] == list(range(0, 16, 3))
