"""kerasweights: initializers, gated recurrent layers, gradient-health
callbacks and fairness penalties for Keras 3, found as plugins.

Importing the package discovers every installed plugin (entry-point group
``kerasweights.plugins``) and registers it with Keras, so a saved model that
uses any of them loads after ``import kerasweights``.
"""

from kerasweights._startup import import_keras

import_keras()

from kerasweights import errors  # noqa: E402
from kerasweights import saving  # noqa: E402
from kerasweights.registry import PluginRecord  # noqa: E402
from kerasweights.registry import custom_objects  # noqa: E402
from kerasweights.registry import get_plugin  # noqa: E402
from kerasweights.registry import kinds  # noqa: E402
from kerasweights.registry import load_plugins  # noqa: E402
from kerasweights.registry import plugins  # noqa: E402

__version__ = "0.1.0"

__all__ = [
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

load_plugins()
