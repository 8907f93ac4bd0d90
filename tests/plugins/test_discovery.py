"""Discovery of third-party plugins, with fake distributions on the path.

Each fake distribution is what pip leaves behind: a ``name-1.0.dist-info``
folder (``METADATA`` and ``entry_points.txt``) next to its module. The
folders are put on the path of a fresh interpreter, which then imports
kerasweights: a broken plugin, a clash of registered names, and lookups
by every spelling are checked there.
"""

import textwrap

import pytest

GOOD = '''
import keras

__all__ = ["FakeScale", "FakePenalty", "NotAPlugin"]


@keras.saving.register_keras_serializable(package="fake_good")
class FakeScale(keras.initializers.Initializer):
    """Constant initializer of the discovery tests.

    Second line, not part of the summary.
    """

    plugin_kind = "initializer"

    def __init__(self, scale=1.0):
        self.scale = scale

    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, self.scale, dtype=dtype)

    def get_config(self):
        return {"scale": self.scale}


@keras.saving.register_keras_serializable(package="fake_good")
class FakePenalty(keras.regularizers.Regularizer):
    """L1 penalty of the discovery tests."""

    plugin_kind = "regularizer"
    plugin_name = "fake_l1"

    def __call__(self, x):
        return keras.ops.sum(keras.ops.abs(x))

    def get_config(self):
        return {}


class NotAPlugin:
    """In __all__ but sets no plugin_kind: not a plugin."""


@keras.saving.register_keras_serializable(package="fake_good")
class FakeWatcher(keras.callbacks.Callback):
    """Callback of the discovery tests, found through a class entry point."""

    plugin_kind = "callback"

    def get_config(self):
        return {}
'''

BROKEN = """
raise RuntimeError("fake_broken needs libfoo 9.9")
"""

TWIN = '''
import keras


@keras.saving.register_keras_serializable(package="fake_twin", name="Twin")
class Twin(keras.initializers.Initializer):
    """One of two classes that claim the same registered name."""

    plugin_kind = "initializer"

    def __call__(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype)

    def get_config(self):
        return {}
'''

SELF_IMPORT = '''
import keras

import kerasweights  # a plugin using kerasweights' own helpers at the top

__all__ = ["CLASS_NAME"]


@keras.saving.register_keras_serializable(package="MODULE")
class CLASS_NAME(keras.initializers.Initializer):
    """Plugin that imports kerasweights while being imported."""

    plugin_kind = "initializer"

    def __call__(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype)

    def get_config(self):
        return {}
'''


def make_distribution(site, name, modules, entry_points):
    """Write an installed distribution into the folder ``site``.

    Args:
        site: The folder that plays site-packages.
        name: The distribution name, e.g. ``"fake-good"``.
        modules: ``{module name: source}``.
        entry_points: Lines of the ``kerasweights.plugins`` group.
    """
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
        f"Summary: {name} for the kerasweights discovery tests\n"
    )
    (info / "entry_points.txt").write_text(
        "[kerasweights.plugins]\n" + "\n".join(entry_points) + "\n"
    )
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_sites")
    make_distribution(
        root / "main",
        "fake-good",
        {"fake_good": GOOD},
        ["fakegood = fake_good", "watcher = fake_good:FakeWatcher"],
    )
    make_distribution(
        root / "main",
        "fake-broken",
        {"fake_broken": BROKEN},
        ["broken = fake_broken"],
    )
    make_distribution(
        root / "twins",
        "fake-twin-a",
        {"fake_twin_a": TWIN},
        ["twin_a = fake_twin_a:Twin"],
    )
    make_distribution(
        root / "twins",
        "fake-twin-b",
        {"fake_twin_b": TWIN},
        ["twin_b = fake_twin_b:Twin"],
    )
    # The same plugin code behind a module and behind a class entry point.
    for module, cls, entry in [
        ("fake_self_module", "SelfModule", "fake_self_module"),
        ("fake_self_class", "SelfClass", "fake_self_class:SelfClass"),
    ]:
        source = SELF_IMPORT.replace("CLASS_NAME", cls)
        make_distribution(
            root / "self",
            module.replace("_", "-"),
            {module: source.replace("MODULE", module)},
            [f"{module.split('_')[-1]}_entry = {entry}"],
        )
    return root


LOOKUPS = [
    "FakeScale",
    "fake_scale",
    "FAKE_SCALE",
    "fake-scale",
    "fake_l1",
    "FAKE-L1",
    "FakePenalty",
    "WATCHER",
    "fake_good>FakeScale",
    "fake_good>fakescale",
    "FAKE_GOOD>FakeScale",
    "fake_scal",
    "fake_good>FakeScal",
    "no_such_plugin_at_all",
]

DISCOVER = r"""
import json, sys, warnings

with warnings.catch_warnings(record=True) as at_import:
    warnings.simplefilter("always")
    import kerasweights

import keras
from kerasweights.errors import PluginConflictError
from kerasweights.errors import PluginLoadWarning
from kerasweights.errors import PluginNotFoundError


def ours(caught):
    return [str(w.message) for w in caught
            if issubclass(w.category, PluginLoadWarning)]


with warnings.catch_warnings(record=True) as at_reload:
    warnings.simplefilter("always")
    kerasweights.load_plugins(reload=True)


def lookup(name):
    try:
        return ["found", kerasweights.get_plugin(name).registered_name]
    except PluginNotFoundError as exc:
        return ["PluginNotFoundError", str(exc)]


out = {
    "import_warnings": ours(at_import),
    "reload_warnings": ours(at_reload),
    "fake": [r.to_dict() for r in kerasweights.plugins()
             if r.distribution.startswith("fake-")],
    "builtins": len([r for r in kerasweights.plugins()
                     if r.distribution == "kerasweights"]),
    "keras_knows": keras.saving.get_registered_object(
        "fake_good>FakeScale") is not None,
    "lookups": {name: lookup(name) for name in LOOKUPS},
}

sys.path.append(TWINS)
try:
    kerasweights.load_plugins(reload=True)
    out["conflict"] = None
except PluginConflictError as exc:
    out["conflict"] = [type(exc).__name__, isinstance(exc, ValueError),
                       str(exc)]
out["after_conflict"] = sorted(
    r.registered_name for r in kerasweights.plugins()
    if r.distribution.startswith("fake-")
)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def discovered(sites, run_checks):
    code = DISCOVER.replace("LOOKUPS", repr(LOOKUPS)).replace(
        "TWINS", repr(str(sites / "twins"))
    )
    result, _ = run_checks(code, [sites / "main"])
    return result


def test_broken_plugin_is_reported_once_and_the_rest_load(discovered):
    warnings = discovered["import_warnings"]

    assert len(warnings) == 1, warnings
    message = warnings[0]
    assert "broken = fake_broken" in message
    assert "fake-broken" in message
    assert "RuntimeError" in message
    assert "fake_broken needs libfoo 9.9" in message
    # Reported once: discovering again does not repeat it.
    assert discovered["reload_warnings"] == []
    # The entry points sorted after the broken one still load.
    assert discovered["builtins"] > 0
    assert discovered["keras_knows"] is True


def test_records_of_module_and_class_entry_points(discovered):
    records = {r["registered_name"]: r for r in discovered["fake"]}

    assert set(records) == {
        "fake_good>FakeScale",
        "fake_good>FakePenalty",
        "fake_good>FakeWatcher",
    }
    scale = records["fake_good>FakeScale"]
    assert scale["kind"] == "initializer"
    assert scale["name"] == "fake_scale"
    assert scale["distribution"] == "fake-good"
    assert scale["summary"] == "Constant initializer of the discovery tests."
    assert scale["entry_point"] == "fakegood = fake_good"
    penalty = records["fake_good>FakePenalty"]
    assert (penalty["kind"], penalty["name"]) == ("regularizer", "fake_l1")
    watcher = records["fake_good>FakeWatcher"]
    assert (watcher["kind"], watcher["name"]) == ("callback", "watcher")
    assert watcher["entry_point"] == "watcher = fake_good:FakeWatcher"


@pytest.mark.parametrize(
    "name, registered",
    [
        ("FakeScale", "fake_good>FakeScale"),
        ("fake_scale", "fake_good>FakeScale"),
        ("FAKE_SCALE", "fake_good>FakeScale"),
        ("fake-scale", "fake_good>FakeScale"),
        ("fake_l1", "fake_good>FakePenalty"),
        ("FAKE-L1", "fake_good>FakePenalty"),
        ("FakePenalty", "fake_good>FakePenalty"),
        ("WATCHER", "fake_good>FakeWatcher"),
        ("fake_good>FakeScale", "fake_good>FakeScale"),
    ],
)
def test_short_names_ignore_case_registered_names_match(
    discovered, name, registered
):
    assert discovered["lookups"][name] == ["found", registered]


@pytest.mark.parametrize(
    "name, closest",
    [
        ("fake_good>fakescale", "fake_good>FakeScale"),
        ("FAKE_GOOD>FakeScale", "fake_good>FakeScale"),
        ("fake_scal", "fake_scale"),
        ("fake_good>FakeScal", "fake_good>FakeScale"),
    ],
)
def test_unknown_names_raise_with_the_closest_matches(
    discovered, name, closest
):
    kind, message = discovered["lookups"][name]

    assert kind == "PluginNotFoundError"
    assert repr(name) in message
    assert closest in message.split("Closest:", 1)[1]


def test_name_with_nothing_close_still_says_what_to_do(discovered):
    kind, message = discovered["lookups"]["no_such_plugin_at_all"]

    assert kind == "PluginNotFoundError"
    assert "'no_such_plugin_at_all'" in message
    assert "kerasweights plugins" in message


def test_two_distributions_claiming_one_registered_name_conflict(discovered):
    name, is_value_error, message = discovered["conflict"]

    assert name == "PluginConflictError"
    assert is_value_error is True
    assert "fake_twin>Twin" in message
    assert "fake-twin-a" in message
    assert "fake-twin-b" in message
    # The failed rediscovery leaves the earlier records in place.
    assert discovered["after_conflict"] == [
        "fake_good>FakePenalty",
        "fake_good>FakeScale",
        "fake_good>FakeWatcher",
    ]


SELF_FIRST = r"""
import json, warnings

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import FIRST
    import kerasweights

from kerasweights.errors import PluginLoadWarning

print(json.dumps({
    "warnings": [str(w.message) for w in caught
                 if issubclass(w.category, PluginLoadWarning)],
    "registered": [r.registered_name for r in kerasweights.plugins()],
}))
"""


@pytest.mark.parametrize(
    "first, registered",
    [
        ("fake_self_module", "fake_self_module>SelfModule"),
        ("fake_self_class", "fake_self_class>SelfClass"),
    ],
    ids=["module-entry-point", "class-entry-point"],
)
def test_plugin_that_imports_kerasweights_and_is_imported_first(
    sites, run_checks, first, registered
):
    # A user imports the plugin before kerasweights; the plugin imports
    # kerasweights at its top, whose import discovers plugins while the
    # plugin module is still half initialised.
    code = SELF_FIRST.replace("FIRST", first)

    result, _ = run_checks(code, [sites / "self"])

    # Discovery skips the half-imported module and finds it on the next
    # lookup, once its import has finished; nothing is reported broken.
    assert registered in result["registered"]
    assert result["warnings"] == []
