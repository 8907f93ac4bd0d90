"""Which weights of a Keras 3 model compression works on.

The rule is the same for every layer, ours, Keras' and a third party's:
a *compressible weight* is a floating-point weight with two or more axes
(a dense or convolution kernel, a recurrent kernel, an embedding table).
Biases, normalization gains and other vectors stay as they are: they are a
small share of the parameters and pruning them hurts accuracy most.

A layer may narrow or widen the rule by defining
``get_prunable_weights()`` (the protocol tensorflow-model-optimization
uses for custom layers); its list is then taken as it is.

The walk descends into nested models, wrappers (``Bidirectional`` gives
both directions, ``TimeDistributed`` its inner layer) and the cells of
recurrent layers, so each weight is found once, under a readable path such
as ``bidirectional/forward_mgu/cell/kernel``.
"""

import dataclasses

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError

__all__ = ["WeightTarget", "compressible_weights", "check_supported"]

SUPPORTED = (
    "a Keras 3 functional or Sequential model (layers of any kind, "
    "kerasweights and third-party recurrent layers, Bidirectional and "
    "TimeDistributed wrappers and nested models included) with at least "
    "one floating-point weight of two or more axes"
)


@dataclasses.dataclass(frozen=True)
class WeightTarget:
    """One weight that compression changes.

    Attributes:
        path: ``layer/.../weight`` path, unique within the model.
        variable: The `keras.Variable`.
        layer: The layer that owns the weight.
    """

    path: str
    variable: object = dataclasses.field(repr=False)
    layer: object = dataclasses.field(repr=False, compare=False)

    @property
    def size(self):
        """Number of entries."""
        n = 1
        for dim in self.variable.shape:
            n *= int(dim)
        return n


def _is_compressible(variable):
    dtype = keras.backend.standardize_dtype(variable.dtype)
    return dtype.startswith(("float", "bfloat")) and len(variable.shape) >= 2


def _children(layer):
    """Sub-layers whose weights belong to ``layer``, with their names."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    if isinstance(layer, keras.layers.Wrapper):
        return [layer.layer]
    if isinstance(layer, keras.layers.RNN):
        cell = layer.cell
        if isinstance(cell, keras.layers.StackedRNNCells):
            return list(cell.cells)
        return [cell]
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return []


def _walk(layer, prefix, seen, found):
    declared = getattr(layer, "get_prunable_weights", None)
    if callable(declared):
        for variable in declared():
            if id(variable) not in seen:
                seen.add(id(variable))
                found.append(_target(prefix, variable, layer))
        return
    children = _children(layer)
    for child in children:
        _walk(child, f"{prefix}/{child.name}", seen, found)
    # Weights the layer owns directly (not through a child).
    for variable in layer.weights:
        if id(variable) in seen:
            continue
        if _is_compressible(variable):
            seen.add(id(variable))
            found.append(_target(prefix, variable, layer))


def _target(prefix, variable, layer):
    name = variable.name.split("/")[-1].split(":")[0]
    return WeightTarget(f"{prefix}/{name}", variable, layer)


def check_supported(model):
    """Raise one clear error when ``model`` is not one we can compress.

    Args:
        model: The model to compress.

    Raises:
        InvalidTypeError: ``model`` is not a Keras 3 model (a tf_keras
            model, say).
        InvalidArgumentError: ``model`` is a subclassed model (it has no
            config to copy and no inputs to export), is not built, or has
            no compressible weight.
    """
    if not isinstance(model, keras.Model):
        origin = type(model).__module__.split(".")[0]
        hint = (
            " It is a tf_keras model: rebuild it with Keras 3 (`import "
            "keras`), or compress it with tensorflow-model-optimization "
            "directly."
            if origin in ("tf_keras", "tensorflow")
            else ""
        )
        raise InvalidTypeError(
            f"Compression needs {SUPPORTED}. Received: an object of type "
            f"{type(model).__module__}.{type(model).__name__}.{hint}"
        )
    # Functional and Sequential models know their inputs; a subclassed
    # model (its own `call`) has no `inputs` attribute at all.
    try:
        functional = bool(model.inputs)
    except (AttributeError, ValueError):
        functional = isinstance(model, keras.Sequential) and not model.built
    if not functional:
        raise InvalidArgumentError(
            f"Compression needs {SUPPORTED}. Received: the subclassed model "
            f"{model.name!r} ({type(model).__name__}), which has no config "
            "to copy and no inputs to export; rebuild it as a functional "
            "model (keras.Model(inputs, outputs)) and compress that."
        )
    if not model.built or not model.weights:
        raise InvalidArgumentError(
            f"Compression needs {SUPPORTED}. Received: model "
            f"{model.name!r}, which is not built (it has no weights yet); "
            "call it on data or give it an Input first."
        )
    if not compressible_weights(model):
        raise InvalidArgumentError(
            f"Compression needs {SUPPORTED}. Received: model "
            f"{model.name!r}, none of whose weights has two or more axes "
            "(nothing to prune, cluster or quantize)."
        )


def compressible_weights(model):
    """Every compressible weight of ``model``, each found once.

    Args:
        model: A built `keras.Model`.

    Returns:
        A list of `WeightTarget`, in the order the layers appear.

    Raises:
        InvalidArgumentError: Two weights would get the same path.
    """
    found = []
    seen = set()
    for layer in model.layers:
        _walk(layer, layer.name, seen, found)
    paths = [t.path for t in found]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    if duplicated:
        raise InvalidArgumentError(
            f"Two weights of model {model.name!r} share the path "
            f"{duplicated[0]!r}; expected unique layer and weight names."
        )
    return found
