"""The written-out BPTT (recurrent/fused.py) under other differentiators.

Vectorised Jacobians (``tape.jacobian``/``batch_jacobian``, which trace the
backward pass as a graph while the forward ran eagerly), a saved training
step (a SavedModel whose function differentiates a training call) and the
saved custom gradient itself (differentiating a loaded training call) must
work on the fast path like on the general loop. The layers are every
registered recurrent plugin that uses the fast path.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasweights import registry  # noqa: E402
from kerasweights.recurrent.fused import FusedLoop  # noqa: E402

FAST = sorted(
    (
        r.obj
        for r in registry.plugins("recurrent")
        if isinstance(r.obj, type) and issubclass(r.obj, FusedLoop)
    ),
    key=lambda cls: cls.__name__,
)
IDS = [cls.__name__ for cls in FAST]
FEATURES = 3
UNITS = 4


def test_the_fast_path_layers_are_found():
    names = set(IDS)
    assert {"LayerNormLSTM", "LayerNormGRU", "PeepholeLSTM"} <= names
    assert {"JANET", "MGU"} <= names


def make(cls, dtype="float64"):
    layer = cls(
        UNITS,
        dtype=dtype,
        return_sequences=True,
        kernel_initializer=keras.initializers.GlorotUniform(seed=1),
        recurrent_initializer=keras.initializers.RandomNormal(
            stddev=0.5, seed=2
        ),
        bias_initializer=keras.initializers.RandomUniform(-0.5, 0.5, seed=3),
    )
    layer.build((None, None, FEATURES))
    return layer


@pytest.mark.parametrize("cls", FAST, ids=IDS)
def test_eager_vectorised_jacobians_match_the_general_loop(cls):
    layer = make(cls)
    # 17 steps: two loop iterations of 8 steps and a tail.
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 17, FEATURES)))
    results = {}
    for fused in (True, False):
        layer.fused = fused
        assert layer.uses_fused_loop(training=True) is fused
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            out = layer(x, training=True)
        results[fused] = [
            tape.jacobian(out, layer.trainable_weights[0]).numpy(),
            tape.jacobian(out, x).numpy(),
            tape.batch_jacobian(out, x).numpy(),
        ]
        del tape
    for a, b in zip(results[True], results[False], strict=True):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


LOAD_AND_TRAIN = """
import json, sys
import numpy as np, tensorflow as tf
x, y = np.load(sys.argv[1])["x"], np.load(sys.argv[1])["y"]
losses, grads = {}, {}
for name, custom_gradients in json.loads(sys.argv[2]).items():
    loaded = tf.saved_model.load(name)
    xt = tf.constant(x)
    if custom_gradients:
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(loaded.forward(xt) ** 2)
        grads[name] = tape.gradient(loss, xt).numpy().tolist()
    losses[name] = [float(loaded.step(x, y)) for _ in range(3)]
print(json.dumps({"losses": losses, "grads": grads, "kerasweights": any(
    m.startswith("kerasweights") for m in sys.modules)}))
"""


def train_module(cls):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, FEATURES))
    layer = cls(UNITS)
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))

    class Trainer(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, FEATURES]),
                tf.TensorSpec([None, 1]),
            ]
        )
        def step(self, x, y):
            return self.train(x, y)

        @tf.function(input_signature=[tf.TensorSpec([None, None, FEATURES])])
        def forward(self, x):
            return self.model(x, training=True)

        def train(self, x, y):
            with tf.GradientTape() as tape:
                out = self.model(x, training=True)
                loss = tf.reduce_mean((out - y) ** 2)
            weights = self.model.trainable_variables
            grads = tape.gradient(loss, weights)
            for weight, grad in zip(weights, grads, strict=True):
                weight.assign_sub(0.05 * grad)
            return loss

    return Trainer(), layer


@pytest.fixture(scope="module")
def saved_steps(tmp_path_factory):
    """Every fast-path model saved with and without its custom gradients.

    Both SavedModels of a layer come from one model saved twice before it
    trains, so they hold the same weights, and one fresh process loads
    all of them (one TensorFlow start-up instead of one per option).

    Returns:
        ``(result, expected, paths)``: the child's JSON report, the
        gradient and three losses computed here on the general loop per
        path, and ``{custom_gradients: [path per layer]}``.
    """
    tmp_path = tmp_path_factory.mktemp("saved_steps")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 9, FEATURES)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    expected, paths, flags = {}, {True: [], False: []}, {}
    for cls in FAST:
        module, layer = train_module(cls)
        saved = []
        for custom_gradients in (True, False):
            options = tf.saved_model.SaveOptions(
                experimental_custom_gradients=custom_gradients
            )
            suffix = "custom" if custom_gradients else "plain"
            path = str(tmp_path / f"{cls.__name__}-{suffix}")
            tf.saved_model.save(module, path, options=options)
            paths[custom_gradients].append(path)
            flags[path] = custom_gradients
            saved.append(path)
        # The same gradient and three steps here, on the general loop.
        layer.fused = False
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(module.model(xt, training=True) ** 2)
        want = (
            tape.gradient(loss, xt).numpy(),
            [float(module.train(x, y)) for _ in range(3)],
        )
        for path in saved:
            expected[path] = want
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_TRAIN,
            str(tmp_path / "data.npz"),
            json.dumps(flags),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return result, expected, paths


@pytest.mark.parametrize("custom_gradients", [True, False])
def test_saved_training_step_loads_and_trains_in_a_fresh_process(
    saved_steps, custom_gradients
):
    # With the custom gradients saved (the default), differentiating the
    # loaded training call runs the saved written-out gradient (rebuilt
    # with a second forward loop); without them, only the step's own
    # gradient (traced before saving) is there.
    result, expected, paths = saved_steps
    assert not result["kerasweights"]
    for path in paths[custom_gradients]:
        if custom_gradients:
            grad = np.array(result["grads"][path])
            assert np.abs(grad).max() > 0, path
            np.testing.assert_allclose(
                grad, expected[path][0], rtol=1e-4, atol=1e-6, err_msg=path
            )
        losses = result["losses"][path]
        np.testing.assert_allclose(
            losses, expected[path][1], rtol=1e-4, err_msg=path
        )
        # The step trained: the weights moved between the calls.
        assert losses[0] != losses[1], (path, losses)


@pytest.mark.parametrize("cls", FAST[:1], ids=IDS[:1])
def test_eager_tape_over_a_function_runs_the_forward_loop_once(
    cls, monkeypatch
):
    # Outside a save the gradient reads the forward's records, also when
    # it is built in a graph of its own (an eager tape over a function).
    from kerasweights.recurrent import fused

    scans = []
    real = fused._scan

    def counting(*args, reverse=False, **kwargs):
        scans.append(reverse)
        return real(*args, reverse=reverse, **kwargs)

    monkeypatch.setattr(fused, "_scan", counting)
    layer = make(cls)
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 9, FEATURES)))
    call = tf.function(lambda x: layer(x, training=True))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = call(x)
    grad = tape.gradient(out, x)
    assert scans == [False, True]
    layer.fused = False
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
    np.testing.assert_allclose(grad, tape.gradient(out, x), rtol=1e-9)
