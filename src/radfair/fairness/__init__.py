"""radfair.fairness: thresholds, subgroup rates, disparities, equalized odds, segmentation
fairness and the patient-level bootstrap. Pure, vectorised functions behind a curated namespace.
"""

from ._api import AuditResult, audit
from ._auc import AucPlan, weighted_auc
from ._audit import (
    CONVENTIONS,
    AuditConfig,
    AuditWarning,
    SharedReplicates,
    audit_files,
    run_audit,
    shared_replicates,
)
from ._bootstrap import GroupCounts, patient_multiplicities, replicate_chunks
from ._disparity import extreme_groups, gap, label_winners, tpr_disparity
from ._equalized_odds import equalized_odds
from ._rates import confusion_indicators, rates
from ._seed_summary import AVERAGING, COUNTING, SUMMARY_CONVENTIONS, disparity_summary, summary_conventions
from ._segmentation import (
    EMPTY_CONVENTIONS,
    SEGMENTATION_METRICS,
    dice,
    group_dice,
    group_means,
    paired_segmentation_comparison,
    per_class_dice,
    segmentation_audit,
    segmentation_fairness,
    surface_distances,
)
from ._stats import (
    P_VALUE_METHODS,
    benjamini_hochberg,
    bootstrap_p_value,
    holm,
    mean_ci_over_seeds,
    normal_p_value,
    p_value,
    p_value_floor,
    percentile_ci,
    wilson_interval,
)
from ._thresholds import RULES, choose_threshold
from ._thresholds_io import TEST_THRESHOLD_WARNING, resolve_thresholds

__all__ = [
    "AuditResult", "audit", "wilson_interval", "P_VALUE_METHODS", "normal_p_value", "p_value", "p_value_floor",
    "AVERAGING", "AucPlan", "AuditConfig", "AuditWarning", "COUNTING", "CONVENTIONS", "GroupCounts", "RULES",
    "SUMMARY_CONVENTIONS", "TEST_THRESHOLD_WARNING", "disparity_summary", "summary_conventions",
    "audit_files", "benjamini_hochberg", "bootstrap_p_value", "choose_threshold", "confusion_indicators", "dice",
    "equalized_odds", "extreme_groups", "gap", "group_dice", "holm", "label_winners", "mean_ci_over_seeds", "patient_multiplicities",
    "EMPTY_CONVENTIONS", "SEGMENTATION_METRICS", "group_means", "per_class_dice", "surface_distances", "paired_segmentation_comparison", "percentile_ci", "rates", "replicate_chunks", "resolve_thresholds",
    "run_audit", "SharedReplicates", "shared_replicates", "segmentation_audit", "segmentation_fairness",
    "tpr_disparity", "weighted_auc",
]
