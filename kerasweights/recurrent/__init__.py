"""Gated recurrent cells and layers, each layer a ``recurrent`` plugin.

Every model comes as a cell (usable in `keras.layers.RNN`,
`keras.layers.Bidirectional` and `keras.layers.StackedRNNCells`) and as a
layer built like `keras.layers.GRU`, which runs a faster loop. The layers
are the plugins; the cells are registered for serialization only.
"""

from kerasweights.recurrent.base import GatedCell
from kerasweights.recurrent.base import GatedRNN
from kerasweights.recurrent.indrnn import IndRNN
from kerasweights.recurrent.indrnn import IndRNNCell
from kerasweights.recurrent.indrnn import MaxAbsValue
from kerasweights.recurrent.janet import JANET
from kerasweights.recurrent.janet import JANETCell
from kerasweights.recurrent.layer_norm import LayerNormGRU
from kerasweights.recurrent.layer_norm import LayerNormGRUCell
from kerasweights.recurrent.layer_norm import LayerNormLSTM
from kerasweights.recurrent.layer_norm import LayerNormLSTMCell
from kerasweights.recurrent.mgu import MGU
from kerasweights.recurrent.mgu import MGUCell
from kerasweights.recurrent.minimal import MinGRU
from kerasweights.recurrent.minimal import MinGRUCell
from kerasweights.recurrent.minimal import MinLSTM
from kerasweights.recurrent.minimal import MinLSTMCell
from kerasweights.recurrent.peephole import PeepholeLSTM
from kerasweights.recurrent.peephole import PeepholeLSTMCell
from kerasweights.recurrent.sru import SRU
from kerasweights.recurrent.sru import SRUCell

__all__ = [
    "GatedCell",
    "GatedRNN",
    "IndRNN",
    "IndRNNCell",
    "JANET",
    "JANETCell",
    "LayerNormGRU",
    "LayerNormGRUCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "MaxAbsValue",
    "MGU",
    "MGUCell",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "PeepholeLSTM",
    "PeepholeLSTMCell",
    "SRU",
    "SRUCell",
]
