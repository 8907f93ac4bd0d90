"""Search spaces built from the plugin registry.

A `SearchSpace` turns the installed plugins into Keras Tuner
hyperparameters: which initializer starts each kind of weight, which
recurrent cell runs a recurrent model, the depth and width of the network,
dropout and the learning rate. Nothing is listed by hand: every plugin of
kind ``"initializer"`` and ``"recurrent"`` found by `kerasweights.plugins`
joins the space, so a plugin installed with pip is searched the moment it
is installed. Keras' own initializers and its LSTM and GRU layers are in
the space too, as baselines.

Initializers are chosen per *slot*:

* ``"conv_kernel"``: the kernels of convolution layers;
* ``"dense_kernel"``: the kernels of dense layers and the input kernels of
  recurrent layers;
* ``"recurrent_kernel"``: the recurrent (state-to-state) kernels.

An initializer plugin joins a slot only when the slot is in its
``plugin_targets``; a plugin without ``plugin_targets`` joins every slot.
The choice for a slot is the hyperparameter ``conv_init``, ``dense_init``
or ``recurrent_init``. When a plugin class offers
``tunable_arguments(hp)``, the hyperparameters it draws become active only
when that plugin is chosen for that slot, and are scoped under the slot:
``dense_init/gain_variance_scaling_gain``. The recurrent layer is the
hyperparameter ``cell``; its plugin's own arguments are scoped under
``cell/``.
"""

import dataclasses
import inspect

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import PluginNotFoundError

__all__ = [
    "KERAS_CELLS",
    "KERAS_INITIALIZERS",
    "MODEL_KINDS",
    "SLOTS",
    "Candidate",
    "SearchSpace",
    "slot_hyperparameter",
]

SLOTS = ("conv_kernel", "dense_kernel", "recurrent_kernel")
MODEL_KINDS = ("conv", "recurrent")

# Keras built-in baselines and the slots they serve.
KERAS_INITIALIZERS = {
    "glorot_uniform": ("conv_kernel", "dense_kernel", "recurrent_kernel"),
    "he_normal": ("conv_kernel", "dense_kernel"),
    "orthogonal": ("recurrent_kernel",),
}
KERAS_CELLS = ("lstm", "gru")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One choice in the space: an initializer or a recurrent layer.

    Attributes:
        name: The value the tuner records for this choice.
        obj: The plugin class, or the Keras name of a built-in.
        source: ``"keras"``, ``"plugin"`` (from the registry) or ``"user"``
            (passed to `SearchSpace` directly).
        targets: The initializer slots it may fill (initializers only).
    """

    name: str
    obj: object
    source: str
    targets: tuple = ()

    @property
    def tunable(self):
        """Whether the class offers ``tunable_arguments(hp)``."""
        return callable(getattr(self.obj, "tunable_arguments", None))

    def arguments(self, hp, prefix):
        """Register this choice's own hyperparameters and return them.

        Args:
            hp: The trial's `keras_tuner.HyperParameters`.
            prefix: The name scope of the hyperparameters.

        Returns:
            The constructor keyword arguments drawn from ``hp``.
        """
        if not self.tunable:
            return {}
        with hp.name_scope(prefix):
            kwargs = self.obj.tunable_arguments(hp)
        if not isinstance(kwargs, dict):
            raise InvalidTypeError(
                f"{self.obj.__qualname__}.tunable_arguments must return a "
                f"dict of constructor arguments. Received: {kwargs!r}"
            )
        return kwargs


def _plugin_records(kind):
    import kerasweights

    if kind not in kerasweights.kinds():
        return []
    return kerasweights.plugins(kind)


def _check_choices(name, values, kind=float, low=None, high=None):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidTypeError(
            f"`{name}` must be a non-empty sequence. Received: {name}="
            f"{values!r}"
        )
    values = tuple(values)
    if not values:
        raise InvalidArgumentError(
            f"`{name}` must be a non-empty sequence. Received: {name}=()"
        )
    for v in values:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if kind is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        if (
            not ok
            or (low is not None and v < low)
            or (high is not None and v > high)
        ):
            bounds = f" in [{low}, {high}]" if high is not None else ""
            if low is not None and high is None:
                bounds = f" of at least {low}"
            raise InvalidArgumentError(
                f"`{name}` must hold {kind.__name__} values{bounds}. "
                f"Received: {name}={values!r}"
            )
    return values


class SearchSpace:
    """The hyperparameters of a kerasweights search, drawn from the registry.

    Args:
        models: Which model kinds to search: any of ``"conv"`` (digits as
            8x8 images) and ``"recurrent"`` (digits as 8 rows of 8 pixels).
        initializers: Initializer names to search (plugin short or
            registered names, or the Keras built-ins ``"glorot_uniform"``,
            ``"he_normal"``, ``"orthogonal"``); ``None`` for every
            registered initializer plus the Keras baselines.
        cells: Recurrent layer names to search (plugin names, ``"lstm"``,
            ``"gru"``); ``None`` for every registered recurrent plugin plus
            LSTM and GRU.
        extra_initializers: ``{name: class}`` of initializer classes to add
            without registering them (e.g. while developing a plugin).
        extra_cells: ``{name: class}`` of recurrent layer classes to add.
        conv_blocks: Choices for the number of convolution layers.
        filters: Choices for the filters of the first convolution layer
            (later layers double it).
        recurrent_layers: Choices for the number of stacked recurrent
            layers.
        units: Choices for the units of each recurrent layer.
        dense_units: Choices for the hidden dense layer of conv models.
        dropout: Choices for the dropout rate.
        learning_rate: Choices for Adam's learning rate.
        bias_initializers: Names of the initializers to search for the gate
            biases of recurrent layers whose gate layout is known (Keras'
            ``lstm`` and ``gru``, and every cell class that declares a
            ``gate_layout``); ``None`` for every registered plugin whose
            ``plugin_targets`` include ``"bias"`` (such as ``chrono``) plus
            ``"default"`` (the layer's own bias initializer). ``[]`` leaves
            the biases out of the space.

    Raises:
        PluginNotFoundError: A name in ``initializers`` or ``cells`` is
            neither installed nor a Keras baseline; the message names the
            closest installed plugins.
        InvalidArgumentError, InvalidTypeError: Another argument is out of
            range.

    Example:

    >>> space = SearchSpace(models=["recurrent"], cells=["gru"])
    >>> space.cell_names
    ['gru']
    """

    def __init__(
        self,
        models=MODEL_KINDS,
        initializers=None,
        cells=None,
        extra_initializers=None,
        extra_cells=None,
        conv_blocks=(1, 2),
        filters=(8, 16),
        recurrent_layers=(1, 2),
        units=(16, 32),
        dense_units=(32, 64),
        dropout=(0.0, 0.2),
        learning_rate=(0.003, 0.01),
        bias_initializers=None,
    ):
        self._arguments = {
            "models": models,
            "initializers": initializers,
            "cells": cells,
            "extra_initializers": extra_initializers,
            "extra_cells": extra_cells,
            "conv_blocks": conv_blocks,
            "filters": filters,
            "recurrent_layers": recurrent_layers,
            "units": units,
            "dense_units": dense_units,
            "dropout": dropout,
            "learning_rate": learning_rate,
            "bias_initializers": bias_initializers,
        }
        if isinstance(models, str):
            models = (models,)
        models = tuple(models)
        if not models or any(m not in MODEL_KINDS for m in models):
            raise InvalidArgumentError(
                f"`models` must be a non-empty subset of {list(MODEL_KINDS)}. "
                f"Received: models={models!r}"
            )
        self.models = tuple(m for m in MODEL_KINDS if m in models)
        self.conv_blocks = _check_choices("conv_blocks", conv_blocks, int, 1)
        self.filters = _check_choices("filters", filters, int, 1)
        self.recurrent_layers = _check_choices(
            "recurrent_layers", recurrent_layers, int, 1
        )
        self.units = _check_choices("units", units, int, 1)
        self.dense_units = _check_choices("dense_units", dense_units, int, 1)
        self.dropout = _check_choices("dropout", dropout, float, 0.0, 0.95)
        self.learning_rate = _check_choices(
            "learning_rate", learning_rate, float, 1e-12
        )
        if any(v <= 0 for v in self.learning_rate):
            raise InvalidArgumentError(
                "`learning_rate` must hold positive values. "
                f"Received: learning_rate={self.learning_rate!r}"
            )
        self._initializers = self._collect_initializers(
            initializers, extra_initializers
        )
        self._cells = self._collect_cells(cells, extra_cells)
        self._biases = self._collect_biases(bias_initializers)
        for slot in self.slots:
            if not self.initializer_names(slot):
                raise InvalidArgumentError(
                    f"No chosen initializer can fill the {slot!r} slot; "
                    "expected at least one whose plugin_targets include it. "
                    f"Received: initializers={initializers!r}"
                )

    # -- collecting candidates -------------------------------------------

    @staticmethod
    def _initializer_candidate(name, cls, source):
        targets = getattr(cls, "plugin_targets", None)
        if targets is None:
            targets = SLOTS
        elif isinstance(targets, str):
            targets = (targets,)
        return Candidate(name, cls, source, tuple(targets))

    def _collect_initializers(self, names, extra):
        records = _plugin_records("initializer")
        candidates = {}
        if names is None:
            for key, targets in KERAS_INITIALIZERS.items():
                candidates[key] = Candidate(key, key, "keras", targets)
            for r in records:
                key = r.name if r.name not in candidates else r.registered_name
                candidates[key] = self._initializer_candidate(
                    key, r.obj, "plugin"
                )
        else:
            import kerasweights

            if isinstance(names, str):
                names = [names]
            for name in names:
                if name in KERAS_INITIALIZERS:
                    candidates[name] = Candidate(
                        name, name, "keras", KERAS_INITIALIZERS[name]
                    )
                    continue
                try:
                    r = kerasweights.get_plugin(name, kind="initializer")
                except (PluginNotFoundError, InvalidArgumentError):
                    raise PluginNotFoundError(
                        _unknown(
                            "initializer", name, records, KERAS_INITIALIZERS
                        )
                    ) from None
                candidates[r.name] = self._initializer_candidate(
                    r.name, r.obj, "plugin"
                )
        for name, cls in (extra or {}).items():
            if not inspect.isclass(cls):
                raise InvalidTypeError(
                    "`extra_initializers` must map names to initializer "
                    f"classes. Received: {name!r}: {cls!r}"
                )
            candidates[name] = self._initializer_candidate(name, cls, "user")
        return list(candidates.values())

    def _collect_cells(self, names, extra):
        records = _plugin_records("recurrent")
        candidates = {}
        if names is None:
            for key in KERAS_CELLS:
                candidates[key] = Candidate(key, key, "keras")
            for r in records:
                key = r.name if r.name not in candidates else r.registered_name
                candidates[key] = Candidate(key, r.obj, "plugin")
        else:
            import kerasweights

            if isinstance(names, str):
                names = [names]
            for name in names:
                if name.lower() in KERAS_CELLS:
                    candidates[name.lower()] = Candidate(
                        name.lower(), name.lower(), "keras"
                    )
                    continue
                try:
                    r = kerasweights.get_plugin(name, kind="recurrent")
                except (PluginNotFoundError, InvalidArgumentError):
                    raise PluginNotFoundError(
                        _unknown("recurrent", name, records, KERAS_CELLS)
                    ) from None
                candidates[r.name] = Candidate(r.name, r.obj, "plugin")
        for name, cls in (extra or {}).items():
            if not inspect.isclass(cls):
                raise InvalidTypeError(
                    "`extra_cells` must map names to recurrent layer classes. "
                    f"Received: {name!r}: {cls!r}"
                )
            candidates[name] = Candidate(name, cls, "user")
        if "recurrent" in self.models and not candidates:
            raise InvalidArgumentError(
                "`cells` must name at least one recurrent layer. "
                f"Received: cells={names!r}"
            )
        return list(candidates.values())

    def _collect_biases(self, names):
        records = [
            r
            for r in _plugin_records("initializer")
            if "bias" in (getattr(r.obj, "plugin_targets", None) or ())
        ]
        if names is None:
            out = [Candidate("default", None, "keras", ("recurrent_bias",))]
            for r in records:
                out.append(
                    Candidate(r.name, r.obj, "plugin", ("recurrent_bias",))
                )
            return out
        if isinstance(names, str):
            names = [names]
        out = []
        known = {r.name: r for r in records}
        known.update({r.registered_name: r for r in records})
        for name in names:
            if name == "default":
                out.append(
                    Candidate("default", None, "keras", ("recurrent_bias",))
                )
            elif name in known:
                r = known[name]
                out.append(
                    Candidate(r.name, r.obj, "plugin", ("recurrent_bias",))
                )
            else:
                raise PluginNotFoundError(
                    _unknown("bias initializer", name, records, ("default",))
                )
        return out

    def arguments(self):
        """The constructor arguments this space was built from."""
        return dict(self._arguments)

    # -- what the space holds --------------------------------------------

    @property
    def slots(self):
        """The initializer slots the chosen model kinds use."""
        used = {"dense_kernel"}
        if "conv" in self.models:
            used.add("conv_kernel")
        if "recurrent" in self.models:
            used.add("recurrent_kernel")
        return [s for s in SLOTS if s in used]

    def initializers(self, slot):
        """The `Candidate` initializers that may fill ``slot``."""
        return [c for c in self._initializers if slot in c.targets]

    def initializer_names(self, slot):
        """The names of the initializers that may fill ``slot``."""
        return [c.name for c in self.initializers(slot)]

    @property
    def cells(self):
        """The `Candidate` recurrent layers."""
        return list(self._cells)

    @property
    def cell_names(self):
        """The names of the recurrent layers in the space."""
        return [c.name for c in self._cells]

    def describe(self):
        """A JSON-ready description of the space."""
        return {
            "models": list(self.models),
            "initializers": {s: self.initializer_names(s) for s in self.slots},
            "cells": self.cell_names if "recurrent" in self.models else [],
            "conv_blocks": list(self.conv_blocks),
            "filters": list(self.filters),
            "recurrent_layers": list(self.recurrent_layers),
            "units": list(self.units),
            "dense_units": list(self.dense_units),
            "dropout": list(self.dropout),
            "learning_rate": list(self.learning_rate),
            "bias_initializers": self.bias_names
            if "recurrent" in self.models
            else [],
        }

    @property
    def bias_names(self):
        """The names of the recurrent gate-bias initializers searched."""
        return [c.name for c in self._biases]

    def gated_cell_names(self):
        """Cells whose gate layout is known, so a bias slot applies."""
        return [c.name for c in self._cells if _gate_layout(c) is not None]

    # -- drawing from a trial's hyperparameters -------------------------

    def choose_initializer(self, hp, slot):
        """Register the ``slot`` choice in ``hp`` and return a factory.

        Args:
            hp: The trial's `keras_tuner.HyperParameters`.
            slot: One of `SLOTS`.

        Returns:
            A function of no arguments that returns a fresh initializer
            (one per layer, so no two layers share a seeded instance), or
            ``None`` when the slot is inactive under the current
            conditions.
        """
        import keras

        candidates = self.initializers(slot)
        parent = slot_hyperparameter(slot)
        chosen = hp.Choice(parent, [c.name for c in candidates])
        kwargs = {}
        for c in candidates:
            if not c.tunable:
                continue
            with hp.conditional_scope(parent, [c.name]):
                drawn = c.arguments(hp, parent)
            if c.name == chosen:
                kwargs = drawn
        if chosen is None:  # the slot is inactive in this trial
            return None
        (pick,) = [c for c in candidates if c.name == chosen]
        if pick.source == "keras":
            return lambda: keras.initializers.get(pick.obj)
        return lambda: pick.obj(**kwargs)

    def choose_cell(self, hp):
        """Register the recurrent layer choice in ``hp``.

        Returns:
            A function ``(units, return_sequences, kernel_initializer,
            recurrent_initializer) -> layer``, or ``None`` when recurrent
            models are inactive under the current conditions.
        """
        import keras

        chosen = hp.Choice("cell", self.cell_names)
        kwargs = {}
        for c in self._cells:
            if not c.tunable:
                continue
            with hp.conditional_scope("cell", [c.name]):
                drawn = c.arguments(hp, "cell")
            if c.name == chosen:
                kwargs = drawn
        bias = self._choose_bias(hp)
        if chosen is None:  # recurrent models are inactive in this trial
            return None
        (pick,) = [c for c in self._cells if c.name == chosen]
        layout = _gate_layout(pick)
        if bias is not None and layout is not None:
            made = bias(layout)
            if made is not None:
                kwargs = {**kwargs, "bias_initializer": made}
                if pick.name == "lstm":
                    # Keras would otherwise call the initializer on a
                    # quarter of the bias and add ones to the forget gate.
                    kwargs["unit_forget_bias"] = False
        if pick.source == "keras":
            cls = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[pick.obj]
        else:
            cls = pick.obj

        def make(units, return_sequences, kernel_init, recurrent_init):
            return cls(
                units,
                return_sequences=return_sequences,
                kernel_initializer=kernel_init,
                recurrent_initializer=recurrent_init,
                **kwargs,
            )

        return make

    def _choose_bias(self, hp):
        """Register ``bias_init`` (for gated cells); return a factory."""
        gated = self.gated_cell_names()
        if not self._biases or not gated:
            return None
        with hp.conditional_scope("cell", gated):
            chosen = hp.Choice("bias_init", self.bias_names)
            kwargs = {}
            for c in self._biases:
                if not c.tunable:
                    continue
                with hp.conditional_scope("bias_init", [c.name]):
                    drawn = c.arguments(hp, "bias_init")
                if c.name == chosen:
                    kwargs = drawn
        if chosen is None:
            return None
        (pick,) = [c for c in self._biases if c.name == chosen]
        if pick.obj is None:
            return lambda layout: None

        def make(layout):
            # Keras' cells are named by layout; kerasweights' cells declare
            # theirs and hand it to the initializer (`for_gate_layout`).
            params = inspect.signature(pick.obj.__init__).parameters
            extra = {}
            if isinstance(layout, str) and "gate_layout" in params:
                extra["gate_layout"] = layout
            return pick.obj(**kwargs, **extra)

        return make


def _gate_layout(candidate):
    """The gate layout name of a cell candidate, or ``None``."""
    from kerasweights.initializers.recurrent import GATE_LAYOUTS

    if candidate.source == "keras":
        return candidate.name
    # A cell class that declares its gate layout (a tuple of roles) hands
    # it to a layout-aware bias initializer itself.
    layout = getattr(candidate.obj, "gate_layout", None)
    if isinstance(layout, tuple | list):
        return tuple(layout)
    if isinstance(layout, str):
        return layout
    name = getattr(candidate.obj, "plugin_name", None) or candidate.name
    return name if name in GATE_LAYOUTS else None


def slot_hyperparameter(slot):
    """The hyperparameter name of an initializer slot, e.g. ``dense_init``."""
    return f"{slot.split('_')[0]}_init"


def _unknown(kind, name, records, builtins):
    import difflib

    known = [r.name for r in records] + list(builtins)
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.5)
    hint = f" Closest: {', '.join(close)}." if close else ""
    return (
        f"No installed {kind} plugin or Keras baseline is called {name!r}; "
        f"expected one of {sorted(known)}.{hint}"
    )
