"""TFLite flatbuffers of compressed models, and running them.

Conversion goes through a SavedModel written with a fixed signature, then
``tf.lite.TFLiteConverter.from_saved_model``. Recurrent layers are rebuilt
with ``unroll=True`` first (same weights, same arithmetic): the TFLite
converter turns a recurrent loop into a ``WHILE`` op, which the stock
interpreter runs only for a fixed batch and which crashed the int8
calibrator in our tests (a segmentation fault), whereas the unrolled graph
is plain ops. Unrolling needs a fixed sequence length, so a recurrent model
built on ``Input((None, features))`` gets one clear error here; its
SavedModel export still works.

``int8`` conversion stores every weight matrix of at least 1024 entries as
int8 with one scale per output channel (TFLite's dynamic-range
quantization); activations stay float and are quantized on the fly inside
the int8 kernels. Smaller matrices stay float32: the converter's own
threshold, which we keep.
"""

import os
import shutil
import tempfile
import time

import numpy as np

from kerasweights.errors import InvalidArgumentError

__all__ = [
    "TFLiteModel",
    "check_convertible",
    "convert_to_tflite",
    "unrolled_copy",
]

MODES = (None, "int8")


def _set_unroll(node):
    """Set ``unroll`` to True in every layer config that has it."""
    count = 0
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(config, dict) and "unroll" in config:
            config["unroll"] = True
            count += 1
        for value in node.values():
            count += _set_unroll(value)
    elif isinstance(node, list):
        for value in node:
            count += _set_unroll(value)
    return count


def check_convertible(model):
    """Raise now if `convert_to_tflite` would refuse ``model``.

    Raises:
        InvalidArgumentError: ``model`` has a recurrent layer and an input
            with an unknown axis besides the batch.
    """
    if _set_unroll(model.get_config()) == 0:
        return
    for tensor in model.inputs:
        if any(d is None for d in tensor.shape[1:]):
            raise InvalidArgumentError(
                "compress's TFLite conversion unrolls recurrent layers, so it "
                f"needs a fixed sequence length; input {tensor.name!r} has "
                f"shape {tuple(tensor.shape)}. Rebuild the model on an Input "
                "with a fixed time axis (e.g. Input((8, 8))), or run "
                "`kerasweights export --tflite` on the compressed model.keras "
                "for a float32 TFLite file that takes any length; the "
                "SavedModel is written either way."
            )


def unrolled_copy(model):
    """A copy of ``model`` whose recurrent layers unroll their loop.

    Args:
        model: A functional or Sequential `keras.Model`.

    Returns:
        ``(copy, count)``: the copy, carrying ``model``'s weights, and the
        number of layers unrolled (``(model, 0)`` when none is recurrent).

    Raises:
        InvalidArgumentError: A recurrent model has an unknown sequence
            length.
    """
    check_convertible(model)
    config = model.get_config()
    count = _set_unroll(config)
    if count == 0:
        return model, 0
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy, count


def _write_saved_model(model, directory, batch):
    import keras
    import tensorflow as tf

    specs = [
        tf.TensorSpec([batch, *t.shape[1:]], t.dtype, name=f"input_{i}")
        for i, t in enumerate(model.inputs)
    ]
    single = len(specs) == 1

    def serve(*tensors):
        inputs = tensors[0] if single else list(tensors)
        return model(inputs, training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(directory, verbose=False)


def convert_to_tflite(model, quantize=None):
    """Convert ``model`` to a TFLite flatbuffer.

    Args:
        model: A functional or Sequential `keras.Model` with one or more
            float inputs of fixed shape (the batch axis aside).
        quantize: ``None`` for float32 weights, ``"int8"`` for int8
            weights (per channel) with float activations.

    Returns:
        The flatbuffer as ``bytes``.

    Raises:
        InvalidArgumentError: ``quantize`` is unknown, or the model has a
            recurrent layer and an unknown sequence length.
    """
    import tensorflow as tf

    if quantize not in MODES:
        raise InvalidArgumentError(
            f"`quantize` must be one of {list(MODES)}. "
            f"Received: quantize={quantize!r}"
        )
    model, _ = unrolled_copy(model)
    folder = tempfile.mkdtemp(prefix="kerasweights-tflite-")
    try:
        _write_saved_model(model, folder, None)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class TFLiteModel:
    """A TFLite flatbuffer run with the stock interpreter.

    Args:
        content: The flatbuffer bytes, or a path to a ``.tflite`` file.
        threads: Interpreter threads.
    """

    def __init__(self, content, threads=1):
        import tensorflow as tf

        if isinstance(content, (str, os.PathLike)):
            with open(content, "rb") as f:
                content = f.read()
        self.content = bytes(content)
        self._interpreter = tf.lite.Interpreter(
            model_content=self.content, num_threads=threads
        )
        self._batch = None

    @property
    def size(self):
        """Bytes of the flatbuffer."""
        return len(self.content)

    def _resize(self, inputs):
        batch = inputs[0].shape[0]
        if batch == self._batch:
            return
        interpreter = self._interpreter
        for detail, value in zip(
            interpreter.get_input_details(), inputs, strict=True
        ):
            interpreter.resize_tensor_input(detail["index"], value.shape)
        interpreter.allocate_tensors()
        self._batch = batch

    def _run(self, inputs):
        self._resize(inputs)
        interpreter = self._interpreter
        for detail, value in zip(
            interpreter.get_input_details(), inputs, strict=True
        ):
            interpreter.set_tensor(
                detail["index"], value.astype(detail["dtype"])
            )
        interpreter.invoke()
        outputs = interpreter.get_output_details()
        return [interpreter.get_tensor(d["index"]) for d in outputs]

    def predict(self, x, batch_size=64):
        """Outputs for ``x`` (an array, or a list of arrays), batched.

        Returns the first output's array (the model's output when it has
        one).
        """
        inputs = list(x) if isinstance(x, (list, tuple)) else [x]
        inputs = [np.asarray(v) for v in inputs]
        n = inputs[0].shape[0]
        parts = []
        for start in range(0, n, batch_size):
            chunk = [v[start : start + batch_size] for v in inputs]
            parts.append(self._run(chunk)[0])
        return np.concatenate(parts, axis=0)

    def latency(self, example, repeats=50):
        """Median seconds of one call on one example (batch of one)."""
        inputs = (
            list(example) if isinstance(example, (list, tuple)) else [example]
        )
        inputs = [np.asarray(v)[:1] for v in inputs]
        self._run(inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self._run(inputs)
            times.append(time.perf_counter() - start)
        return float(np.median(times))
