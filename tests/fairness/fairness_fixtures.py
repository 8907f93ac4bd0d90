"""Shared helpers of the fairness tests."""

import inspect

import keras
import numpy as np

import kerasweights
from kerasweights.fairness import MMDPenalty

_OTHER_CHOICE = {
    "reduction": "sum_over_batch_size",
    "kernel": "laplacian",
    "method": "to_overall",
    "agg": "mean",
    "sensitive": "sex",
    "constraint": "demographic_parity",
    # Arguments whose default None turns a feature off.
    "holdout": "held",
    "average_after": 3,
}


def non_default_kwargs(cls):
    """Constructor arguments that all differ from the defaults."""
    kwargs = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        default = param.default
        if name in ("self", "name") or param.kind is param.VAR_KEYWORD:
            continue
        if name in _OTHER_CHOICE:
            kwargs[name] = _OTHER_CHOICE[name]
        elif isinstance(default, bool):
            kwargs[name] = not default
        elif isinstance(default, int) and name.startswith("num_"):
            kwargs[name] = default + 1
        elif isinstance(default, int | float) and default is not None:
            kwargs[name] = float(default) * 1.5 + 0.25
    return kwargs


def small_predictor(n_features=4, seed=0):
    inp = keras.Input((n_features,), name="features")
    hidden = keras.layers.Dense(
        6,
        "relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
    )(inp)
    out = keras.layers.Dense(
        1,
        "sigmoid",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
    )(hidden)
    return keras.Model(inp, out, name="predictor")


def make_plugin(cls):
    """An instance of a regularizer plugin with non-default arguments."""
    kwargs = non_default_kwargs(cls)
    params = inspect.signature(cls.__init__).parameters
    if "predictor" in params:
        kwargs["predictor"] = small_predictor()
    if "penalty" in params:
        kwargs["penalty"] = MMDPenalty(kernel="laplacian", kernel_length=0.3)
    return cls(**kwargs)


def regularizer_classes():
    return [r.obj for r in kerasweights.plugins(kind="regularizer")]


def toy_data(n=64, seed=0, n_features=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features)).astype("float32")
    groups = rng.integers(0, 2, n)
    y = ((x[:, 0] + 0.8 * groups + 0.2 * rng.normal(size=n)) > 0.4).astype(
        "float32"
    )
    return x, groups, y
