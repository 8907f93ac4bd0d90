"""Shared test set-up.

TensorFlow uses every core by default; the suite runs on 2 cores, so each
process keeps its start-up quiet.

Garbage collection: TensorFlow and Keras leave about a million long-lived
Python objects (modules, traced graphs, layers held by module fixtures),
and every full collection walked them all again: measured, a fifth of the
suite's time went to Python's collector. So the objects alive after
collection, and again after each test module (its fixtures already torn
down), are collected once and then frozen (`gc.freeze`): later
collections skip them. Garbage is still collected as before; only objects
that were alive at those points are no longer revisited.
"""

import gc
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, env=None, timeout=300, cwd=None):
    """Run ``code`` in a fresh interpreter; return the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


def pytest_collection_finish(session):
    gc.collect()
    gc.freeze()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if nextitem is None or nextitem.path != item.path:
        gc.collect()
        gc.freeze()


@pytest.fixture
def fresh_python():
    """A function running code in a fresh interpreter (see `run_python`)."""
    return run_python
