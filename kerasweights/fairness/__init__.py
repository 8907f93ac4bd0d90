"""Fairness: group metrics, penalties and fairness-aware training.

* `kerasweights.fairness.metrics`: NumPy group metrics that agree with
  fairlearn (selection rate, TPR, FPR, demographic parity, equalized odds,
  equal opportunity, a per-group report).
* Streaming Keras metrics of the same quantities for ``compile``.
* Penalties (plugins of kind ``"regularizer"``): MMD (Gaussian or
  Laplacian kernel), adjusted MMD, absolute correlation, soft demographic
  parity and equalized odds gaps, Zafar's covariance bound, Kamishima's
  prejudice index.
* `FairnessModel`: a penalty in plain ``fit`` through a named sensitive
  input; `prediction_model` gives the model to serve without it.
* `AdversarialDebiasingModel` (Zhang et al. 2018) and
  `RateConstrainedModel` (proxy-Lagrangian rate constraints), also
  plugins of kind ``"regularizer"``.
* `GroupGradientMonitor` (a ``"callback"`` plugin): per layer, the
  gradient norm each group contributes and the cosine between groups.
"""

from kerasweights.fairness import metrics
from kerasweights.fairness.adversarial import AdversarialDebiasingModel
from kerasweights.fairness.constraints import RateConstrainedModel
from kerasweights.fairness.group_gradients import GroupGradientMonitor
from kerasweights.fairness.keras_metrics import DemographicParityDifference
from kerasweights.fairness.keras_metrics import DemographicParityRatio
from kerasweights.fairness.keras_metrics import EqualizedOddsDifference
from kerasweights.fairness.keras_metrics import EqualizedOddsRatio
from kerasweights.fairness.keras_metrics import EqualOpportunityDifference
from kerasweights.fairness.keras_metrics import EqualOpportunityRatio
from kerasweights.fairness.keras_metrics import GroupFairnessMetric
from kerasweights.fairness.penalties import AbsoluteCorrelationPenalty
from kerasweights.fairness.penalties import AdjustedMMDPenalty
from kerasweights.fairness.penalties import DemographicParityPenalty
from kerasweights.fairness.penalties import EqualizedOddsPenalty
from kerasweights.fairness.penalties import FairnessPenalty
from kerasweights.fairness.penalties import MMDPenalty
from kerasweights.fairness.penalties import PrejudiceIndexPenalty
from kerasweights.fairness.penalties import ZafarCovariancePenalty
from kerasweights.fairness.training import FairnessModel
from kerasweights.fairness.training import SensitiveInputModel
from kerasweights.fairness.training import prediction_model

__all__ = [
    "metrics",
    "GroupFairnessMetric",
    "DemographicParityDifference",
    "DemographicParityRatio",
    "EqualizedOddsDifference",
    "EqualizedOddsRatio",
    "EqualOpportunityDifference",
    "EqualOpportunityRatio",
    "FairnessPenalty",
    "MMDPenalty",
    "AdjustedMMDPenalty",
    "AbsoluteCorrelationPenalty",
    "DemographicParityPenalty",
    "EqualizedOddsPenalty",
    "ZafarCovariancePenalty",
    "PrejudiceIndexPenalty",
    "SensitiveInputModel",
    "FairnessModel",
    "prediction_model",
    "AdversarialDebiasingModel",
    "RateConstrainedModel",
    "GroupGradientMonitor",
]
