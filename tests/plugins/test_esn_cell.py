"""The echo state network cell and layer against NumPy references.

The references are written from Jaeger (2001) and Jaeger et al. (2007):
the reservoir is the initializer's matrix, thinned and rescaled to the
requested spectral radius; the state follows the leaky-integrator update
``h_t = (1 - a) h_{t-1} + a f(x_t W_in + h_{t-1} W + b)``.
"""

import doctest
import inspect

import keras
import numpy as np
import pytest

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.recurrent.base import draw

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def reference_states(x, kernel, reservoir, bias, leaky, activation, h0=None):
    """Leaky-integrator ESN states, one step at a time, in float64."""
    x = np.asarray(x, np.float64)
    batch, steps, _ = x.shape
    h = np.zeros((batch, reservoir.shape[0])) if h0 is None else h0
    f = ACTIVATIONS[activation]
    states = []
    for t in range(steps):
        total = x[:, t] @ kernel + h @ reservoir
        if bias is not None:
            total = total + bias
        h = (1.0 - leaky) * h + leaky * f(total)
        states.append(h)
    return np.stack(states, axis=1)


def spectral_radius(matrix):
    return np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, np.float64))))


def weights(layer):
    cell = layer.cell
    bias = None if cell.bias is None else np.asarray(cell.bias, np.float64)
    return (
        np.asarray(cell.kernel, np.float64),
        np.asarray(cell.recurrent_kernel, np.float64),
        bias,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"leaky": 1.0, "activation": "tanh", "use_bias": True},
        {"leaky": 0.3, "activation": "tanh", "use_bias": False},
        {"leaky": 0.6, "activation": "relu", "use_bias": True},
    ],
    ids=["jaeger2001", "leaky-no-bias", "leaky-relu"],
)
def test_states_match_numpy_reference_step_by_step(esn_module, options):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 12, 5)).astype("float32")
    layer = esn_module.ESN(
        40,
        connectivity=0.2,
        spectral_radius=0.8,
        input_scaling=0.5,
        return_sequences=True,
        seed=11,
        **options,
    )

    got = np.asarray(layer(x))
    kernel, reservoir, bias = weights(layer)
    want = reference_states(
        x, kernel, reservoir, bias, options["leaky"], options["activation"]
    )

    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_last_state_and_go_backwards_match_reference(esn_module):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    layer = esn_module.ESN(
        16, leaky=0.5, go_backwards=True, return_state=True, seed=2
    )

    output, state = layer(x)
    kernel, reservoir, bias = weights(layer)
    want = reference_states(x[:, ::-1], kernel, reservoir, bias, 0.5, "tanh")

    np.testing.assert_allclose(np.asarray(output), want[:, -1], atol=1e-5)
    np.testing.assert_allclose(np.asarray(state), want[:, -1], atol=1e-5)


@pytest.mark.parametrize("connectivity", [0.05, 0.3, 1.0])
@pytest.mark.parametrize("radius", [0.5, 0.95, 1.25])
def test_reservoir_is_thinned_and_scaled_to_the_spectral_radius(
    esn_module, connectivity, radius
):
    units = 120
    cell = esn_module.ESNCell(
        units, connectivity=connectivity, spectral_radius=radius, seed=5
    )
    cell.build((None, 4))

    reservoir = np.asarray(cell.recurrent_kernel, np.float64)
    # Each weight and direction draws with a seed derived from the cell's.
    drawn = np.asarray(
        draw(
            cell.recurrent_initializer,
            (units, units),
            "float32",
            "recurrent_kernel",
            cell.direction,
        ),
        np.float64,
    )
    kept = reservoir != 0.0

    # Thinning keeps a fraction `connectivity` of the other entries
    # (6 sigma) and one incoming connection per neuron.
    assert kept.any(axis=0).all()
    others = kept.sum() - units
    share = others / (units * (units - 1))
    sigma = np.sqrt(connectivity * (1 - connectivity) / (units * (units - 1)))
    assert abs(share - connectivity) <= 6 * sigma + 1e-12

    # What is kept is the drawn matrix times one factor, the one that moves
    # the thinned matrix's spectral radius to the target.
    thinned = np.where(kept, drawn, 0.0)
    factor = radius / spectral_radius(thinned)
    np.testing.assert_allclose(reservoir[kept], factor * drawn[kept], rtol=1e-5)
    np.testing.assert_allclose(spectral_radius(reservoir), radius, rtol=1e-5)


@pytest.mark.parametrize("units", [1, 2, 3, 5, 8])
def test_small_sparse_reservoirs_still_reach_the_spectral_radius(
    esn_module, units
):
    # A reservoir thinned to 1% would often keep no cycle at all (spectral
    # radius 0); the permutation connections guarantee one.
    for seed in range(4):
        cell = esn_module.ESNCell(units, connectivity=0.01, seed=seed)
        cell.build((None, 2))
        reservoir = np.asarray(cell.recurrent_kernel, np.float64)
        np.testing.assert_allclose(spectral_radius(reservoir), 0.9, rtol=1e-5)
        assert (reservoir != 0).any(axis=0).all()


def test_use_norm2_scales_the_two_norm_and_bounds_the_radius(esn_module):
    cell = esn_module.ESNCell(
        80, connectivity=0.2, spectral_radius=0.9, use_norm2=True, seed=4
    )
    cell.build((None, 3))

    reservoir = np.asarray(cell.recurrent_kernel, np.float64)

    np.testing.assert_allclose(np.linalg.norm(reservoir, 2), 0.9, rtol=1e-5)
    assert spectral_radius(reservoir) < 0.9


def test_input_weights_are_the_initializer_times_input_scaling(esn_module):
    cell = esn_module.ESNCell(
        10,
        input_scaling=0.25,
        kernel_initializer=keras.initializers.RandomNormal(seed=3),
        seed=1,
    )
    cell.build((None, 6))

    # The user's own initializer object may be shared with other layers, so
    # it draws with a seed derived per weight and layer (case C12).
    drawn = draw(
        cell.kernel_initializer, (6, 10), "float32", "kernel", cell.weight_salt
    )

    np.testing.assert_allclose(
        np.asarray(cell.kernel), 0.25 * np.asarray(drawn), rtol=1e-6
    )


def test_contracting_reservoir_forgets_its_initial_state(esn_module):
    # With ||W||_2 = rho < 1 and a 1-Lipschitz activation, two runs on the
    # same input from different initial states approach each other at least
    # as fast as ((1 - a) + a * rho) ** t: the echo state property.
    rho, leaky = 0.9, 0.7
    layer = esn_module.ESN(
        50,
        spectral_radius=rho,
        use_norm2=True,
        leaky=leaky,
        return_sequences=True,
        seed=9,
    )
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 40, 3)).astype("float32")
    h0 = rng.uniform(-1, 1, size=(1, 50)).astype("float32")

    from_zero = np.asarray(layer(x))
    from_h0 = np.asarray(layer(x, initial_state=[h0]))

    gap = np.linalg.norm(from_zero - from_h0, axis=-1)[0]
    bound = ((1 - leaky) + leaky * rho) ** np.arange(1, 41)
    assert np.all(gap <= bound * np.linalg.norm(h0) + 1e-5)
    assert gap[-1] < 1e-3 * gap[0]


def test_reservoir_weights_are_not_trainable_only_the_readout(esn_module):
    model = keras.Sequential(
        [
            keras.Input((6, 4)),
            esn_module.ESN(20, seed=0),
            keras.layers.Dense(3),
        ]
    )
    esn = model.layers[0]
    before = [np.asarray(w) for w in esn.weights]
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(
        rng.normal(size=(16, 6, 4)),
        rng.normal(size=(16, 3)),
        epochs=2,
        verbose=0,
    )

    assert esn.trainable_weights == []
    assert len(esn.non_trainable_weights) == 3
    assert {id(w) for w in model.trainable_weights} == {
        id(w) for w in model.layers[1].weights
    }
    for old, new in zip(before, esn.weights, strict=True):
        np.testing.assert_array_equal(old, np.asarray(new))


def test_same_seed_same_reservoir_other_seed_other(esn_module):
    def build(seed):
        layer = esn_module.ESN(30, seed=seed)
        layer.build((None, 5, 2))
        return [np.asarray(w) for w in layer.weights]

    first, again, other = build(7), build(7), build(8)

    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first, other, strict=True):
        assert not np.array_equal(a, b)


def test_unseeded_reservoir_follows_keras_global_seed(esn_module):
    def build():
        layer = esn_module.ESN(20)
        layer.build((None, 5, 2))
        return [np.asarray(w) for w in layer.weights]

    keras.utils.set_random_seed(123)
    first = build()
    keras.utils.set_random_seed(123)
    again = build()
    other = build()

    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_seeded_cell_gives_seedless_user_initializers_a_seed(esn_module):
    layer = esn_module.ESN(
        12, kernel_initializer="glorot_uniform", recurrent_initializer=None
    )
    assert layer.kernel_initializer.get_config()["seed"] is None

    seeded = [esn_module.ESN(12, kernel_initializer="glorot_uniform", seed=3)]
    seeded.append(
        esn_module.ESN(12, kernel_initializer="glorot_uniform", seed=3)
    )
    for layer in seeded:
        layer.build((None, 4, 2))

    np.testing.assert_array_equal(
        np.asarray(seeded[0].cell.kernel), np.asarray(seeded[1].cell.kernel)
    )
    # A seed the user gave the initializer is kept.
    own = keras.initializers.GlorotUniform(seed=99)
    layer = esn_module.ESN(12, kernel_initializer=own, seed=3)
    assert layer.kernel_initializer.get_config()["seed"] == 99


@pytest.mark.parametrize("name", ["ESN", "ESNCell"])
def test_get_config_has_every_constructor_argument(esn_module, name):
    cls = getattr(esn_module, name)
    params = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind is not p.VAR_KEYWORD
    ]
    obj = cls(
        17,
        connectivity=0.4,
        leaky=0.2,
        spectral_radius=1.1,
        use_norm2=True,
        input_scaling=0.3,
        use_bias=False,
        activation="relu",
        kernel_initializer=keras.initializers.Orthogonal(seed=1),
        recurrent_initializer="glorot_normal",
        bias_initializer="zeros",
        seed=21,
    )

    config = obj.get_config()

    missing = [p.name for p in params if p.name not in config]
    assert missing == []
    assert config["units"] == 17
    assert config["leaky"] == 0.2
    assert config["seed"] == 21
    assert config["use_norm2"] is True
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config


def test_from_config_rebuilds_the_same_layer_numerically(esn_module):
    layer = esn_module.ESN(
        25, leaky=0.4, connectivity=0.3, return_sequences=True, seed=8
    )
    x = np.random.default_rng(3).normal(size=(2, 7, 3)).astype("float32")

    rebuilt = esn_module.ESN.from_config(layer.get_config())

    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(rebuilt(x)))


def test_registered_under_its_own_package(esn_module):
    assert keras.saving.get_registered_name(esn_module.ESN) == (
        "kerasweights_esn>ESN"
    )
    assert keras.saving.get_registered_name(esn_module.ESNCell) == (
        "kerasweights_esn>ESNCell"
    )
    assert esn_module.ESN.plugin_kind == "recurrent"
    assert esn_module.ESN.cell_class is esn_module.ESNCell


def test_tuner_helper_construction_form(esn_module):
    # The tuning helper builds recurrent plugins as
    # cls(units, return_sequences=..., kernel_initializer=...,
    # recurrent_initializer=...).
    layer = esn_module.ESN(
        32,
        return_sequences=True,
        kernel_initializer=keras.initializers.HeNormal(seed=0),
        recurrent_initializer=keras.initializers.Orthogonal(seed=0),
    )
    out = layer(np.ones((2, 8, 8), "float32"))
    assert tuple(out.shape) == (2, 8, 32)
    np.testing.assert_allclose(
        spectral_radius(layer.cell.recurrent_kernel), 0.9, rtol=1e-5
    )


def test_tunable_arguments_draw_prefixed_hyperparameters(esn_module):
    keras_tuner = pytest.importorskip("keras_tuner")
    hp = keras_tuner.HyperParameters()

    kwargs = esn_module.ESN.tunable_arguments(hp)

    assert set(kwargs) == {"spectral_radius", "leaky"}
    assert set(hp.values) == {"esn_spectral_radius", "esn_leaky"}
    layer = esn_module.ESN(8, **kwargs)
    assert layer.spectral_radius == hp.values["esn_spectral_radius"]
    assert layer.leaky == hp.values["esn_leaky"]


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        ({"units": -3}, InvalidArgumentError, "Received: units=-3"),
        ({"units": 2.5}, InvalidTypeError, "Received: units=2.5"),
        ({"units": True}, InvalidTypeError, "Received: units=True"),
        (
            {"units": 4, "connectivity": 0.0},
            InvalidArgumentError,
            "Received: connectivity=0.0",
        ),
        (
            {"units": 4, "connectivity": 1.5},
            InvalidArgumentError,
            "Received: connectivity=1.5",
        ),
        ({"units": 4, "leaky": 0}, InvalidArgumentError, "Received: leaky=0"),
        (
            {"units": 4, "spectral_radius": -1},
            InvalidArgumentError,
            "Received: spectral_radius=-1",
        ),
        (
            {"units": 4, "spectral_radius": float("nan")},
            InvalidArgumentError,
            "Received: spectral_radius=nan",
        ),
        (
            {"units": 4, "input_scaling": "big"},
            InvalidTypeError,
            "Received: input_scaling='big'",
        ),
        (
            {"units": 4, "use_norm2": "yes"},
            InvalidTypeError,
            "Received: use_norm2='yes'",
        ),
        ({"units": 4, "seed": -1}, InvalidArgumentError, "Received: seed=-1"),
        (
            {"units": 4, "activation": "no_such_fn"},
            InvalidArgumentError,
            "Received: activation='no_such_fn'",
        ),
        (
            {"units": 4, "kernel_initializer": "no_such_init"},
            InvalidArgumentError,
            "Received: kernel_initializer='no_such_init'",
        ),
    ],
)
def test_bad_arguments_raise_one_clear_error(esn_module, kwargs, error, text):
    with pytest.raises(error) as info:
        esn_module.ESN(**kwargs)
    assert text in str(info.value)
    assert str(info.value).startswith("`")


def test_degenerate_reservoir_is_refused_at_build(esn_module):
    layer = esn_module.ESN(6, recurrent_initializer="zeros", seed=0)
    with pytest.raises(InvalidArgumentError, match="numerically zero"):
        layer.build((None, 3, 2))


def test_docstring_examples_run(esn_module):
    import kerasweights_esn.reservoir as reservoir

    result = doctest.testmod(reservoir, optionflags=doctest.ELLIPSIS)

    assert result.attempted >= 8
    assert result.failed == 0


def test_zero_output_for_mask_only_zeroes_returned_sequences(esn_module):
    # Case C13: the flag must not zero the single final output of a sample
    # whose last steps are masked.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    mask = np.array([[True] * 6, [True] * 3 + [False] * 3])
    plain = esn_module.ESN(8, seed=3)
    flagged = esn_module.ESN(8, seed=3, zero_output_for_mask=True)
    sequence = esn_module.ESN(
        8, seed=3, zero_output_for_mask=True, return_sequences=True
    )

    want = reference_states(x[1:, :3], *weights_after(plain, x), 1.0, "tanh")
    got_plain = np.asarray(plain(x, mask=mask))
    got_flagged = np.asarray(flagged(x, mask=mask))
    got_sequence = np.asarray(sequence(x, mask=mask))

    np.testing.assert_allclose(got_plain[1], want[0, -1], atol=1e-5)
    np.testing.assert_allclose(got_flagged, got_plain, atol=1e-6)
    assert not np.any(got_sequence[1, 3:])
    np.testing.assert_allclose(got_sequence[1, 2], want[0, -1], atol=1e-5)
    assert flagged.get_config()["zero_output_for_mask"] is True


def weights_after(layer, x):
    layer.build(x.shape)
    return weights(layer)


def test_stateful_wrong_batch_raises_and_keeps_the_states(esn_module):
    # Case C02.
    x = np.random.default_rng(5).normal(size=(4, 3, 2)).astype("float32")
    layer = esn_module.ESN(6, stateful=True, seed=1)
    layer(x)
    before = [np.asarray(s).copy() for s in layer.states]

    with pytest.raises(InvalidArgumentError) as info:
        layer(x[:1])

    assert isinstance(info.value, ValueError)
    assert "Expected batch size: 4" in str(info.value)
    assert "Received batch size: 1" in str(info.value)
    for old, new in zip(before, layer.states, strict=True):
        np.testing.assert_array_equal(old, np.asarray(new))


def test_return_state_gives_a_list_of_one_state(esn_module):
    x = np.ones((2, 4, 3), "float32")
    layer = esn_module.ESN(5, return_state=True, seed=0)

    output, *states = layer(x)

    assert layer.cell.state_size == [5]
    assert len(states) == 1
    np.testing.assert_array_equal(np.asarray(output), np.asarray(states[0]))
