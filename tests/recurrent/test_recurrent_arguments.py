"""Bad constructor arguments raise one clear error, for every plugin."""

import pytest
from conftest import IDS
from conftest import LAYERS

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent import JANET
from kerasweights.recurrent import MinGRU


def _ours(cls):
    return cls.__module__.startswith("kerasweights.")


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
@pytest.mark.parametrize("units", [-3, 0, 2.5, True])
def test_units_must_be_positive_integer(cls, units):
    # Ours raise our error type; a third-party layer may say TypeError.
    expected = InvalidArgumentError if _ours(cls) else (ValueError, TypeError)
    with pytest.raises(expected) as info:
        cls(units)
    assert f"units={units!r}" in str(info.value)


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_dropout_must_be_a_rate(cls):
    if "dropout" not in cls.cell_arguments():
        pytest.skip(f"{cls.__name__} takes no `dropout` argument")
    with pytest.raises(InvalidArgumentError, match="dropout=1.5"):
        cls(3, dropout=1.5)
    with pytest.raises(InvalidTypeError, match="dropout='x'"):
        cls(3, dropout="x")
    with pytest.raises(InvalidTypeError, match="seed=1.5"):
        cls(3, seed=1.5)


@pytest.mark.parametrize("cls", LAYERS, ids=IDS)
def test_unknown_argument_is_rejected(cls):
    # Keras' own base classes reject them with ValueError.
    expected = TypeError if _ours(cls) else (TypeError, ValueError)
    with pytest.raises(expected, match="no_such_argument"):
        cls(3, no_such_argument=1)


def test_cell_specific_arguments():
    with pytest.raises(InvalidArgumentError, match="chrono_max_length=2"):
        JANET(3, chrono_max_length=2)
    with pytest.raises(InvalidArgumentError, match="scan='fast'"):
        MinGRU(3, scan="fast")


OURS = [cls for cls in LAYERS if _ours(cls)]


@pytest.mark.parametrize("cls", OURS, ids=lambda c: c.__name__)
def test_regularizers_add_the_right_losses(cls):
    import keras
    import numpy as np

    args = cls.cell_arguments()
    roles = {
        "kernel": ["kernel"],
        "recurrent": [
            "recurrent_kernel",
            "recurrent_kernel_f",
            "recurrent_kernel_h",
        ],
        "bias": ["bias"],
    }
    kwargs = {
        f"{role}_regularizer": keras.regularizers.L2(0.5)
        for role in roles
        if f"{role}_regularizer" in args
    }
    layer = cls(3, activity_regularizer=keras.regularizers.L1(0.25), **kwargs)
    x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x))
    cell = layer.cell
    want = 0.0
    for role, names in roles.items():
        if f"{role}_regularizer" not in kwargs:
            continue
        for name in names:
            weight = getattr(cell, name, None)
            if weight is not None:
                want += 0.5 * float(np.sum(np.square(weight.numpy())))
    # Keras divides an activity penalty by the batch size.
    want += 0.25 * float(np.sum(np.abs(out))) / x.shape[0]
    got = sum(float(keras.ops.convert_to_numpy(v)) for v in layer.losses)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert "recurrent_regularizer" in kwargs or not any(
        getattr(cell, n, None) is not None for n in roles["recurrent"]
    )


@pytest.mark.parametrize("cls", OURS, ids=lambda c: c.__name__)
def test_constraints_hold_after_a_training_step(cls):
    import keras
    import numpy as np

    layer = cls(
        3,
        kernel_constraint="non_neg",
        bias_constraint=keras.constraints.MinMaxNorm(0.0, 0.5, axis=0),
    )
    model = keras.Sequential(
        [keras.Input((4, 5)), layer, keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(1.0), "mse")
    rng = np.random.default_rng(1)
    model.train_on_batch(
        rng.normal(size=(8, 4, 5)).astype("float32"),
        rng.normal(size=(8, 1)).astype("float32"),
    )
    assert layer.cell.kernel.numpy().min() >= 0.0
    assert np.abs(layer.cell.bias.numpy()).max() <= 0.5 + 1e-6


def test_max_abs_value_clips_and_round_trips():
    import keras
    import numpy as np

    from kerasweights.recurrent import IndRNN
    from kerasweights.recurrent import MaxAbsValue

    clip = MaxAbsValue(1.5)
    w = np.array([-3.0, -1.0, 0.5, 2.0], "float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(clip(w)), [-1.5, -1.0, 0.5, 1.5]
    )
    layer = IndRNN(3, recurrent_constraint=clip)
    again = IndRNN.from_config(layer.get_config())
    assert again.cell.recurrent_constraint.limit == 1.5
    with pytest.raises(InvalidArgumentError, match="limit=0"):
        MaxAbsValue(0)
    with pytest.raises(InvalidTypeError, match="limit='x'"):
        MaxAbsValue("x")
