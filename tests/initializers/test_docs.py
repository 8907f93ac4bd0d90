"""The usage examples of docs/initializers.md run as written.

Each ```python block must run on its own, as a reader pastes it into a
fresh interpreter: every import it needs is in the block. One fresh
process runs the blocks in page order; before each block it forgets
kerasweights (its modules and its names in Keras' registry of custom
objects), so a block that uses ``"kerasweights>Name"`` without importing
kerasweights fails here as it would for a reader. Keras and TensorFlow
stay loaded, which keeps the test fast.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "initializers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)

_DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys, traceback
    import keras
    from keras.src.saving import object_registration

    OURS = ("kerasweights",)

    def forget_kerasweights():
        for name in list(sys.modules):
            if name.split(".")[0].startswith(OURS):
                del sys.modules[name]
        objects = object_registration.GLOBAL_CUSTOM_OBJECTS
        for key in [k for k in objects if k.startswith(OURS)]:
            del objects[key]
        names = object_registration.GLOBAL_CUSTOM_NAMES
        for key in [k for k, v in names.items() if v.startswith(OURS)]:
            del names[key]

    results = []
    for index, code in enumerate(json.loads(sys.stdin.read())):
        forget_kerasweights()
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"block {index}", "exec"),
                     {"__name__": "__main__"})
            error = ""
        except BaseException:
            error = traceback.format_exc()[-3000:]
        results.append({"stdout": out.getvalue(), "error": error})
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def ran():
    """Run every block, in page order, in one fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps(BLOCKS),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_page_has_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_on_its_own(ran, index):
    got = ran[index]
    assert not got["error"], f"block {index}:\n{BLOCKS[index]}\n{got['error']}"
    # Blocks print booleans for the properties they demonstrate.
    assert "False" not in got["stdout"], got["stdout"]


def test_the_driver_catches_a_missing_import():
    # The check above is only worth something if a block that forgets
    # `import kerasweights` really fails in the driver.
    code = (
        'import keras\nkeras.initializers.get("kerasweights>DeltaOrthogonal")\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps(["import kerasweights\n", code]),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got[0]["error"] == ""
    assert "Could not interpret initializer" in got[1]["error"]
