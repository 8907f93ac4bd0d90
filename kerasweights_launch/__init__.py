"""The ``kerasweights`` console script, started without TensorFlow.

Importing ``kerasweights`` imports Keras and TensorFlow and discovers every
plugin, which takes seconds. The command line needs none of that to print
``--help`` or to refuse a bad argument, so this launcher puts the package's
module in ``sys.modules`` without running its ``__init__``; the CLI runs
the package's start-up, into that same module, just before a command runs
(``kerasweights.cli._package``). ``python -m kerasweights`` and
``import kerasweights`` are unaffected.
"""

import importlib.util
import sys


def entry_point():
    """Console-script entry: the CLI with the package's start-up deferred."""
    if "kerasweights" not in sys.modules:
        spec = importlib.util.find_spec("kerasweights")
        sys.modules["kerasweights"] = importlib.util.module_from_spec(spec)
    from kerasweights.cli import entry_point as run

    run()
