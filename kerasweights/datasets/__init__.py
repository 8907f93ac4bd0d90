"""Real data sets embedded in or shipped with the package's dependencies.

- `load_digits`: scikit-learn's handwritten digits (ships inside
  scikit-learn, no download), as images or as pixel-row sequences.
- `load_adult`: the UCI Adult census data, embedded in this package with
  its provenance (``data/ADULT-PROVENANCE.md``), for fairness work.
- `load_compas`: ProPublica's COMPAS two-year recidivism data, embedded
  with its provenance (``data/COMPAS-PROVENANCE.md``), for fairness work.

No loader downloads anything.
"""

from kerasweights.datasets.adult import load_adult
from kerasweights.datasets.compas import load_compas
from kerasweights.datasets.digits import DigitsSplit
from kerasweights.datasets.digits import load_digits

__all__ = ["DigitsSplit", "load_adult", "load_compas", "load_digits"]
