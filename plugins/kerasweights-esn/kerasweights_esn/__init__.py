"""kerasweights-esn: echo state network reservoirs for Keras 3.

A third-party kerasweights plugin. Installing this distribution makes
`ESN` appear in ``kerasweights plugins`` (kind ``recurrent``, name ``esn``),
in the recurrent choices of kerasweights' tuner search spaces, and lets a
``.keras`` file that uses it load after ``import kerasweights``.

Both classes are registered for Keras serialization under this package:
``kerasweights_esn>ESN`` and ``kerasweights_esn>ESNCell``.
"""

from kerasweights_esn.reservoir import ESN
from kerasweights_esn.reservoir import ESNCell

__version__ = "0.1.0"

__all__ = ["ESN", "ESNCell", "__version__"]
