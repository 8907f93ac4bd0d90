"""Import Keras without TensorFlow's start-up chatter.

TensorFlow's C++ runtime writes a few informational lines to the stderr file
descriptor while it is imported and first probes devices (CPU features,
oneDNN, missing CUDA). They
are written before its logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL``
cannot silence them, and they drown the one-line errors of our CLI.

When ``import kerasweights`` is what first imports TensorFlow, we capture
file descriptor 2 during that import and a probe of the physical devices,
drop exactly those known lines and write everything else back. Set
``KERASWEIGHTS_TF_STARTUP_LOGS=1`` to keep them all.
"""

import contextlib
import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(I\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called "
    r"are written to STDERR"
    r"|To enable the following instructions: .* in other operations, "
    r"rebuild TensorFlow with the appropriate compiler flags\."
    # A machine without a GPU: CUDA's probe fails, harmlessly.
    r"|E\d{4} [\d:.]+\s+\d+ cuda_platform\.cc:\d+\] failed call to "
    r"cuInit: .*)$"
)


@contextlib.contextmanager
def filtered_stderr(noise):
    """Drop lines matching ``noise`` from file descriptor 2, keep the rest.

    TensorFlow's and TFLite's C++ runtimes write to the descriptor itself,
    so Python's ``sys.stderr`` cannot filter them. Everything written to
    descriptor 2 inside the block is held and written back when the block
    ends, without the lines that match ``noise`` (a compiled pattern).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not noise.match(line.rstrip("\n"))
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_keras():
    """Import and return ``keras``, filtering TensorFlow's start-up lines."""
    keep_logs = os.environ.get("KERASWEIGHTS_TF_STARTUP_LOGS") == "1"
    if keep_logs or "tensorflow" in sys.modules:
        import keras

        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr(_NOISE):
        import keras
        import tensorflow as tf

        # Probing the physical devices prints CUDA's start-up lines now,
        # inside the filter, rather than at the first operation. Logical
        # devices can still be configured afterwards.
        tf.config.list_physical_devices()
    return keras
