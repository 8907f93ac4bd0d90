"""Fixtures for the separately installable plugins in ``plugins/``.

The plugin is installed the way a user installs it (``pip install``), but
into a temporary folder rather than the test environment, and every check
that needs discovery runs in a fresh interpreter whose ``PYTHONPATH`` holds
that folder. Each fresh interpreter imports TensorFlow (seconds), so the
tests batch several checks into one process.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ESN_SOURCE = REPO / "plugins" / "kerasweights-esn"


def _run_checks(code, pythonpath, cwd=None, timeout=300):
    """Run ``code`` in a fresh interpreter and return what it printed last.

    The code reports by printing one JSON document as its last stdout line.

    Args:
        code: Python source to run.
        pythonpath: Folders prepended to ``PYTHONPATH``.
        cwd: Working directory of the process.
        timeout: Seconds before the process is killed.

    Returns:
        ``(result, completed)``: the decoded JSON and the CompletedProcess.
    """
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    paths = [str(p) for p in pythonpath]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd or REPO,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr
    return json.loads(lines[-1]), completed


@pytest.fixture(scope="session")
def run_checks():
    """The function that runs code in a fresh interpreter (`_run_checks`)."""
    return _run_checks


@pytest.fixture(scope="session")
def esn_site(tmp_path_factory):
    """A folder where ``pip install`` put the kerasweights-esn distribution.

    The source is copied first, so the build leaves no ``build/`` or
    ``*.egg-info`` behind in the repository.
    """
    root = tmp_path_factory.mktemp("esn")
    source = root / "source"
    shutil.copytree(
        ESN_SOURCE,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    site = root / "site"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-input",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (site / "kerasweights_esn" / "__init__.py").exists()
    return site


@pytest.fixture(scope="session")
def esn_module():
    """``kerasweights_esn`` imported from its source folder.

    For the unit tests of the cell and layer, which need no discovery; the
    registry of this test process does not see it (no entry point).
    """
    path = str(ESN_SOURCE)
    sys.path.insert(0, path)
    try:
        import kerasweights_esn
    finally:
        sys.path.remove(path)
    return kerasweights_esn
