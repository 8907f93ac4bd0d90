"""Plugin records, entry-point discovery and name resolution.

Every component of kerasweights, built-in or third party, is found through
the entry-point group ``kerasweights.plugins``. An entry point may name

* a class: one plugin whose short name is the entry point's name, or
* a module: one plugin for every class in the module's ``__all__`` that
  sets a ``plugin_kind`` attribute; its short name is the class's
  ``plugin_name`` attribute, or the class name in snake case.

A plugin class declares its kind with a ``plugin_kind`` class attribute
(``"initializer"``, ``"recurrent"``, ``"callback"``, ``"regularizer"`` or
any later kind). A class that does not is classified from its Keras base
class where that is unambiguous.

Every plugin must be registered for Keras serialization under a package
prefix (``kerasweights>Name`` for ours, ``yourpackage>Name`` for a third
party), so that a saved model finds it again after ``import kerasweights``.
"""

import dataclasses
import difflib
import importlib.metadata
import inspect
import re
import sys
import threading
import types
import warnings

import keras

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError
from kerasweights.errors import PluginConflictError
from kerasweights.errors import PluginLoadWarning
from kerasweights.errors import PluginNotFoundError

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_KINDS",
    "snake_case",
    "PluginRecord",
    "load_plugins",
    "plugins",
    "get_plugin",
    "kinds",
    "custom_objects",
]

ENTRY_POINT_GROUP = "kerasweights.plugins"

# Kinds we infer from a Keras base class when ``plugin_kind`` is not set.
_BASE_KINDS = (
    (keras.initializers.Initializer, "initializer"),
    (keras.layers.RNN, "recurrent"),
    (keras.callbacks.Callback, "callback"),
    (keras.regularizers.Regularizer, "regularizer"),
)

#: The kinds the design names; `plugins(kind)` accepts these even when no
#: plugin of that kind is installed, plus any kind an installed plugin uses.
KNOWN_KINDS = (
    "initializer",
    "recurrent",
    "callback",
    "regularizer",
    "constraint",
    "compressor",
)

_lock = threading.Lock()
_records = None
_warned = set()
# Modules of entry points skipped because they were still being imported
# (a plugin imported before kerasweights that imports kerasweights at its
# top). The next lookup discovers again once they have finished.
_pending = set()


@dataclasses.dataclass(frozen=True)
class PluginRecord:
    """What kerasweights knows about one installed plugin.

    Attributes:
        kind: The plugin kind, e.g. ``"initializer"`` or ``"recurrent"``.
        name: The short name, unique within its kind; lookups ignore case,
            underscores and hyphens.
        registered_name: The Keras serialization name, ``package>Name``.
        distribution: The installed distribution that provides it.
        summary: One line saying what it is.
        entry_point: The entry point it was found through.
        obj: The plugin class itself.
    """

    kind: str
    name: str
    registered_name: str
    distribution: str
    summary: str
    entry_point: str
    obj: object = dataclasses.field(repr=False, compare=False)

    def to_dict(self):
        """The JSON-ready fields (everything but the class itself)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "registered_name": self.registered_name,
            "distribution": self.distribution,
            "summary": self.summary,
            "entry_point": self.entry_point,
        }


def snake_case(name):
    """``LayerNormGRU`` -> ``layer_norm_gru``: a class's default short name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def _normalise(name):
    return re.sub(r"[\s_\-]", "", name).lower()


def _summary(cls):
    text = getattr(cls, "plugin_summary", None) or inspect.getdoc(cls) or ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _kind_of(cls):
    kind = cls.__dict__.get("plugin_kind") or getattr(cls, "plugin_kind", None)
    if kind:
        return kind
    for base, base_kind in _BASE_KINDS:
        if issubclass(cls, base):
            return base_kind
    return None


def _warn_once(key, message):
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(message, PluginLoadWarning, stacklevel=3)


def _distribution_name(entry_point):
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown"
    return dist.metadata["Name"] or dist.name


def _initializing(module_name):
    """Whether this module or a parent package is still being imported."""
    parts = module_name.split(".")
    for end in range(1, len(parts) + 1):
        name = ".".join(parts[:end])
        if name == "kerasweights":
            # Discovery itself runs while our package is being imported;
            # its built-in families import fine at that point.
            continue
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        # importlib marks a module's spec while its body runs.
        if getattr(spec, "_initializing", False):
            return True
    return False


def _classes_of(entry_point, loaded):
    """(short name, class) pairs an entry point contributes."""
    if inspect.isclass(loaded):
        return [(entry_point.name, loaded)]
    if isinstance(loaded, types.ModuleType):
        found = []
        for attr in getattr(loaded, "__all__", ()):
            cls = getattr(loaded, attr, None)
            if inspect.isclass(cls) and "plugin_kind" in vars(cls):
                name = vars(cls).get("plugin_name") or snake_case(cls.__name__)
                found.append((name, cls))
        return found
    raise TypeError(
        "an entry point must name a plugin class or a module of them, "
        f"not {type(loaded).__name__}"
    )


def _make_record(entry_point, dist_name, short_name, cls):
    kind = _kind_of(cls)
    if kind is None:
        raise TypeError(
            f"{cls.__qualname__} sets no `plugin_kind` and is not a Keras "
            "initializer, RNN layer, callback or regularizer"
        )
    registered = keras.saving.get_registered_name(cls)
    if ">" not in registered:
        raise TypeError(
            f"{cls.__qualname__} is not registered for Keras serialization; "
            "decorate it with keras.saving.register_keras_serializable("
            "package=...)"
        )
    package = registered.split(">", 1)[0]
    if package == "Custom":
        raise TypeError(
            f"{cls.__qualname__} is registered as {registered!r}; register it "
            "under its own package name, not Keras' default 'Custom'"
        )
    if package == "kerasweights" and dist_name != "kerasweights":
        raise TypeError(
            f"{cls.__qualname__} from {dist_name!r} claims the registered "
            f"name {registered!r}; third-party plugins register under their "
            "own package name"
        )
    return PluginRecord(
        kind=kind,
        name=short_name,
        registered_name=registered,
        distribution=dist_name,
        summary=_summary(cls),
        entry_point=f"{entry_point.name} = {entry_point.value}",
        obj=cls,
    )


def _discover():
    _pending.clear()
    records = []
    by_registered = {}
    by_kind_name = {}
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(eps, key=lambda e: (e.value, e.name)):
        dist_name = _distribution_name(ep)
        label = f"{ep.name} = {ep.value} (from {dist_name})"
        if _initializing(ep.module):
            _pending.add(ep.module)
            continue
        try:
            loaded = ep.load()
            pairs = _classes_of(ep, loaded)
            new = [_make_record(ep, dist_name, n, c) for n, c in pairs]
        except Exception as exc:  # a broken plugin must not stop the rest
            _warn_once(
                label,
                f"kerasweights could not load the plugin entry point "
                f"{label}: {type(exc).__name__}: {exc}",
            )
            continue
        for record in new:
            seen = by_registered.get(record.registered_name)
            if seen is not None:
                if seen.obj is record.obj:
                    continue
                raise PluginConflictError(
                    f"Two plugins claim the registered name "
                    f"{record.registered_name!r}: {seen.obj.__module__}."
                    f"{seen.obj.__qualname__} from distribution "
                    f"{seen.distribution!r} and {record.obj.__module__}."
                    f"{record.obj.__qualname__} from distribution "
                    f"{record.distribution!r}. Uninstall one of them."
                )
            key = (record.kind, _normalise(record.name))
            if key in by_kind_name:
                other = by_kind_name[key]
                raise PluginConflictError(
                    f"Two {record.kind} plugins share the short name "
                    f"{record.name!r}: {other.registered_name!r} from "
                    f"distribution {other.distribution!r} and "
                    f"{record.registered_name!r} from distribution "
                    f"{record.distribution!r}. Uninstall one of them."
                )
            by_registered[record.registered_name] = record
            by_kind_name[key] = record
            records.append(record)
    records.sort(key=lambda r: (r.kind, r.name))
    return records


def _register_bare_aliases(records):
    """Let files that name our classes without ``package>`` load (C03).

    Every class registered under the package prefix of an installed plugin
    also answers to its bare name, unless Keras already knows that bare name
    or two packages want it.
    """
    prefixes = {r.registered_name.split(">", 1)[0] for r in records}
    registry = keras.saving.get_custom_objects()
    wanted = {}
    for name, obj in list(registry.items()):
        if ">" not in name:
            continue
        package, bare = name.split(">", 1)
        if package in prefixes:
            wanted.setdefault(bare, []).append(obj)
    for bare, objs in wanted.items():
        if len(objs) == 1 and bare not in registry:
            registry[bare] = objs[0]


def load_plugins(reload=False):
    """Discover and import every installed plugin.

    ``import kerasweights`` calls this once, so every installed plugin is
    registered with Keras before a model is loaded. A plugin whose import
    fails is reported once with a `PluginLoadWarning` and skipped.

    Args:
        reload: Discover again, e.g. after installing a distribution in the
            running interpreter.

    Returns:
        The list of `PluginRecord`, sorted by kind and name.

    Raises:
        PluginConflictError: Two plugins claim the same registered name, or
            the same short name within a kind.
    """
    global _records
    with _lock:
        stale = _pending and not any(_initializing(m) for m in _pending)
        if _records is None or reload or stale:
            if reload:
                importlib.invalidate_caches()
            _records = _discover()
            _register_bare_aliases(_records)
        return list(_records)


def plugins(kind=None):
    """The installed plugins, optionally of one kind.

    Args:
        kind: A plugin kind such as ``"initializer"``; ``None`` for all.

    Returns:
        A list of `PluginRecord`, sorted by kind and name.

    Raises:
        InvalidArgumentError: ``kind`` is not the kind of any installed plugin.
    """
    records = load_plugins()
    if kind is None:
        return records
    known = sorted(set(KNOWN_KINDS) | {r.kind for r in records})
    if kind not in known:
        raise InvalidArgumentError(
            f"`kind` must be one of {known}. Received: kind={kind!r}"
        )
    return [r for r in records if r.kind == kind]


def kinds():
    """The sorted list of plugin kinds that are installed."""
    return sorted({r.kind for r in load_plugins()})


def get_plugin(name, kind=None):
    """Look a plugin up by its short or registered name.

    The short name matches ignoring case, underscores and hyphens
    (``"DeltaOrthogonal"``, ``"delta_orthogonal"``); the registered name
    (``"kerasweights>DeltaOrthogonal"``) must match exactly.

    Args:
        name: The short or registered name.
        kind: Restrict the lookup to one kind.

    Returns:
        The matching `PluginRecord`.

    Raises:
        PluginNotFoundError: No plugin matches; the message lists the closest
            names.
        InvalidTypeError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            "`name` must be a plugin's short or registered name (a str). "
            f"Received: name={name!r} of type {type(name).__name__}"
        )
    if not name:
        raise PluginNotFoundError(
            "`name` must be a non-empty plugin name. Received: name=''"
        )
    records = plugins() if kind is None else plugins(kind)
    if ">" in name:
        for record in records:
            if record.registered_name == name:
                return record
    else:
        wanted = _normalise(name)
        matches = [r for r in records if _normalise(r.name) == wanted]
        if not matches:
            matches = [
                r
                for r in records
                if _normalise(r.registered_name.split(">", 1)[1]) == wanted
            ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            options = ", ".join(r.registered_name for r in matches)
            raise PluginNotFoundError(
                f"The name {name!r} matches plugins of several kinds "
                f"({options}); pass `kind` or a registered name."
            )
    candidates = [r.name for r in records] + [
        r.registered_name for r in records
    ]
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(
            name.lower(), [c.lower() for c in candidates], n=3, cutoff=0.5
        )
    what = f"{kind} plugin" if kind else "plugin"
    hint = f" Closest: {', '.join(close)}." if close else ""
    raise PluginNotFoundError(
        f"No installed {what} is called {name!r}.{hint} "
        "Run `kerasweights plugins` to list them."
    )


def custom_objects():
    """A ``{registered_name: class}`` dict of every installed plugin."""
    return {r.registered_name: r.obj for r in load_plugins()}
