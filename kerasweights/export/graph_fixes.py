"""Fixes applied while the serving graph is traced (TimeDistributed).

Keras 3.15's ``TimeDistributed`` over an unknown time axis maps its inner
layer over ``range(shape[0])`` of the *untransposed* input, that is over
the batch size, so a traced graph takes the number of timesteps from the
batch axis: a batch of 2 sequences of length 5 serves as ``(2, 2, 2)``,
and a batch larger than the sequence length fails. Eager calls and
graphs with a static time length take another path and are right.

While `export_saved_model` and `export_tflite` trace the model, every
``TimeDistributed`` layer whose input has an unknown time axis applies its
inner layer once to all timesteps at the same time: batch and time are
merged into one axis, the inner layer runs, and its output is split back
into ``(batch, time, ...)`` with the shapes read at run time. This is what
``TimeDistributed`` means for every layer whose output for one example
depends on that example only, which holds at inference for the Keras
layers (Dense, Conv, Embedding, normalization with moving statistics,
dropout off). The exported outputs are checked against the Keras model in
any case, so a layer for which it would not hold is refused, not shipped.
"""

import contextlib
import inspect

__all__ = ["all_layers", "serving_graph_fixes"]


def all_layers(model):
    """``model`` and every layer inside it, wrapped and nested included."""
    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        found.append(layer)
        stack.extend(getattr(layer, "layers", None) or ())
        for name in ("layer", "forward_layer", "backward_layer", "cell"):
            inner = getattr(layer, name, None)
            if inner is not None and hasattr(inner, "get_config"):
                stack.append(inner)
    return found


def _takes(layer, argument):
    return argument in inspect.signature(layer.call).parameters


def _merged_call(layer, original):
    import tensorflow as tf

    def call(inputs, training=None, mask=None):
        if inputs.shape[1] is not None:
            return original(inputs, training=training, mask=mask)
        shape = tf.shape(inputs)
        merged = tf.concat([[-1], shape[2:]], axis=0)
        kwargs = {}
        if mask is not None and _takes(layer.layer, "mask"):
            mask_shape = tf.shape(mask)
            kwargs["mask"] = tf.reshape(
                mask, tf.concat([[-1], mask_shape[2:]], axis=0)
            )
        if _takes(layer.layer, "training"):
            kwargs["training"] = training
        flat = tf.reshape(inputs, merged)
        flat.set_shape([None, *inputs.shape[2:]])
        inner = layer.layer.call(flat, **kwargs)
        split = tf.concat([shape[:2], tf.shape(inner)[1:]], axis=0)
        outputs = tf.reshape(inner, split)
        # Keep the static sizes the inner layer knows (units, channels).
        outputs.set_shape([inputs.shape[0], None, *inner.shape[1:]])
        return outputs

    return call


@contextlib.contextmanager
def serving_graph_fixes(model):
    """Patch ``model``'s layers for tracing; restore them on exit.

    Args:
        model: A `keras.Model`. Its ``TimeDistributed`` layers, nested ones
            included, get an instance-level ``call`` that is right for an
            unknown time axis; the patch is removed when the block ends.

    Yields:
        The names of the patched layers.
    """
    import keras

    patched = []
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.TimeDistributed):
            original = layer.call
            object.__setattr__(layer, "call", _merged_call(layer, original))
            patched.append(layer)
    try:
        yield [layer.name for layer in patched]
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")
