"""Gated recurrent cells and layers, each layer a ``recurrent`` plugin.

Every model comes as a cell (usable in `keras.layers.RNN`,
`keras.layers.Bidirectional` and `keras.layers.StackedRNNCells`) and as a
layer built like `keras.layers.GRU`, which runs a faster loop. The layers
are the plugins; the cells are registered for serialization only.
"""

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.janet import JANET
from kerasweights.recurrent.janet import JANETCell
from kerasweights.recurrent.mgu import MGU
from kerasweights.recurrent.mgu import MGUCell

__all__ = [
    "GatedCell",
    "GatedRNN",
    "JANET",
    "JANETCell",
    "MGU",
    "MGUCell",
]
