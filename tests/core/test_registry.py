"""The registry as installed: records, lookup and the plugins command."""

import json
import subprocess
import sys

import keras
import pytest

import kerasweights
from kerasweights import registry
from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import PluginNotFoundError

RECORDS = kerasweights.plugins()


def test_public_api_is_pinned():
    assert sorted(kerasweights.__all__) == sorted(
        [
            "__version__",
            "errors",
            "saving",
            "PluginRecord",
            "custom_objects",
            "get_plugin",
            "kinds",
            "load_plugins",
            "plugins",
        ]
    )
    for name in kerasweights.__all__:
        assert hasattr(kerasweights, name)


def test_every_kind_of_the_foundation_is_installed():
    assert {"initializer", "recurrent", "callback", "regularizer"} <= set(
        kerasweights.kinds()
    )


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.registered_name)
def test_record_fields(record):
    assert record.kind in registry.KNOWN_KINDS or record.kind.isidentifier()
    package, bare = record.registered_name.split(">", 1)
    assert package and bare
    assert package != "Custom"
    if record.distribution == "kerasweights":
        assert package == "kerasweights"
    assert record.summary, "every plugin needs a one-line summary"
    assert "\n" not in record.summary
    assert keras.saving.get_registered_object(record.registered_name) is (
        record.obj
    )
    assert keras.saving.get_registered_name(record.obj) == (
        record.registered_name
    )


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.registered_name)
def test_lookup_by_every_spelling(record):
    assert kerasweights.get_plugin(record.registered_name) is record
    assert kerasweights.get_plugin(record.name, kind=record.kind) is record
    assert (
        kerasweights.get_plugin(record.name.upper(), kind=record.kind) is record
    )
    assert (
        kerasweights.get_plugin(
            record.registered_name.split(">", 1)[1], kind=record.kind
        )
        is record
    )


def test_registered_name_lookup_is_exact():
    record = RECORDS[0]
    with pytest.raises(PluginNotFoundError):
        kerasweights.get_plugin(record.registered_name.upper())


def test_unknown_name_lists_closest_matches():
    record = kerasweights.get_plugin("mgu", kind="recurrent")
    with pytest.raises(PluginNotFoundError, match="Closest: mgu") as info:
        kerasweights.get_plugin("mgy", kind="recurrent")
    assert isinstance(info.value, ValueError)
    assert record.name in str(info.value)


def test_unknown_kind_names_the_kinds():
    with pytest.raises(InvalidArgumentError, match="kind='bogus'"):
        kerasweights.plugins("bogus")
    assert kerasweights.plugins("constraint") == [
        r for r in RECORDS if r.kind == "constraint"
    ]


def test_snake_case_names():
    assert registry.snake_case("GainVarianceScaling") == (
        "gain_variance_scaling"
    )
    assert registry.snake_case("LayerNormLSTM") == "layer_norm_lstm"
    assert registry.snake_case("MGU") == "mgu"
    assert registry.snake_case("ZerO") == "zer_o"


def test_plugins_command_json_lists_every_record():
    out = subprocess.run(
        [sys.executable, "-m", "kerasweights.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [d["registered_name"] for d in listed] == [
        r.registered_name for r in RECORDS
    ]
    for entry in listed:
        assert {
            "kind",
            "name",
            "registered_name",
            "distribution",
            "summary",
        } <= set(entry)
    assert out.stderr == ""


def test_plugins_command_bad_kind_is_one_line_exit_2():
    out = subprocess.run(
        [sys.executable, "-m", "kerasweights.cli", "plugins", "--kind", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "nope" in lines[0] and "initializer" in lines[0]
