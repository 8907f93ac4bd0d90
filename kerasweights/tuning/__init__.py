"""Tuning: Keras Tuner searches over spaces built from the plugin registry.

`SearchSpace` turns every installed initializer and recurrent plugin (and
Keras' own baselines) into hyperparameters; `tune` runs a search on the
embedded digits data with honest handling of non-finite trials, then
exports and verifies the best model. Keras Tuner is imported only when
`tune` or `build_hypermodel` is called.
"""

from kerasweights.tuning.space import KERAS_CELLS
from kerasweights.tuning.space import KERAS_INITIALIZERS
from kerasweights.tuning.space import MODEL_KINDS
from kerasweights.tuning.space import SLOTS
from kerasweights.tuning.space import Candidate
from kerasweights.tuning.space import SearchSpace

__all__ = [
    "KERAS_CELLS",
    "KERAS_INITIALIZERS",
    "MODEL_KINDS",
    "SLOTS",
    "TUNERS",
    "Candidate",
    "SearchSpace",
    "build_hypermodel",
    "tune",
]

TUNERS = ("random", "hyperband", "bayesian", "grid")


def tune(*args, **kwargs):
    """Run a search; see `kerasweights.tuning.search.tune`."""
    from kerasweights.tuning.search import tune as _tune

    return _tune(*args, **kwargs)


def build_hypermodel(*args, **kwargs):
    """A digits hypermodel; see `tuning.search.build_hypermodel`."""
    from kerasweights.tuning.search import build_hypermodel as _build

    return _build(*args, **kwargs)
