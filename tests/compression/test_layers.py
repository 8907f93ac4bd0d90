"""Every registered recurrent layer prunes, clusters and quantizes.

Cases C17 and C18. One model holds every layer registered as a
``recurrent`` plugin twice, plain and inside ``Bidirectional``, on the
same input; it is compressed once (prune 50%, 8 clusters, int8 with
quantization-aware fine-tuning), then each layer is checked on its own
weights, so a plugin registered tomorrow is tested by this file.

The zoo is tiny, so TFLite keeps its matrices (under 1024 entries) in
float32; `test_int8_tflite_stores_int8_kernels` checks the int8 storage on
a layer large enough.
"""

import os

import keras
import numpy as np
import pytest

import kerasweights
from kerasweights.compression import compress
from kerasweights.compression import compressible_weights
from kerasweights.compression import convert_to_tflite
from kerasweights.compression import verify_tflite

RECORDS = kerasweights.plugins(kind="recurrent")
IDS = [record.name for record in RECORDS]
TIME, FEATURES, UNITS, CLUSTERS = 3, 3, 4, 4


def _layer(record, **kwargs):
    return record.obj(UNITS, name=f"{record.name}_plain", **kwargs)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((TIME, FEATURES), name="sequence")
    branches = []
    for record in RECORDS:
        branches.append(_layer(record)(inputs))
        wrapped = keras.layers.Bidirectional(
            record.obj(UNITS), name=f"{record.name}_bidirectional"
        )
        branches.append(wrapped(inputs))
    merged = keras.layers.Concatenate()(branches)
    outputs = keras.layers.Dense(3, activation="softmax", name="label")(merged)
    model = keras.Model(inputs, outputs)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, TIME, FEATURES)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("int32") + (x[:, -1, 1] > 1).astype(
        "int32"
    )
    result = compress(
        model,
        x,
        y,
        prune=0.5,
        cluster=CLUSTERS,
        quantize="int8",
        epochs=2,
        batch_size=16,
        measure=False,
    )
    folder = tmp_path_factory.mktemp("zoo")
    tflite_path = os.path.join(folder, "model.tflite")
    with open(tflite_path, "wb") as f:
        f.write(convert_to_tflite(result.model, quantize="int8"))
    tflite_check = verify_tflite(tflite_path, result.model, x, int8=True)
    return {
        "model": model,
        "result": result,
        "x": x,
        "tflite": tflite_path,
        "tflite_check": tflite_check,
    }


def _targets(zoo, record):
    result = zoo["result"]
    plain = f"{record.name}_plain/"
    wrapped = f"{record.name}_bidirectional/"
    targets = compressible_weights(result.model)
    return (
        [t for t in targets if t.path.startswith(plain)],
        [t for t in targets if t.path.startswith(wrapped)],
    )


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_layer_and_both_bidirectional_directions_are_pruned(zoo, record):
    plain, wrapped = _targets(zoo, record)
    assert plain, f"{record.name} has no compressible weight"
    forward = [t for t in wrapped if "/forward_" in t.path]
    backward = [t for t in wrapped if "/backward_" in t.path]
    assert len(forward) == len(backward) == len(plain)
    for target in plain + wrapped:
        value = target.variable.numpy()
        assert np.mean(value == 0) >= 0.5 - 1 / value.size, target.path
        assert zoo["result"].report["sparsity"][target.path] >= 0.49


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_kept_weights_share_few_values_on_the_int8_grid(zoo, record):
    plain, wrapped = _targets(zoo, record)
    for target in plain + wrapped:
        value = target.variable.numpy()
        for channel in range(value.shape[-1]):
            column = value[..., channel]
            peak = np.abs(column).max()
            if peak == 0:
                continue
            levels = column / (peak / 127)
            np.testing.assert_allclose(levels, np.round(levels), atol=2e-3)
        kept = np.unique(value[value != 0])
        # Clusters are shared per weight; int8 rounding per channel may
        # split a shared value across channels, never within one.
        per_channel = [
            np.unique(value[..., c][value[..., c] != 0]).size
            for c in range(value.shape[-1])
        ]
        assert max(per_channel) <= CLUSTERS, target.path
        assert kept.size >= 2, target.path


def test_quantized_zoo_serves_as_tflite_matching_keras(zoo):
    # Case C18: the quantization-aware model reaches TFLite, and a process
    # without kerasweights predicts what Keras does.
    check = zoo["tflite_check"]
    assert check["same_class"] == 1.0
    assert check["max_abs_diff"] < 0.02


def test_int8_tflite_stores_int8_kernels():
    import tensorflow as tf

    from kerasweights.recurrent import MGU

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 32))
    hidden = MGU(32)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    float_size = len(convert_to_tflite(model))
    content = convert_to_tflite(model, quantize="int8")
    interpreter = tf.lite.Interpreter(model_content=content)
    int8_entries = sum(
        int(np.prod(d["shape"]))
        for d in interpreter.get_tensor_details()
        if d["dtype"] == np.int8
    )
    # kernel 32x64 and two 32x32 recurrent kernels: 4096 entries; the
    # 32x3 readout stays float (under TFLite's 1024-entry threshold).
    assert int8_entries >= 4096
    assert len(content) < float_size - 2 * 4096


def test_compressed_zoo_round_trips_through_a_keras_file(zoo, tmp_path):
    path = tmp_path / "zoo.keras"
    model = zoo["result"].model
    model.save(path)
    loaded = kerasweights.saving.load_model(path, compile=False)
    x = zoo["x"][:8]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)),
        atol=1e-6,
    )
