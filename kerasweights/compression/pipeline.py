"""Compress a Keras 3 model: prune, cluster, quantize, then measure.

`compress` fine-tunes a copy of the model on the user's data through
`WeightTransforms` (masks, shared weights and int8 rounding applied to the
real variables around every step), checks the sparsity it reached
(case C16), converts the result to TFLite and measures the original and
the compressed model the same way: test accuracy, parameters, file sizes
and single-example latency. The caller's model is never changed.
"""

import dataclasses
import gzip
import math
import os
import tempfile
import time

import numpy as np

from kerasweights.errors import InputDataError
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import KerasWeightsError

__all__ = [
    "QUANTIZE_MODES",
    "CompressionResult",
    "FineTuningDivergedError",
    "compress",
    "model_sizes",
]


class FineTuningDivergedError(KerasWeightsError, RuntimeError):
    """Fine-tuning left a weight with NaN or infinite values."""


#: ``"int8"``: quantization-aware fine-tuning of the weights on the int8
#: grid, then an int8 TFLite file. ``"int8-ptq"``: post-training only.
QUANTIZE_MODES = (None, "int8", "int8-ptq")


@dataclasses.dataclass
class CompressionResult:
    """What `compress` made and measured.

    Attributes:
        model: The compressed Keras 3 model (float32 weights: zeros where
            pruned, shared values where clustered, int8-grid values where
            quantized). It serves as a SavedModel through
            `kerasweights.export.export_saved_model`.
        tflite: The compressed model as a TFLite flatbuffer (int8 weights
            when quantized), or ``None`` when the model does not convert
            (``report["tflite_error"]`` says why).
        report: A JSON-ready dict: settings, ``"before"`` and ``"after"``
            measurements, per-weight ``"sparsity"``, the mask updates and
            the agreement of the TFLite file with the Keras model.
    """

    model: object
    tflite: object
    report: dict


def _check_int(name, value, low, high=None):
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        bound = f"at least {low}" if high is None else f"in [{low}, {high}]"
        raise InvalidArgumentError(
            f"`{name}` must be an integer {bound}. Received: {name}={value!r}"
        )
    if high is not None and value > high:
        raise InvalidArgumentError(
            f"`{name}` must be an integer in [{low}, {high}]. "
            f"Received: {name}={value!r}"
        )
    return value


def _as_inputs(model, x, name):
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(model.inputs) == 1 and len(arrays) != 1:
        arrays = [x]  # a nested list of examples for the one input
    if len(arrays) != len(model.inputs):
        raise InputDataError(
            f"`{name}` must hold {len(model.inputs)} input arrays for model "
            f"{model.name!r}. Received: {len(arrays)}"
        )
    out = []
    for array, tensor in zip(arrays, model.inputs, strict=True):
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise InputDataError(
                f"`{name}` holds {array.dtype} values; expected real numbers "
                "(integer or float arrays)."
            )
        want = tuple(tensor.shape[1:])
        got = array.shape[1:]
        fits = array.ndim == len(want) + 1 and all(
            d is None or d == g for d, g in zip(want, got, strict=True)
        )
        if not fits or array.shape[0] < 1:
            shown = "(-1, " + ", ".join(
                "-1" if d is None else str(d) for d in want
            )
            raise InputDataError(
                f"`{name}` has shape {array.shape}; model {model.name!r} "
                f"takes {shown.rstrip(', ')}) (-1: any length)."
            )
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise InputDataError(
                f"`{name}` holds NaN or infinite values; expected finite "
                "numbers."
            )
        out.append(array.astype(tensor.dtype))
    return out if len(out) > 1 else out[0]


def _first(x):
    return x[0] if isinstance(x, list) else x


def _take(x, index):
    if isinstance(x, list):
        return [a[index] for a in x]
    return x[index]


def _as_labels(y, name, n):
    """``y`` as a real-number array of ``n`` labels, or a one-line error."""
    if y is None:
        raise InputDataError(
            f"`{name}` is None; expected one label per example."
        )
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise InputDataError(
            f"`{name}` holds {y.dtype} values; expected numeric labels "
            "(class indices, 0/1 or real targets)."
        )
    if y.ndim == 0 or len(y) != n:
        got = "a scalar" if y.ndim == 0 else f"{len(y)} labels"
        raise InputDataError(
            f"`{name}` has {got} for {n} examples; expected one label per "
            "example."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InputDataError(
            f"`{name}` holds NaN or infinite values; expected finite labels."
        )
    return y


def _one_hot_to_indices(y, units):
    """Class indices when ``y`` is exactly one-hot over ``units`` classes."""
    if y.ndim < 2 or y.shape[-1] != units:
        return None
    if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=-1) == 1):
        return None
    return y.argmax(axis=-1)


def _labels_for_output(y, sample, name):
    """Check ``y`` against the model's output; one-hot becomes indices."""
    units = sample.shape[-1]
    if units > 1:
        indices = _one_hot_to_indices(y, units)
        if indices is not None and y.shape[1:] == sample.shape[1:]:
            return indices
    integer = y.dtype.kind in "biu" or np.all(np.equal(np.mod(y, 1), 0))
    if units > 1 and integer and y.shape[1:] == sample.shape[1:-1]:
        low, high = y.min(), y.max()
        if low < 0 or high >= units:
            bad = low if low < 0 else high
            raise InputDataError(
                f"`{name}` holds class index {bad:g}; the model has {units} "
                f"output units, so expected class indices 0 to {units - 1} "
                "(or one-hot rows)."
            )
        return y
    fits = y.shape[1:] == sample.shape[1:] or (
        units == 1 and y.shape[1:] == sample.shape[1:-1]
    )
    if not fits:

        def shape(dims):
            return "(-1, " + "".join(f"{d}, " for d in dims)[:-2] + ")"

        expected = shape(sample.shape[1:])
        if units > 1:
            expected += " or class indices " + (
                shape(sample.shape[1:-1]) if sample.ndim > 2 else "(-1,)"
            )
        raise InputDataError(
            f"`{name}` has shape {y.shape}; expected labels {expected} for "
            f"the model's output of shape (-1, "
            f"{', '.join(str(d) for d in sample.shape[1:])})."
        )
    return y


def _output_sample(model, x):
    sample = model.predict(_take(x, slice(0, 64)), verbose=0)
    if isinstance(sample, (list, tuple, dict)):
        raise InvalidArgumentError(
            f"Model {model.name!r} has several outputs; compress() fine-tunes "
            "models with one output. Pass `loss` and compile-free data for "
            "one output, or compress each output's sub-model."
        )
    return np.asarray(sample)


def _task(model, sample, y):
    """``(loss, metric name, probabilities?)`` for the model's outputs."""
    import keras

    y = np.asarray(y)
    units = sample.shape[-1]
    probabilities = bool(
        np.all(sample >= 0)
        and np.all(sample <= 1)
        and (units == 1 or np.allclose(sample.sum(axis=-1), 1, atol=1e-3))
    )
    integer_labels = y.dtype.kind in "iu" or (
        y.dtype.kind == "f" and np.all(np.equal(np.mod(y, 1), 0))
    )
    if units > 1 and integer_labels and y.shape[1:] == sample.shape[1:-1]:
        loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=not probabilities
        )
        return loss, "accuracy", probabilities
    if units == 1 and integer_labels and set(np.unique(y)) <= {0, 1}:
        loss = keras.losses.BinaryCrossentropy(from_logits=not probabilities)
        return loss, "binary_accuracy", probabilities
    return keras.losses.MeanSquaredError(), "mse", probabilities


def _score(metric, outputs, y, probabilities):
    y = np.asarray(y)
    if metric == "accuracy":
        return float(np.mean(outputs.argmax(axis=-1) == y))
    if metric == "binary_accuracy":
        threshold = 0.5 if probabilities else 0.0
        return float(
            np.mean((outputs.reshape(y.shape) > threshold) == (y > 0.5))
        )
    return float(np.mean((outputs.reshape(y.shape) - y) ** 2))


def _gzip_size(content):
    return len(gzip.compress(content, compresslevel=9, mtime=0))


def model_sizes(model, tflite=None):
    """File sizes of a model in bytes: ``.keras``, TFLite, gzipped.

    ``keras``: the ``.keras`` file ``model.save`` writes (float32 weights,
    zip-stored); ``keras_gzip``: that file gzipped; ``tflite`` and
    ``tflite_gzip``: the flatbuffer as written and gzipped (level 9).
    """
    with tempfile.TemporaryDirectory(prefix="kerasweights-size-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            content = f.read()
    sizes = {"keras": len(content), "keras_gzip": _gzip_size(content)}
    if tflite is not None:
        sizes["tflite"] = len(tflite)
        sizes["tflite_gzip"] = _gzip_size(tflite)
    return sizes


def _parameters(model):
    weights = model.get_weights()
    return {
        "total": int(sum(w.size for w in weights)),
        "nonzero": int(sum(np.count_nonzero(w) for w in weights)),
    }


def _keras_latency(model, example, repeats):
    import tensorflow as tf

    serve = tf.function(lambda v: model(v, training=False))
    serve(example)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        serve(example)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _copy(model):
    # Not keras.models.clone_model: it compiles the clone with the
    # source's optimizer object, whose state would then be saved with it.
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def _try_tflite(model, quantize):
    from kerasweights.compression.tflite import convert_to_tflite

    try:
        return convert_to_tflite(model, quantize=quantize), None
    except InvalidArgumentError as exc:
        return None, str(exc)
    except Exception as exc:  # the converter's own errors are many types
        detail = " ".join(str(exc).split())[:300]
        return None, (
            f"the TFLite converter refused the model ({type(exc).__name__}: "
            f"{detail}); the SavedModel export still serves it"
        )


def compress(
    model,
    x_train,
    y_train,
    x_test=None,
    y_test=None,
    prune=None,
    quantize=None,
    cluster=None,
    schedule=None,
    epochs=4,
    batch_size=32,
    learning_rate=1e-3,
    loss=None,
    seed=0,
    latency_repeats=50,
    measure=True,
    verbose=0,
):
    """Prune, cluster and/or quantize a copy of ``model``, and measure it.

    Args:
        model: A Keras 3 functional or Sequential model with one output,
            built, using any layers (kerasweights recurrent layers,
            third-party plugins, Bidirectional wrappers included).
        x_train, y_train: Fine-tuning data (labels: class indices for a
            classifier with several outputs units, 0/1 for one unit,
            targets otherwise).
        x_test, y_test: Held-out data for the before/after measurements;
            ``None`` measures on the training data.
        prune: Target sparsity in (0, 1): the share of every kernel's
            entries set to zero, by magnitude, raised along a
            ``PolynomialDecay`` schedule fitted to the steps that run.
        quantize: ``None``; ``"int8"`` (quantization-aware fine-tuning of
            the weights on the per-channel int8 grid, then int8 TFLite
            weights that equal the trained ones); or ``"int8-ptq"``
            (post-training: int8 TFLite weights rounded from the float
            ones, no fine-tuning for them).
        cluster: Number of shared values per kernel (2 to 256), or
            ``None``. Pruned zeros stay zero and do not use a cluster.
        schedule: A tfmot pruning schedule to use as it is instead of the
            fitted one; a schedule that does not reach ``prune`` within
            the steps that run fails with `SparsityNotReachedError`.
        epochs: Fine-tuning epochs (positive integer).
        batch_size: Fine-tuning batch size.
        learning_rate: Adam learning rate of the fine-tuning.
        loss: A Keras loss; ``None`` picks one from the output and labels
            (sparse categorical or binary cross-entropy, with logits when
            the outputs are not probabilities; mean squared error
            otherwise).
        seed: Seed of the fine-tuning's shuffling and dropout.
        latency_repeats: Timed calls per latency measurement.
        measure: Convert to TFLite and measure before and after. With
            ``False`` only the compressed Keras model and the sparsity
            are made (``tflite`` is ``None``): quicker, for tests and for
            callers that convert themselves.
        verbose: Keras ``fit`` verbosity.

    Returns:
        A `CompressionResult`.

    Raises:
        InvalidTypeError, InvalidArgumentError: The model is not one we
            can compress (see `check_supported`), or an argument is out of
            range.
        InputDataError: The data do not fit the model.
        SparsityNotReachedError: A pruned weight ended below the target
            sparsity (the message says which and why).
    """
    import keras

    from kerasweights.compression.pruning import check_sparsity
    from kerasweights.compression.pruning import check_sparsity_target
    from kerasweights.compression.pruning import fit_schedule
    from kerasweights.compression.pruning import measure_sparsity
    from kerasweights.compression.targets import check_supported
    from kerasweights.compression.targets import compressible_weights
    from kerasweights.compression.tflite import TFLiteModel
    from kerasweights.compression.transforms import WeightTransforms

    check_supported(model)
    if prune is not None:
        prune = check_sparsity_target(prune, "prune")
    if quantize not in QUANTIZE_MODES:
        raise InvalidArgumentError(
            f"`quantize` must be one of {list(QUANTIZE_MODES)}. "
            f"Received: quantize={quantize!r}"
        )
    if cluster is not None:
        cluster = _check_int("cluster", cluster, 2, 256)
    if prune is None and quantize is None and cluster is None:
        raise InvalidArgumentError(
            "Nothing to do: pass `prune`, `quantize` or `cluster`."
        )
    if schedule is not None and prune is None:
        raise InvalidArgumentError(
            "`schedule` needs `prune` (the target sparsity it must reach)."
        )
    if quantize is not None and measure:
        from kerasweights.compression.tflite import check_convertible

        try:
            check_convertible(model)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(
                f"int8 quantization goes through TFLite: {exc}"
            ) from exc
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float, np.number))
        or not np.isfinite(learning_rate)
        or not learning_rate > 0
    ):
        raise InvalidArgumentError(
            "`learning_rate` must be a finite number greater than 0. "
            f"Received: learning_rate={learning_rate!r}"
        )
    learning_rate = float(learning_rate)
    if len(model.inputs) > 1:
        raise InvalidArgumentError(
            f"Model {model.name!r} has {len(model.inputs)} inputs; compress() "
            "handles models with one input (the SavedModel and TFLite "
            "verification feed one array)."
        )
    x_train = _as_inputs(model, x_train, "x_train")
    n = _first(x_train).shape[0]
    y_train = _as_labels(y_train, "y_train", n)
    if x_test is None:
        x_test, y_test = x_train, y_train
    else:
        x_test = _as_inputs(model, x_test, "x_test")
        y_test = _as_labels(y_test, "y_test", _first(x_test).shape[0])

    sample = _output_sample(model, x_train)
    test_is_train = y_test is y_train
    y_train = _labels_for_output(y_train, sample, "y_train")
    if test_is_train:
        y_test = y_train
    else:
        y_test = _labels_for_output(y_test, sample, "y_test")
    auto_loss, metric, probabilities = _task(model, sample, y_train)
    loss = loss or auto_loss
    work = _copy(model)
    targets = compressible_weights(work)

    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * steps_per_epoch
    fitted = False
    if prune is not None and schedule is None:
        schedule = fit_schedule(prune, total_steps)
        fitted = True
    trains = prune is not None or cluster is not None or quantize == "int8"
    cluster_step = 0
    if prune is not None:
        cluster_step = int(getattr(schedule, "end_step", 0)) + 1
    transforms = WeightTransforms(
        targets,
        schedule=schedule if prune is not None else None,
        clusters=cluster,
        cluster_step=cluster_step,
        quantize="int8" if quantize == "int8" else None,
    )
    if trains:
        keras.utils.set_random_seed(seed)
        work.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=loss,
        )
        work.fit(
            x_train,
            y_train,
            epochs=epochs,
            batch_size=batch_size,
            callbacks=[transforms],
            verbose=verbose,
            shuffle=True,
        )
    else:
        transforms.finish()
    _check_finite(work)

    # A fresh, uncompiled copy: no optimizer state in its files.
    work = _copy(work)
    targets = compressible_weights(work)
    report = {
        "settings": {
            "prune": prune,
            "quantize": quantize,
            "cluster": cluster,
            "epochs": epochs if trains else 0,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "steps": transforms.step,
            "metric": metric,
        },
        "weights": [t.path for t in targets],
    }
    if prune is not None:
        measured = measure_sparsity(targets)
        report["sparsity"] = measured
        empty = [path for path, share in measured.items() if share >= 1.0]
        if empty:
            import warnings

            from kerasweights.errors import KerasWeightsWarning

            warnings.warn(
                f"prune={prune:g} left {len(empty)} kernel(s) fully zero "
                f"({', '.join(empty)}); their layers now pass no signal.",
                KerasWeightsWarning,
                stacklevel=2,
            )
        report["schedule"] = {
            "fitted": fitted,
            "end_step": int(getattr(schedule, "end_step", -1)),
            "frequency": int(getattr(schedule, "frequency", -1)),
            "mask_updates": transforms.mask_updates,
        }
        check_sparsity(
            measured,
            {t.path: t.size for t in targets},
            prune,
            transforms.mask_updates,
            transforms.step,
            schedule,
        )

    if not measure:
        return CompressionResult(model=work, tflite=None, report=report)

    tflite_mode = "int8" if quantize else None
    before_tflite, before_error = _try_tflite(model, None)
    after_tflite, after_error = _try_tflite(work, tflite_mode)
    if quantize and after_tflite is None:
        raise InvalidArgumentError(
            "int8 quantization goes through TFLite, which failed: "
            f"{after_error}. Compress without quantize (prune, cluster), or "
            "make the model convertible."
        )
    report["tflite_error"] = after_error

    before = {"parameters": _parameters(model)}
    after = {"parameters": _parameters(work)}
    before["size"] = model_sizes(model, before_tflite)
    after["size"] = model_sizes(work, after_tflite)
    before_out = model.predict(x_test, verbose=0)
    after_out = work.predict(x_test, verbose=0)
    before[metric] = _score(metric, before_out, y_test, probabilities)
    after[metric] = _score(metric, after_out, y_test, probabilities)

    runners = {}
    if before_tflite is not None:
        runners["before"] = TFLiteModel(before_tflite)
    if after_tflite is not None:
        runners["after"] = TFLiteModel(after_tflite)
        lite_out = runners["after"].predict(x_test)
        after[f"tflite_{metric}"] = _score(
            metric, lite_out, y_test, probabilities
        )
        report["tflite_agreement"] = _agreement(metric, lite_out, after_out)

    example = _take(x_test, slice(0, 1))
    timings = {key: [] for key in ("before", "after")}
    lite = {key: [] for key in runners}
    for _ in range(3):
        timings["before"].append(
            _keras_latency(model, example, latency_repeats)
        )
        timings["after"].append(_keras_latency(work, example, latency_repeats))
        for key, runner in runners.items():
            lite[key].append(runner.latency(example, latency_repeats))
    before["latency_ms"] = 1e3 * float(np.median(timings["before"]))
    after["latency_ms"] = 1e3 * float(np.median(timings["after"]))
    for key, values in lite.items():
        target = before if key == "before" else after
        target["tflite_latency_ms"] = 1e3 * float(np.median(values))
    report["before"] = before
    report["after"] = after
    return CompressionResult(model=work, tflite=after_tflite, report=report)


def _check_finite(model):
    for variable in model.weights:
        if not np.all(np.isfinite(np.asarray(variable))):
            raise FineTuningDivergedError(
                "Fine-tuning diverged: non-finite weights in "
                f"{variable.path!r}. Lower the learning rate "
                "(--learning-rate / `learning_rate`) or check the scale of "
                "the data (inputs and targets near unit size)."
            )


def _agreement(metric, lite, keras_out):
    lite = np.asarray(lite).reshape(np.shape(keras_out))
    result = {"max_abs_diff": float(np.max(np.abs(lite - keras_out)))}
    if metric == "accuracy":
        result["same_class"] = float(
            np.mean(lite.argmax(axis=-1) == keras_out.argmax(axis=-1))
        )
    return result
