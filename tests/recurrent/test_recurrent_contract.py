"""The Keras RNN contract, checked for every registered recurrent plugin."""

import inspect

import keras
import numpy as np
import pytest
from conftest import FEATURES
from conftest import IDS
from conftest import LAYERS
from conftest import UNITS
from conftest import run
from conftest import seeded

from kerasweights.errors import InvalidArgumentError

ATOL = 2e-5

pytestmark = pytest.mark.parametrize("cls", LAYERS, ids=IDS)
NAMES = dict(zip(LAYERS, IDS, strict=True))


def twin(cls, layer, **kwargs):
    """A layer of the same class with ``layer``'s weights."""
    other = seeded(cls, init_seed=99, **kwargs)
    other.build((2, None, FEATURES))
    other.set_weights(layer.get_weights())
    return other


def built(cls, x, **kwargs):
    layer = seeded(cls, **kwargs)
    layer(x)
    return layer


def test_tuning_constructor(cls, sequences):
    for return_sequences in (True, False):
        layer = cls(
            5,
            return_sequences=return_sequences,
            kernel_initializer="he_normal",
            recurrent_initializer="glorot_uniform",
        )
        shape = (2, 6, 5) if return_sequences else (2, 5)
        assert layer(sequences).shape == shape


def test_tunable_arguments_are_prefixed(cls):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    extra = cls.tunable_arguments(hp)
    layer = cls(3, return_sequences=True, **extra)
    assert isinstance(layer, cls)
    assert hp.values, "tunable_arguments drew no hyperparameter"
    prefix = NAMES[cls]
    for name in hp.values:
        assert name.startswith(prefix + "_"), name


def test_return_sequences_and_state(cls, sequences):
    layer = built(cls, sequences, return_sequences=True, return_state=True)
    outputs, *states = run(layer, sequences)
    assert outputs.shape == (2, 6, UNITS)
    assert len(states) == len(layer.cell.state_size)
    for state, size in zip(states, layer.cell.state_size, strict=True):
        assert state.shape == (2, size)
    last = twin(cls, layer)
    np.testing.assert_allclose(run(last, sequences), outputs[:, -1], atol=ATOL)
    assert np.abs(outputs[:, 0] - outputs[:, -1]).max() > 1e-4


def test_go_backwards(cls, sequences):
    forward = built(cls, sequences, return_sequences=True)
    backward = twin(cls, forward, return_sequences=True, go_backwards=True)
    expected = run(forward, sequences[:, ::-1])
    np.testing.assert_allclose(run(backward, sequences), expected, atol=ATOL)
    assert np.abs(run(forward, sequences) - expected).max() > 1e-4


def test_stateful_and_reset_state(cls, sequences):
    full = built(cls, sequences, return_sequences=True)
    stateful = twin(cls, full, return_sequences=True, stateful=True)
    expected = run(full, sequences)
    first = run(stateful, sequences[:, :3])
    second = run(stateful, sequences[:, 3:])
    np.testing.assert_allclose(
        np.concatenate([first, second], 1), expected, atol=ATOL
    )
    stateful.reset_state()
    np.testing.assert_allclose(
        run(stateful, sequences[:, :3]), expected[:, :3], atol=ATOL
    )


def test_initial_state_and_get_initial_state(cls, sequences):
    layer = built(cls, sequences, return_state=True)
    zeros = layer.get_initial_state(2)
    assert len(zeros) == len(layer.cell.state_size)
    for state, size in zip(zeros, layer.cell.state_size, strict=True):
        assert tuple(state.shape) == (2, size)
        assert not np.any(keras.ops.convert_to_numpy(state))
    full = run(layer, sequences)
    _, *states = run(layer, sequences[:, :2])
    resumed = run(layer, sequences[:, 2:], initial_state=states)
    for got, want in zip(resumed, full, strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL)
    passed_zeros = run(layer, sequences, initial_state=zeros)
    np.testing.assert_allclose(passed_zeros[0], full[0], atol=ATOL)


def test_masked_batch_equals_truncated(cls, sequences):
    lengths = [6, 3]
    padded = sequences.copy()
    padded[1, 3:] = 0.0
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    layer = built(cls, sequences, return_state=True)
    out, *states = run(layer, padded, mask=mask)
    short, *short_states = run(layer, sequences[1:2, :3])
    np.testing.assert_allclose(out[1:2], short, atol=ATOL)
    for got, want in zip(states, short_states, strict=True):
        np.testing.assert_allclose(got[1:2], want, atol=ATOL)
    full = run(layer, sequences[0:1])
    np.testing.assert_allclose(out[0:1], full[0], atol=ATOL)

    model_in = keras.Input((6, FEATURES))
    masked = keras.layers.Masking(0.0)(model_in)
    sequence_layer = twin(cls, layer, return_sequences=True)
    model = keras.Model(model_in, sequence_layer(masked))
    seq = keras.ops.convert_to_numpy(model(padded))
    np.testing.assert_allclose(
        seq[1, :3], run(sequence_layer, padded[1:2, :3])[0], atol=ATOL
    )
    # Masked steps repeat the last valid output.
    np.testing.assert_allclose(
        seq[1, 3:], np.repeat(seq[1, 2:3], 3, 0), atol=ATOL
    )


@pytest.mark.parametrize("go_backwards", [False, True])
def test_zero_output_for_mask_only_affects_sequences(
    cls, sequences, go_backwards
):
    # Case C13: the flag zeroes masked steps of a returned sequence, never
    # the final output.
    x = sequences.copy()
    mask = np.array([[True] * 6, [True] * 3 + [False] * 3])
    if go_backwards:
        x = x[:, ::-1].copy()
        mask = mask[:, ::-1].copy()
    x[~mask] = 0.0
    # A fixed name: the derived weight seeds depend on it (case C12), and an
    # automatic name would depend on how many layers the session made.
    plain = built(
        cls, x, go_backwards=go_backwards, name=f"probe_{go_backwards}"
    )
    flagged = twin(
        cls, plain, go_backwards=go_backwards, zero_output_for_mask=True
    )
    expected = run(plain, x, mask=mask)
    np.testing.assert_allclose(run(flagged, x, mask=mask), expected, atol=ATOL)
    assert np.abs(expected[1]).max() > 1e-3

    seq_layer = twin(
        cls,
        plain,
        go_backwards=go_backwards,
        zero_output_for_mask=True,
        return_sequences=True,
    )
    seq = run(seq_layer, x, mask=mask)
    unflagged = twin(
        cls, plain, go_backwards=go_backwards, return_sequences=True
    )
    reference = run(unflagged, x, mask=mask)
    processed_mask = mask[:, ::-1] if go_backwards else mask
    assert not np.any(seq[~processed_mask])
    assert np.any(reference[~processed_mask])
    np.testing.assert_allclose(
        seq[processed_mask], reference[processed_mask], atol=ATOL
    )


def test_dropout_with_seed(cls, sequences):
    if "dropout" not in cls.cell_arguments():
        pytest.skip(f"{cls.__name__} takes no `dropout` argument")
    kwargs = {"dropout": 0.4, "seed": 3}
    if "recurrent_dropout" in cls.cell_arguments():
        kwargs["recurrent_dropout"] = 0.4
    plain = built(cls, sequences)
    a = twin(cls, plain, **kwargs)
    b = twin(cls, plain, **kwargs)
    train_a = run(a, sequences, training=True)
    train_b = run(b, sequences, training=True)
    np.testing.assert_allclose(train_a, train_b, atol=ATOL)
    assert np.abs(train_a - run(plain, sequences)).max() > 1e-4
    np.testing.assert_allclose(
        run(a, sequences, training=False), run(plain, sequences), atol=ATOL
    )
    # The masks change from call to call.
    assert np.abs(run(a, sequences, training=True) - train_a).max() > 1e-4


def test_unroll_matches_loop(cls, sequences):
    layer = built(cls, sequences, return_sequences=True)
    unrolled = twin(cls, layer, return_sequences=True, unroll=True)
    np.testing.assert_allclose(
        run(unrolled, sequences), run(layer, sequences), atol=ATOL
    )


def test_stateful_wrong_batch_raises_before_touching_state(cls):
    # Case C02.
    x = np.random.default_rng(1).normal(size=(4, 3, FEATURES))
    layer = seeded(cls, stateful=True)
    layer(x.astype("float32"))
    before = [keras.ops.convert_to_numpy(s).copy() for s in layer.states]
    assert all(len(np.unique(b.round(6), axis=0)) == 4 for b in before)
    with pytest.raises(InvalidArgumentError) as info:
        layer(x[:1].astype("float32"))
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "Expected batch size: 4" in message
    assert "Received batch size: 1" in message
    for old, new in zip(before, layer.states, strict=True):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))


def _distinct_blocks(weights, units):
    """Every non-constant weight and every gate block of it."""
    blocks = []
    for weight in weights:
        value = keras.ops.convert_to_numpy(weight)
        if value.size == 0 or np.ptp(value) == 0:
            continue
        blocks.append((weight.path, value))
        if value.shape[-1] > units and value.shape[-1] % units == 0:
            for i in range(value.shape[-1] // units):
                part = value[..., i * units : (i + 1) * units]
                if np.ptp(part) > 0:
                    blocks.append((f"{weight.path}[{i}]", part))
    return blocks


def test_no_two_weights_start_identical(cls):
    # Case C12: one seeded initializer object shared by every weight, two
    # layers and two directions.
    shared = keras.initializers.RandomUniform(-1, 1, seed=5)
    kwargs = {"kernel_initializer": shared, "recurrent_initializer": shared}
    if "bias_initializer" in cls.cell_arguments():
        kwargs["bias_initializer"] = shared
    inputs = keras.Input((5, UNITS))
    y = cls(UNITS, return_sequences=True, **kwargs)(inputs)
    y = cls(UNITS, return_sequences=True, **kwargs)(y)
    y = keras.layers.Bidirectional(cls(UNITS, **kwargs))(y)
    model = keras.Model(inputs, y)
    # A reservoir layer (an echo-state network) trains none of its weights.
    weights = model.trainable_weights or [
        w for w in model.weights if "seed_generator" not in w.path
    ]
    blocks = _distinct_blocks(weights, UNITS)
    assert len(blocks) >= 6
    for i, (name_a, a) in enumerate(blocks):
        for name_b, b in blocks[i + 1 :]:
            if a.shape == b.shape:
                assert not np.allclose(a, b), (name_a, name_b)


def test_get_config_has_every_argument(cls):
    params = set(inspect.signature(cls.__init__).parameters)
    params |= set(cls.cell_arguments())
    params -= {"self", "kwargs"}
    layer = cls(3)
    config = layer.get_config()
    assert params <= set(config), params - set(config)
    again = cls.from_config(config)
    assert again.get_config() == config


def test_cell_in_keras_wrappers(cls, sequences):
    cell_class = cls.cell_class
    stacked = keras.layers.RNN(
        keras.layers.StackedRNNCells([cell_class(3), cell_class(2)])
    )
    assert stacked(sequences).shape == (2, 2)
    bidir = keras.layers.Bidirectional(cls(3, return_sequences=True))
    assert bidir(sequences).shape == (2, 6, 6)
    wrapped = keras.layers.RNN(cell_class(3), return_sequences=True)
    assert wrapped(sequences).shape == (2, 6, 3)


def test_keras_rnn_wrapper_matches_layer(cls, sequences):
    layer = built(cls, sequences, return_sequences=True)
    wrapped = keras.layers.RNN(cls.cell_class(UNITS), return_sequences=True)
    wrapped.build(sequences.shape)
    wrapped.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        run(wrapped, sequences), run(layer, sequences), atol=ATOL
    )


def test_jit_compiled_training_step(cls, sequences):
    import tensorflow as tf

    kwargs = {"seed": 1}
    if "dropout" in cls.cell_arguments():
        kwargs["dropout"] = 0.1
    layer = built(cls, sequences, **kwargs)

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True) ** 2)
        return loss, tape.gradient(loss, layer.trainable_weights)

    loss, grads = step(tf.constant(sequences))
    assert np.isfinite(loss.numpy())
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
