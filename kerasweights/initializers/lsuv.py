"""LSUV: layer-sequential unit-variance initialization on one batch.

Two parts, as in the paper: the `LSUV` initializer plugin draws the
orthogonal pre-initialization, and `lsuv_initialize` (or `LSUVCallback` at
the start of training) runs one batch through the model and rescales each
layer until its output has the target variance.
"""

import dataclasses
import math
import numbers
import warnings

import keras
import numpy as np

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import KerasWeightsWarning
from kerasweights.initializers import base
from kerasweights.initializers.orthogonal import OrthogonalGain
from kerasweights.initializers.orthogonal import semi_orthogonal

__all__ = [
    "LSUV",
    "LSUVCallback",
    "LSUVLayerResult",
    "LSUVReport",
    "LSUVWarning",
    "lsuv_initialize",
]


class LSUVWarning(KerasWeightsWarning):
    """LSUV met layers it could not rescale, or did not converge."""


@keras.saving.register_keras_serializable(package="kerasweights")
class LSUV(base.SeededInitializer):
    """LSUV's first step: an orthogonal kernel, to be rescaled on data.

    LSUV (Mishkin & Matas 2016) has two steps. This initializer is the
    first one only: it draws a Haar-random (semi-)orthogonal kernel, like
    ``OrthogonalGain(gain=1)`` (the kernel flattened to
    ``(prod(shape[:-1]), shape[-1])``; orthonormal columns when that has
    at least as many rows as columns, orthonormal rows otherwise). The
    second step needs data, which an initializer never sees: after
    building the model, run `lsuv_initialize` on a batch (or pass
    `LSUVCallback` to ``fit``). It rescales each layer until its output
    has unit variance. With ``only_lsuv=True`` it handles only the layers
    whose kernel initializer is an ``LSUV``, and keeps the kernels this
    initializer drew (no second orthogonal draw).

    On its own, without that pass, a layer started by ``LSUV`` is only
    orthogonal: nothing scales it to the data. Keras Tuner searches of
    kerasweights list ``LSUV`` among the dense and conv initializers;
    they build the model with it and do not run the data pass.

    Args:
        seed: ``None`` or a non-negative int; see docs/initializers.md.

    Raises:
        InvalidArgumentError: A shape of rank below 2 (a bias).

    Example:

    >>> import keras, numpy as np
    >>> from kerasweights.initializers import lsuv_initialize
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(16, activation="tanh",
    ...                        kernel_initializer="kerasweights>LSUV"),
    ...     keras.layers.Dense(4)])
    >>> x = np.random.default_rng(0).normal(size=(128, 8)).astype("float32")
    >>> report = lsuv_initialize(model, x, only_lsuv=True)
    >>> [r.status for r in report.layers]
    ['converged', 'skipped']

    Reference:
        Mishkin & Matas, "All you need is a good init", ICLR 2016.
    """

    plugin_kind = "initializer"
    plugin_name = "lsuv"
    plugin_targets = ("dense_kernel", "conv_kernel")

    def __call__(self, shape, dtype=None):
        shape = base.check_shape(shape, "LSUV")
        dtype = base.float_dtype(dtype, "LSUV")
        if len(shape) < 2:
            raise InvalidArgumentError(
                "LSUV initializes kernels of rank 2 or more, such as a Dense "
                f"kernel (in, out). Received: shape={shape}"
            )
        rows = math.prod(shape[:-1])
        matrix = semi_orthogonal(rows, shape[-1], self.next_seed())
        return keras.ops.cast(keras.ops.reshape(matrix, shape), dtype)


@dataclasses.dataclass(frozen=True)
class LSUVLayerResult:
    """What LSUV did to one layer.

    Attributes:
        name: The layer's name.
        layer_class: The layer's class name.
        status: ``"converged"`` (variance within tolerance),
            ``"max_iterations"`` (still outside it after the last
            iteration), ``"zero_variance"`` (the layer's output is constant
            on the batch, so no scale can help), ``"not_called"`` (the
            forward pass never reached it), ``"unsupported"``, or
            ``"skipped"`` (left alone because ``only_lsuv=True`` and its
            kernel initializer is not `LSUV`).
        kind: ``"pre_activation"`` for Dense/Conv-like layers (the variance
            of the layer output before its activation), ``"input_projection"``
            for recurrent layers (the variance of ``x @ kernel``), or
            ``""`` for unsupported layers.
        scale: The total factor the kernel was multiplied by (after the
            orthogonal start, when it was used).
        variance_before: The variance measured before any rescaling.
        variance: The variance reached.
        iterations: The number of rescaling steps taken.
        reason: Why a layer is unsupported or skipped, empty otherwise.
    """

    name: str
    layer_class: str
    status: str
    kind: str = ""
    scale: float = 1.0
    variance_before: float = float("nan")
    variance: float = float("nan")
    iterations: int = 0
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class LSUVReport:
    """The per-layer results of `lsuv_initialize`, in execution order.

    Attributes:
        layers: A tuple of `LSUVLayerResult`, the handled layers in the
            order the forward pass reached them, then the others.
        target_variance: The variance LSUV aimed at.
        tolerance: The accepted absolute distance to the target.
    """

    layers: tuple
    target_variance: float
    tolerance: float

    @property
    def unsupported(self):
        """The results of the layers LSUV could not handle."""
        return tuple(r for r in self.layers if r.status == "unsupported")

    @property
    def all_converged(self):
        """Whether every handled layer reached the tolerance."""
        return all(
            r.status == "converged"
            for r in self.layers
            if r.status not in ("unsupported", "skipped")
        )

    def to_markdown(self):
        """The report as a Markdown table (one row per layer)."""
        lines = [
            "| layer | class | status | scale | variance before | variance |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.layers:
            lines.append(
                f"| {r.name} | {r.layer_class} | {r.status} | "
                f"{r.scale:.4g} | {r.variance_before:.4g} | "
                f"{r.variance:.4g} |"
            )
        return "\n".join(lines)


def _children(layer):
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    found = []
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, dict):
            values = list(value.values())
        found.extend(v for v in values if isinstance(v, keras.layers.Layer))
    return found


def _walk(model):
    """Every layer below ``model``, each once, depth first.

    Layers LSUV handles (see `_kind`) are leaves: an LSTM's cell is not
    visited apart from its layer.
    """
    seen, order = set(), []

    def visit(layer):
        for child in _children(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            order.append(child)
            if _kind(child)[0] is None:
                visit(child)

    visit(model)
    return order


def _kind(layer):
    """How LSUV handles ``layer``: a kind string, or (None, reason)."""
    if isinstance(layer, keras.layers.RNN):
        kernel = getattr(layer.cell, "kernel", None)
        if isinstance(kernel, keras.Variable) and len(kernel.shape) == 2:
            return "input_projection", ""
        return None, "recurrent cell without a 2-D `kernel`"
    kernel = getattr(layer, "kernel", None)
    if isinstance(kernel, keras.Variable) and callable(
        getattr(layer, "activation", None)
    ):
        return "pre_activation", ""
    if isinstance(kernel, keras.Variable):
        return None, "has a `kernel` but no `activation` to observe"
    return None, "no `kernel` weight LSUV knows how to rescale"


def _kernel(layer):
    if isinstance(layer, keras.layers.RNN):
        return layer.cell.kernel
    return layer.kernel


def _uses_lsuv(layer):
    """Whether the layer's (input) kernel initializer is an `LSUV`."""
    owner = layer.cell if isinstance(layer, keras.layers.RNN) else layer
    return isinstance(getattr(owner, "kernel_initializer", None), LSUV)


class _Probe:
    """Records, during one forward pass, what LSUV measures on a layer.

    Dense/Conv-like layers: their ``activation`` attribute is swapped for
    one that records its input (the pre-activation) and then applies the
    original. Recurrent layers: the instance's ``call`` is wrapped to
    record the input sequence. Both are restored by `remove`.
    """

    def __init__(self, layer, kind, fired):
        self.layer, self.kind, self.value = layer, kind, None
        if kind == "pre_activation":
            self.original = layer.activation

            def record(x, *args, **kwargs):
                self._seen(x, fired)
                return self.original(x, *args, **kwargs)

            layer.activation = record
        else:
            self.original = layer.call

            def call(inputs, *args, **kwargs):
                self._seen(inputs, fired)
                return self.original(inputs, *args, **kwargs)

            layer.call = call

    def _seen(self, value, fired):
        if self.value is None:
            fired.append(self)
        self.value = value

    def variance(self):
        value = np.asarray(keras.ops.convert_to_numpy(self.value), np.float64)
        if self.kind == "input_projection":
            kernel = np.asarray(_kernel(self.layer).numpy(), np.float64)
            value = value.reshape(-1, value.shape[-1]) @ kernel
        return float(np.var(value))

    def remove(self):
        if self.kind == "pre_activation":
            self.layer.activation = self.original
        else:
            del self.layer.call


def _check(name, value, low, integer=False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidTypeError(
            f"`{name}` must be a {'integer' if integer else 'number'}. "
            f"Received: {name}={value!r}"
        )
    if not (math.isfinite(value) and value > low):
        raise InvalidArgumentError(
            f"`{name}` must be greater than {low}. Received: {name}={value!r}"
        )


def lsuv_initialize(
    model,
    batch,
    target_variance=1.0,
    tolerance=0.1,
    max_iterations=10,
    orthogonal_start=True,
    seed=None,
    only_lsuv=False,
):
    """Rescale each layer's kernel until its output has unit variance.

    LSUV (Mishkin & Matas 2016) on a built or unbuilt model: optionally
    replace every kernel by an orthogonal one (the paper's first step),
    then, layer after layer in the order the forward pass reaches them,
    run the batch through the model, measure the variance ``v`` of the
    layer's output and multiply its kernel by ``sqrt(target / v)`` until
    ``|v - target| <= tolerance`` or ``max_iterations`` steps were taken.

    What is measured:

    * Layers with a ``kernel`` and an ``activation`` (Dense, Conv1D/2D/3D,
      their transposes, EinsumDense): the output before the activation,
      as in the paper, where the non-linearity is a separate layer.
    * Keras recurrent layers (``keras.layers.RNN`` and subclasses whose
      cell has a 2-D ``kernel``, e.g. SimpleRNN, GRU, LSTM): the input
      projection ``x @ kernel`` of the layer's input sequence, all gates
      together; the recurrent kernel keeps its (orthogonal) start.

    Every other layer that holds weights (BatchNormalization, Embedding,
    SeparableConv, custom layers...) is listed in the report as
    ``"unsupported"`` with the reason, and an `LSUVWarning` names them;
    layers without weights are left out. Works on Sequential, functional
    and subclassed models, including layers nested in custom layers that
    keep them as public attributes.

    Biases are left as they are; the measured variance includes their
    spread across units.

    Which layers: by default every handled layer, whatever initializer
    drew its kernel. With ``only_lsuv=True``, only the layers whose kernel
    initializer (for a recurrent layer, its cell's input kernel
    initializer) is the `LSUV` plugin; the other handled layers keep
    their kernels and are listed as ``"skipped"``. ``orthogonal_start``
    never redraws the kernel of a layer whose initializer is `LSUV`: that
    kernel already is the orthogonal start.

    Args:
        model: A Keras model.
        batch: Inputs ``model(batch)`` accepts; a few hundred samples are
            enough.
        target_variance: The variance to reach, > 0.
        tolerance: Accepted absolute distance to ``target_variance``, > 0.
        max_iterations: Most rescaling steps per layer, >= 1.
        orthogonal_start: Start every handled kernel from
            `OrthogonalGain` first, as the paper does (kernels drawn by an
            `LSUV` initializer are kept, they already are orthogonal).
        seed: Seed of the orthogonal start (``None`` or a non-negative
            int).
        only_lsuv: Handle only the layers whose kernel initializer is
            `LSUV` (default ``False``: every layer LSUV can handle).

    Returns:
        An `LSUVReport` with the scale and the variance reached per layer.

    Raises:
        InvalidArgumentError: A non-positive target, tolerance or iteration
            count.
        InputDataError: An empty batch.
        InvalidTypeError: ``model`` is not a Keras model.

    Example:

    >>> import keras, numpy as np
    >>> from kerasweights.initializers import lsuv_initialize
    >>> model = keras.Sequential(
    ...     [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"),
    ...      keras.layers.Dense(4)])
    >>> x = np.random.default_rng(0).normal(size=(128, 8))
    >>> report = lsuv_initialize(model, x.astype("float32"), seed=0)
    >>> report.all_converged
    True

    Reference:
        Mishkin & Matas, "All you need is a good init", ICLR 2016.
    """
    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            "`model` must be a keras.Model. Received: "
            f"model of type {type(model).__name__}"
        )
    _check("target_variance", target_variance, 0)
    _check("tolerance", tolerance, 0)
    _check("max_iterations", max_iterations, 0, integer=True)
    if not isinstance(only_lsuv, bool):
        raise InvalidTypeError(
            f"`only_lsuv` must be True or False. Received: "
            f"only_lsuv={only_lsuv!r}"
        )
    sizes = [np.shape(x)[0] for x in keras.tree.flatten(batch)]
    if not sizes or min(sizes) == 0:
        raise InputDataError(
            "`batch` must hold at least one sample. Received: batch with "
            f"leading sizes {sizes}"
        )

    model(batch, training=False)
    layers = _walk(model)
    handled, results = [], {}
    for layer in layers:
        kind, reason = _kind(layer)
        if kind is None:
            if layer.weights and not _children(layer):
                results[id(layer)] = LSUVLayerResult(
                    layer.name,
                    type(layer).__name__,
                    "unsupported",
                    reason=reason,
                )
            continue
        if only_lsuv and not _uses_lsuv(layer):
            results[id(layer)] = LSUVLayerResult(
                layer.name,
                type(layer).__name__,
                "skipped",
                kind=kind,
                reason="kernel initializer is not LSUV (only_lsuv=True)",
            )
            continue
        handled.append((layer, kind))
    if only_lsuv and not handled:
        warnings.warn(
            "lsuv_initialize(only_lsuv=True) found no layer whose kernel "
            'initializer is LSUV; set kernel_initializer="kerasweights>LSUV" '
            "on the layers to rescale. Nothing was changed.",
            LSUVWarning,
            stacklevel=2,
        )

    if orthogonal_start:
        start = OrthogonalGain(seed=seed)
        for layer, _ in handled:
            if _uses_lsuv(layer):
                continue
            kernel = _kernel(layer)
            kernel.assign(start(kernel.shape, dtype=kernel.dtype))

    fired = []
    probes = {id(layer): _Probe(layer, kind, fired) for layer, kind in handled}
    try:
        if _is_plain_sequential(model, handled):
            # One layer at a time: each layer's input is computed once,
            # after every layer before it was rescaled (linear in depth
            # instead of one whole forward pass per rescaling step).
            h = batch
            for layer in model.layers:
                if id(layer) in probes:
                    h_in = h
                    layer(h_in, training=False)
                    results[id(layer)] = _rescale(
                        lambda layer=layer, h_in=h_in: layer(
                            h_in, training=False
                        ),
                        probes[id(layer)],
                        target_variance,
                        tolerance,
                        max_iterations,
                    )
                h = layer(h, training=False)
        else:
            model(batch, training=False)
            order = [p.layer for p in fired]
            for layer in order:
                results[id(layer)] = _rescale(
                    lambda: model(batch, training=False),
                    probes[id(layer)],
                    target_variance,
                    tolerance,
                    max_iterations,
                )
    finally:
        for probe in probes.values():
            probe.remove()
    for layer, kind in handled:
        if id(layer) not in results:
            results[id(layer)] = LSUVLayerResult(
                layer.name, type(layer).__name__, "not_called", kind=kind
            )

    ordered = [results[id(p.layer)] for p in fired]
    ordered += [r for key, r in results.items() if r not in ordered]
    report = LSUVReport(tuple(ordered), float(target_variance), tolerance)
    problems = [
        r for r in report.layers if r.status not in ("converged", "skipped")
    ]
    if problems:
        listed = ", ".join(f"{r.name} ({r.status})" for r in problems)
        warnings.warn(
            f"LSUV left these layers outside the tolerance or could not "
            f"handle them: {listed}. See the returned report.",
            LSUVWarning,
            stacklevel=2,
        )
    return report


def _is_plain_sequential(model, handled):
    """A Sequential whose handled layers are all its direct layers."""
    if not isinstance(model, keras.Sequential):
        return False
    direct = {id(layer) for layer in model.layers}
    return all(id(layer) in direct for layer, _ in handled)


def _rescale(rerun, probe, target, tolerance, max_iterations):
    layer = probe.layer
    kernel = _kernel(layer)
    variance = probe.variance()
    before, scale, steps = variance, 1.0, 0
    status = "converged"
    while abs(variance - target) > tolerance:
        if variance <= 0 or not math.isfinite(variance):
            status = "zero_variance"
            break
        if steps == max_iterations:
            status = "max_iterations"
            break
        factor = math.sqrt(target / variance)
        kernel.assign(kernel * factor)
        scale *= factor
        steps += 1
        rerun()
        variance = probe.variance()
    return LSUVLayerResult(
        layer.name,
        type(layer).__name__,
        status,
        kind=probe.kind,
        scale=scale,
        variance_before=before,
        variance=variance,
        iterations=steps,
    )


class LSUVCallback(keras.callbacks.Callback):
    """Runs `lsuv_initialize` on the model when training begins.

    Not a registered plugin: it needs a batch of the user's data, which
    cannot be stored in a config or drawn by a tuner, so it is a helper
    used directly in ``fit(callbacks=[...])``. The registered plugin is
    the `LSUV` initializer (the orthogonal pre-initialization); this
    callback is the data pass that completes it. Pass ``only_lsuv=True``
    to rescale only the layers that use that initializer.

    Args:
        batch: Inputs the model accepts, e.g. the first training batch.
        **lsuv_kwargs: Any argument of `lsuv_initialize` besides the model
            and the batch.

    Attributes:
        report: The `LSUVReport` once training has begun, else ``None``.

    Example:

    >>> import keras, numpy as np
    >>> from kerasweights.initializers import LSUVCallback
    >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> model = keras.Sequential(
    ...     [keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...      keras.layers.Dense(2)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    >>> lsuv = LSUVCallback(x, seed=0)
    >>> _ = model.fit(x, y, epochs=1, verbose=0, callbacks=[lsuv])
    >>> lsuv.report.all_converged
    True
    """

    def __init__(self, batch, **lsuv_kwargs):
        super().__init__()
        self.batch = batch
        self.lsuv_kwargs = lsuv_kwargs
        self.report = None

    def on_train_begin(self, logs=None):
        self.report = lsuv_initialize(
            self.model, self.batch, **self.lsuv_kwargs
        )
