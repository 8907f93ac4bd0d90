"""The tap reports the gradients of the step fit really ran."""

import health_helpers as hh
import keras
import numpy as np
import pytest

from kerasweights.health import GradientHealth


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


def _fit_one_epoch(model, x, y, batch, **compile_kwargs):
    model.compile(
        optimizer=compile_kwargs.pop("optimizer", keras.optimizers.SGD(0.05)),
        loss="sparse_categorical_crossentropy",
        **compile_kwargs,
    )
    health = GradientHealth(on_problem="warn")
    model.fit(
        x,
        y,
        batch_size=batch,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[health],
    )
    return health


@pytest.mark.parametrize(
    "kind,jit,spe",
    [
        ("sequential", False, 1),
        ("sequential", True, 1),
        ("sequential", False, 3),
        ("functional", True, 2),
        ("subclassed", False, 1),
        ("subclassed", True, 3),
    ],
)
def test_norms_equal_gradient_tape(kind, jit, spe):
    x, y = hh.data(n=48)
    model = hh.BUILDERS[kind]()
    loss_fn = keras.losses.sparse_categorical_crossentropy
    expected, expected_loss = hh.reference_layer_norms(
        model, x[:16], y[:16], loss_fn
    )

    health = _fit_one_epoch(
        model, x, y, 16, jit_compile=jit, steps_per_execution=spe
    )

    # Every step was recorded, once, in order, even several per execution.
    assert [r.step for r in health.records] == [0, 1, 2]
    first = health.records[0]
    got = {layer.name: layer.norm for layer in first.layers}
    assert set(got) == set(expected)
    for name, norm in expected.items():
        np.testing.assert_allclose(got[name], norm, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        first.global_norm,
        np.sqrt(sum(v * v for v in expected.values())),
        rtol=1e-5,
    )
    np.testing.assert_allclose(first.loss, expected_loss, rtol=1e-5)
    # Later steps saw other batches and other weights: other gradients.
    assert health.records[1].global_norm != pytest.approx(first.global_norm)


def test_other_statistics_match_numpy():
    import tensorflow as tf

    x, y = hh.data(n=16)
    model = hh.sequential()
    w_before = [v.numpy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(
                y, model(x, training=True)
            )
        )
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]

    health = _fit_one_epoch(model, x, y, 16)

    w_after = [v.numpy() for v in model.trainable_variables]
    rec = health.records[0]
    for i, layer in enumerate(rec.layers):
        g = grads[2 * i : 2 * i + 2]
        size = sum(a.size for a in g)
        assert layer.max_abs == pytest.approx(
            max(np.abs(a).max() for a in g), rel=1e-6
        )
        assert layer.zero_fraction == pytest.approx(
            sum(int(np.sum(a == 0)) for a in g) / size
        )
        assert layer.nan == layer.inf == layer.weight_nonfinite == 0
        upd = sum(
            np.sum((a - b) ** 2)
            for a, b in zip(
                w_after[2 * i : 2 * i + 2],
                w_before[2 * i : 2 * i + 2],
                strict=True,
            )
        )
        wsq = sum(np.sum(b**2) for b in w_before[2 * i : 2 * i + 2])
        assert layer.update_ratio == pytest.approx(np.sqrt(upd / wsq), rel=1e-4)
    # ReLU layer: units zero on the whole batch = zero bias gradient.
    relu = rec.layers[0]
    assert relu.units == 16
    assert relu.zero_units == int(np.sum(grads[1] == 0))
    # The tanh layer's saturation is the fraction of |y| >= 0.99.
    hidden = keras.Model(model.inputs, model.get_layer("hidden2").output)
    for v, b in zip(model.trainable_variables, w_before, strict=True):
        v.assign(b)
    out = hidden(x).numpy()
    assert rec.layers[1].saturation == pytest.approx(
        np.mean(np.abs(out) >= 0.99)
    )


@pytest.mark.parametrize("jit", [False, True])
def test_non_finite_step_is_counted_exactly(jit):
    # The exact path (a NaN in one input makes the loss and the gradients
    # NaN):
    # counts, norms over the finite entries and non-finite weights after
    # the update, with and without XLA (which takes it in a tf.cond).
    import tensorflow as tf

    from kerasweights.health import GradientHealthWarning

    x, y = hh.data(n=16)
    x[3, 2] = np.nan
    # No ReLU: whether relu(NaN) is NaN or 0 differs between kernels, so
    # an eager reference could disagree with the compiled step.
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(4, name="a"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(
                y, model(x, training=True)
            )
        )
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
    with pytest.warns(GradientHealthWarning):
        health = _fit_one_epoch(model, x, y, 16, jit_compile=jit)
    w_after = [v.numpy() for v in model.trainable_variables]
    rec = health.records[0]
    assert np.isnan(rec.loss) and not rec.skipped
    assert rec.grad_nonfinite == sum(
        int(np.sum(~np.isfinite(g))) for g in grads
    )
    for i, layer in enumerate(rec.layers):
        g = grads[2 * i : 2 * i + 2]
        assert layer.nan == sum(int(np.sum(np.isnan(a))) for a in g)
        assert layer.inf == sum(int(np.sum(np.isinf(a))) for a in g)
        clean = [np.where(np.isfinite(a), a, 0.0).astype(np.float64) for a in g]
        np.testing.assert_allclose(
            layer.norm, np.sqrt(sum(np.sum(c * c) for c in clean)), atol=1e-7
        )
        assert layer.zero_fraction == pytest.approx(
            sum(int(np.sum(a == 0)) for a in g) / sum(a.size for a in g)
        )
        assert layer.weight_nonfinite == sum(
            int(np.sum(~np.isfinite(a))) for a in w_after[2 * i : 2 * i + 2]
        )
    assert health.verdict == "nan"


@pytest.mark.parametrize("spe,jit", [(1, False), (3, True)])
def test_every_n_steps_records_only_those_steps(spe, jit):
    # One step per call: the model's own train function runs in between;
    # several: the tapped one runs every time and skips in-graph.
    x, y = hh.data(n=160)
    model = hh.sequential()
    model.compile(
        "sgd",
        "sparse_categorical_crossentropy",
        steps_per_execution=spe,
        jit_compile=jit,
    )
    plain = model.make_train_function() or model.train_function
    health = GradientHealth(every_n_steps=4)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[health])
    assert [r.step for r in health.records] == list(range(0, 20, 4))
    assert all(0 < s.norm < np.inf for r in health.records for s in r.layers)
    # The model's own train function is back, not a new one.
    assert model.train_function is plain


def test_mixed_precision_norms_are_unscaled(mixed_precision):
    x, y = hh.data(n=32)
    model = hh.sequential()
    weights = model.get_weights()
    keras.mixed_precision.set_global_policy("float32")
    reference = hh.sequential()
    reference.set_weights(weights)
    loss_fn = keras.losses.sparse_categorical_crossentropy
    expected, _ = hh.reference_layer_norms(reference, x[:16], y[:16], loss_fn)
    keras.mixed_precision.set_global_policy("mixed_float16")

    health = _fit_one_epoch(model, x, y, 16, optimizer="sgd")

    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    first = health.records[0]
    assert first.loss_scale > 1000  # the gradients really were scaled
    assert not first.skipped
    assert len(first.layers) == len(expected)
    for layer, norm in zip(first.layers, expected.values(), strict=True):
        # float16 forward pass against a float32 hand computation.
        assert layer.norm == pytest.approx(norm, rel=2e-2)


def test_overflow_step_is_reported_as_skipped(mixed_precision):
    x, y = hh.data(n=64)
    model = hh.sequential()
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.05), initial_scale=2.0**60
    )
    health = _fit_one_epoch(model, x, y, 16, optimizer=optimizer)

    # 2**60 overflows float16 gradients; the optimizer halves the scale
    # and skips until they are finite again.
    assert health.skipped_steps, health.summary()
    assert health.records[0].skipped
    scales = [r.loss_scale for r in health.records]
    assert scales[1] == scales[0] / 2
    assert not health.nonfinite
    assert health.verdict == "healthy", health.summary()
    assert "skipped" in health.summary()


MIRRORED = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import numpy as np
import keras
from kerasweights.health import GradientHealth

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8)).astype("float32")
y = rng.integers(0, 3, 64).astype("int32")
with strategy.scope():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
        y[:16], model(x[:16])))
grads = tape.gradient(loss, model.trainable_variables)
expected = [
    float(np.sqrt(sum(np.sum(np.square(grads[j])) for j in (i, i + 1))))
    for i in (0, 2)
]
health = GradientHealth()
model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0,
          callbacks=[health])
first = health.records[0]
# Every other step: the model's own train function runs in between.
sparse = GradientHealth(every_n_steps=2)
model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
          callbacks=[sparse])
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "steps": [r.step for r in health.records],
    "loss": first.loss, "expected_loss": float(loss),
    "norms": [s.norm for s in first.layers], "expected": expected,
    "sparse_steps": [r.step for r in sparse.records],
    "sparse_norms_finite": all(
        s.norm > 0 and s.norm < float("inf")
        for r in sparse.records for s in r.layers
    ),
    "sparse_verdict": sparse.verdict,
}))
"""


def test_mirrored_strategy_reports_global_batch_gradients(fresh_python):
    import json

    result = fresh_python(MIRRORED)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["steps"] == [0, 1, 2, 3]
    # Each replica saw half the batch; the tap reports the whole batch.
    np.testing.assert_allclose(out["loss"], out["expected_loss"], rtol=1e-5)
    np.testing.assert_allclose(out["norms"], out["expected"], rtol=1e-5)
    assert out["sparse_steps"] == [0, 2, 4, 6]
    assert out["sparse_norms_finite"] and out["sparse_verdict"] == "healthy"


@pytest.mark.parametrize("jit", [False, True])
def test_model_that_builds_on_its_first_step(jit):
    x, y = hh.data(n=32)
    model = hh.Subclassed(3)  # never called: no weights before fit
    model.compile(
        keras.optimizers.SGD(0.05),
        "sparse_categorical_crossentropy",
        jit_compile=jit,
    )
    assert not model.trainable_variables
    health = GradientHealth()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[health])
    assert [r.step for r in health.records] == [0, 1]
    assert len(health.records[0].layers) == 2
    assert all(s.norm > 0 for s in health.records[0].layers)
    assert health.verdict == "healthy"


def test_model_without_trainable_weights_is_left_alone():
    x, y = hh.data(n=32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    model.layers[0].trainable = False
    model.compile("sgd", "mse")
    health = GradientHealth()
    with pytest.warns(UserWarning, match="trainable weights"):
        model.fit(x, np.zeros((32, 3)), verbose=0, callbacks=[health])
    assert health.records == [] and health.verdict == "healthy"
