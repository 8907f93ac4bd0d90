"""Initializers Keras lacks: gain-aware variance scaling, orthogonal with
gain, delta-orthogonal, chrono, IRNN identity, ZerO, LSUV and Fixup.

Every class here that sets ``plugin_kind`` is an initializer plugin,
registered for Keras serialization as ``kerasweights>Name``. LSUV and
Fixup also have helpers that work on a built model: `lsuv_initialize`
(with `LSUVCallback`) and `fixup_scale`.
"""

from kerasweights.initializers.base import activation_gain
from kerasweights.initializers.base import compute_fans
from kerasweights.initializers.fixup import Fixup
from kerasweights.initializers.fixup import FixupResult
from kerasweights.initializers.fixup import fixup_factor
from kerasweights.initializers.fixup import fixup_scale
from kerasweights.initializers.lsuv import LSUV
from kerasweights.initializers.lsuv import LSUVCallback
from kerasweights.initializers.lsuv import LSUVLayerResult
from kerasweights.initializers.lsuv import LSUVReport
from kerasweights.initializers.lsuv import LSUVWarning
from kerasweights.initializers.lsuv import lsuv_initialize
from kerasweights.initializers.orthogonal import DeltaOrthogonal
from kerasweights.initializers.orthogonal import OrthogonalGain
from kerasweights.initializers.recurrent import GATE_LAYOUTS
from kerasweights.initializers.recurrent import Chrono
from kerasweights.initializers.recurrent import IdentityRNN
from kerasweights.initializers.variance_scaling import GainVarianceScaling
from kerasweights.initializers.zero import ZerO

__all__ = [
    "Fixup",
    "FixupResult",
    "fixup_factor",
    "fixup_scale",
    "LSUV",
    "LSUVCallback",
    "LSUVLayerResult",
    "LSUVReport",
    "LSUVWarning",
    "lsuv_initialize",
    "Chrono",
    "GATE_LAYOUTS",
    "IdentityRNN",
    "ZerO",
    "DeltaOrthogonal",
    "GainVarianceScaling",
    "OrthogonalGain",
    "activation_gain",
    "compute_fans",
]
