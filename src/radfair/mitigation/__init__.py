"""Bias mitigation at the reconstruction stage (reconstruction paper §3.5; REFERENCE.md §3).

The reconstructor alone is fine-tuned; the downstream model is frozen.

* :func:`subgroup_weights`, :class:`MitigationBatches`: sample reweighting ∝ 1/|joint subgroup|.
* :func:`soft_predictions`, :class:`RunningThreshold`, :func:`soft_eodd`, :func:`soft_dice_gap`:
  differentiable equalized odds (worst-case convention) and its segmentation counterpart.
* :class:`Adversary`, :func:`squared_correlation`: the adversarial Corr² objective.
* :func:`attach_mitigation`, :class:`MitigatedStep`, :class:`MitigationConfig`: make any reconstructor step
  mitigated; validation key :data:`VALIDATION_KEY`.
* :func:`choose_weight`: the λ selection rule; :func:`fallback_weight`: the λ carried forward when none qualifies.
* Run kind ``train-mitigated-reconstructor``: :func:`run_mitigated_training`.
"""

from ._adversarial import Adversary, attribute_targets, squared_correlation
from ._attach import VALIDATION_KEY, FrozenDownstream, MitigatedStep, attach_mitigation
from ._config import MitigationConfig
from ._eodd import RunningThreshold, soft_dice, soft_dice_gap, soft_eodd, soft_predictions
from ._reweighting import MitigationBatches, subgroup_weights
from ._run import TRAIN_MITIGATED_RECONSTRUCTOR, MitigatedReconstructorRunConfig, run_mitigated_training
from ._select import choose_weight, fallback_weight
from ._validation import hard_eodd

__all__ = [
    "Adversary", "FrozenDownstream", "MitigatedReconstructorRunConfig", "MitigatedStep", "MitigationBatches", "MitigationConfig", "RunningThreshold",
    "VALIDATION_KEY", "attach_mitigation", "attribute_targets", "choose_weight", "fallback_weight", "soft_dice", "soft_dice_gap",
    "soft_eodd", "soft_predictions", "squared_correlation", "subgroup_weights", "hard_eodd", "run_mitigated_training",
    "TRAIN_MITIGATED_RECONSTRUCTOR",
]
