"""Search spaces read from a small YAML or Python file (``--space FILE``).

A YAML file is a mapping whose keys are `SearchSpace` arguments::

    models: [recurrent]
    cells: [gru, janet]           # restrict: only these cells
    initializers: null            # every installed initializer
    units: [16, 32, 64]
    extra_initializers:           # extend: a class by import path
      scaled: my_package.inits:ScaledNormal

A Python file defines ``SPACE``: either a `SearchSpace` or a dict of the
same keys, where ``extra_initializers`` and ``extra_cells`` may map names
to classes defined in the file itself. Every other name in the file is
ignored. Keys given on the command line (``--model``, ``--initializers``,
``--cells``) replace the file's.
"""

import importlib
import inspect
import os
import runpy

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import InvalidTypeError

__all__ = ["SPACE_KEYS", "load_space_file", "space_from_mapping"]

SPACE_KEYS = (
    "models",
    "initializers",
    "cells",
    "extra_initializers",
    "extra_cells",
    "conv_blocks",
    "filters",
    "recurrent_layers",
    "units",
    "dense_units",
    "dropout",
    "learning_rate",
    "bias_initializers",
)
_EXTRA_KEYS = ("extra_initializers", "extra_cells")


def _import_class(path, where):
    module_name, _, attr = str(path).partition(":")
    if not module_name or not attr:
        raise InvalidArgumentError(
            f"{where} must be 'module:Class'. Received: {path!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgumentError(
            f"{where}: cannot import module {module_name!r} ({exc}). "
            f"Received: {path!r}"
        ) from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise InvalidArgumentError(
            f"{where}: module {module_name!r} has no {attr!r}. "
            f"Received: {path!r}"
        ) from None
    if not inspect.isclass(obj):
        raise InvalidTypeError(
            f"{where} must name a class. Received: {path!r} is "
            f"{type(obj).__name__}"
        )
    return obj


def space_from_mapping(mapping, source="the space", **overrides):
    """A `SearchSpace` from a dict of its arguments.

    Args:
        mapping: ``{argument: value}``; ``extra_initializers`` and
            ``extra_cells`` values may be classes or ``"module:Class"``.
        source: Where the mapping came from, for error messages.
        **overrides: Arguments that replace the mapping's (``None`` values
            are ignored).

    Returns:
        A `SearchSpace`.

    Raises:
        InvalidArgumentError: An unknown key, or a bad value.
    """
    from kerasweights.tuning.space import SearchSpace

    if not isinstance(mapping, dict):
        raise InvalidArgumentError(
            f"{source} must be a mapping of SearchSpace arguments. "
            f"Received: {type(mapping).__name__}"
        )
    unknown = sorted(str(k) for k in mapping if k not in SPACE_KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"{source}: unknown key {unknown[0]!r}; expected keys among "
            f"{list(SPACE_KEYS)}"
        )
    kwargs = dict(mapping)
    for key in _EXTRA_KEYS:
        value = kwargs.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidTypeError(
                f"{source}: `{key}` must map names to classes or "
                f"'module:Class'. Received: {value!r}"
            )
        kwargs[key] = {
            str(name): cls
            if inspect.isclass(cls)
            else _import_class(cls, f"{source}: {key}.{name}")
            for name, cls in value.items()
        }
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SearchSpace(**kwargs)
    except (InvalidArgumentError, InvalidTypeError) as exc:
        raise type(exc)(f"{source}: {exc}") from None


def load_space_file(path, **overrides):
    """Read a `SearchSpace` from a ``.yaml``/``.yml`` or ``.py`` file.

    Args:
        path: The file.
        **overrides: `SearchSpace` arguments that replace the file's
            (``None`` values are ignored).

    Returns:
        A `SearchSpace`.

    Raises:
        InvalidArgumentError: The file is missing, unreadable, not YAML or
            Python, does not define a space, or the space is invalid; the
            message is one line naming the file.
    """
    path = os.fspath(path)
    where = f"--space {path}"
    if not os.path.isfile(path):
        raise InvalidArgumentError(
            f"{where}: no such file; expected a .yaml, .yml or .py file"
        )
    ext = os.path.splitext(path)[1].lower()
    if ext in (".yaml", ".yml"):
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                mapping = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise InvalidArgumentError(
                f"{where}: not valid YAML{line}: {problem}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(
                f"{where}: cannot read it ({exc})"
            ) from None
        if mapping is None:
            mapping = {}
        return space_from_mapping(mapping, where, **overrides)
    if ext == ".py":
        try:
            namespace = runpy.run_path(path, run_name="kerasweights_space")
        except Exception as exc:  # a user's file: report, do not crash
            text = " ".join(str(exc).split())[:200]
            raise InvalidArgumentError(
                f"{where}: running it raised {type(exc).__name__}: {text}"
            ) from None
        if "SPACE" not in namespace:
            raise InvalidArgumentError(
                f"{where}: expected the file to define SPACE (a SearchSpace "
                "or a dict of its arguments); it does not"
            )
        space = namespace["SPACE"]
        from kerasweights.tuning.space import SearchSpace

        if isinstance(space, SearchSpace):
            if any(v is not None for v in overrides.values()):
                space = space_from_mapping(
                    space.arguments(), where, **overrides
                )
            return space
        return space_from_mapping(space, where, **overrides)
    raise InvalidArgumentError(
        f"{where}: expected a .yaml, .yml or .py file. Received: {ext or 'no'} "
        "extension"
    )
