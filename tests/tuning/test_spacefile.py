"""``--space FILE``: a YAML or Python file restricts or extends the space."""

import textwrap

import keras
import pytest

from kerasweights.errors import InvalidArgumentError
from kerasweights.errors import PluginNotFoundError
from kerasweights.tuning import SearchSpace
from kerasweights.tuning.spacefile import load_space_file

_YAML = """\
models: [recurrent]
cells: [gru, janet]
initializers: [glorot_uniform, orthogonal, identity_rnn]
units: [8, 24]
recurrent_layers: [1]
extra_initializers:
  he_uniform: keras.initializers:HeUniform
"""


def test_a_yaml_file_restricts_and_extends(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(_YAML)
    space = load_space_file(path)
    assert space.models == ("recurrent",)
    assert space.cell_names == ["gru", "janet"]
    assert space.units == (8, 24)
    assert space.initializer_names("recurrent_kernel") == [
        "glorot_uniform",
        "orthogonal",
        "identity_rnn",
        "he_uniform",
    ]
    (extra,) = [
        c for c in space.initializers("dense_kernel") if c.source == "user"
    ]
    assert extra.obj is keras.initializers.HeUniform


def test_command_line_values_replace_the_file_s(tmp_path):
    path = tmp_path / "space.yml"
    path.write_text(_YAML)
    space = load_space_file(path, cells=["lstm"], models=None)
    assert space.cell_names == ["lstm"]
    assert space.models == ("recurrent",)


def test_a_python_file_defines_classes_and_the_space(tmp_path):
    path = tmp_path / "space.py"
    path.write_text(
        textwrap.dedent(
            """
            import keras

            class Small(keras.initializers.RandomNormal):
                plugin_targets = ("dense_kernel", "conv_kernel")

                def __init__(self):
                    super().__init__(stddev=0.01)

            SPACE = {
                "models": ["conv"],
                "initializers": ["he_normal"],
                "extra_initializers": {"small": Small},
                "filters": [4],
            }
            """
        )
    )
    space = load_space_file(path)
    assert space.initializer_names("conv_kernel") == ["he_normal", "small"]
    assert space.filters == (4,)


def test_a_python_file_may_build_the_space_itself(tmp_path):
    path = tmp_path / "space.py"
    path.write_text(
        "from kerasweights.tuning import SearchSpace\n"
        "SPACE = SearchSpace(models=['recurrent'], cells=['mgu'])\n"
    )
    space = load_space_file(path)
    assert isinstance(space, SearchSpace) and space.cell_names == ["mgu"]
    assert load_space_file(path, cells=["gru"]).cell_names == ["gru"]


@pytest.mark.parametrize(
    "name, text, words",
    [
        ("missing.yaml", None, "no such file"),
        ("bad.yaml", "models: [conv\nunits: 3\n", "not valid YAML at line"),
        ("keys.yaml", "layers: [1]\n", "unknown key 'layers'"),
        ("list.yaml", "- conv\n", "must be a mapping"),
        ("space.txt", "models: [conv]\n", "expected a .yaml, .yml or .py"),
        ("units.yaml", "units: [0]\n", "`units`"),
        ("cls.yaml", "extra_cells: {x: nowhere_pkg:Cell}\n", "nowhere_pkg"),
        ("boom.py", "raise RuntimeError('boom')\n", "RuntimeError: boom"),
        ("none.py", "x = 1\n", "define SPACE"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path, name, text, words):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidArgumentError) as info:
        load_space_file(path)
    message = str(info.value)
    assert words in message
    assert str(path) in message
    assert "\n" not in message


def test_an_unknown_plugin_in_the_file_names_the_closest(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("initializers: [gain_varianse_scaling]\n")
    with pytest.raises(PluginNotFoundError, match="gain_variance_scaling"):
        load_space_file(path)


def test_the_documented_example_file_loads():
    import os

    repo = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    space = load_space_file(os.path.join(repo, "examples", "tune_space.yaml"))
    assert space.models == ("recurrent",)
    assert "chrono" in space.bias_names
