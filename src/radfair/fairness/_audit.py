"""``radfair audit``: every fairness quantity of a scored table, with patient-level bootstrap CIs.

Input: one row per image with ``patient_id``, ``split``, attribute columns, ``y_<label>`` (1/0/NaN)
and ``p_<label>`` (scores in [0, 1]). Thresholds are chosen on ``split == "val"`` and every metric
is computed on ``split == "test"``. Conventions are written, by name, into ``audit.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..data.schema import unknown_marker_mask
from ..data.splits import check_patient_level
from ..errors import (
    BAD_OPTION,
    BAD_VALUES,
    DUPLICATE_IDS,
    EMPTY_AFTER_FILTER,
    MISSING_COLUMNS,
    RadfairInputError,
    preview,
)
from ..io import output_folder, read_table, temp_folder_beside, write_json, write_table
from ._bootstrap import chunk_multiplicities, chunk_sizes, map_chunks
from ._calibration import N_BINS, calibration_metrics, residual_metrics, selection_rate
from ._disparity import extreme_groups, gap, label_winners, tpr_disparity
from ._equalized_odds import equalized_odds, equalized_odds_ratios, min_max_ratio
from ._figures import FigurePainter, figure_jobs, roc_table
from ._groups import attribute_values, encode_groups
from ._inputs import normalise_table
from ._intervals import bias_corrected, max_t_band, min_max_ratio_interval, spread_interval
from ._rates import confusion_indicators, rates
from ._stats import P_VALUE_METHODS, benjamini_hochberg, holm, p_value, percentile_ci, wilson_interval
from ._sweep import ScoreSweep
from ._thresholds import RULES, parse_rule
from ._thresholds_io import resolve_thresholds

RATE_NAMES = ("tpr", "fpr", "tnr", "ppv", "fnr", "npv", "fdr", "for")
COUNT_NAMES = ("tp", "fn", "fp", "tn")
RATIO_NAMES = ("eo_ratio", "eop_ratio")
EO_NAMES = ("eodd_worst", "eodd_mean", "eop")
CONVENTIONS = {
    "tpr_disparity": "binary attribute: TPR_g - TPR_(not g); otherwise TPR_g - median over groups with >=1 positive (median includes g)",
    "gap": "max_g disparity - min_g disparity per label; NaN with fewer than two defined groups",
    "most_favorable": "group with the strict max (min: unfavourable) disparity per label; a tie at the extreme counts for no group (empty cell), so binary attributes are complementary; summary counts labels with >=2 defined groups",
    "average_gap": "mean of per-label gaps over the summary labels (excluded labels listed in config)",
    "eodd_worst": "max(dTPR, dFPR), d = max - min over groups (fairlearn equalized_odds_difference agg='worst_case')",
    "eodd_mean": "(dTPR + dFPR) / 2 (fairlearn agg='mean'; the reconstruction paper's code)",
    "eop": "dTPR = max - min TPR over groups",
    "prediction": "score >= threshold",
    "bootstrap": "patients resampled with replacement (all their images follow); thresholds fixed unless "
                 "config.threshold_in_bootstrap, which re-chooses them in every replicate on an independent patient "
                 "resample of the validation rows (intervals then carry threshold uncertainty)",
    "intervals": "single quantities (a group's rate, disparity or AUROC; paired deltas in comparison.csv): percentile bootstrap intervals. max - min statistics (gap, average_gap, eodd_worst, eodd_mean, eop): max-t projection intervals, i.e. a simultaneous max-t bootstrap band on every group rate involved (TPR per label for gap/eop; TPR and FPR per label for eodd; TPR of every group and summary label for average_gap; se floored by the binomial sqrt(p~(1-p~)/n), p~=(x+1)/(n+2)) projected onto the statistic; they are intervals for the true value, and both the plug-in estimate and the bias-corrected one (<name>_bc) lie inside them",
    "bias_corrected": "<name>_bc = 2 * plug-in - mean of bootstrap replicates (Lum, Zhang & Bower, FAccT 2022), clipped into the max-t projection interval; the plug-in max - min of noisy group rates is biased upward",
    "p_value": "two-sided, on the paired bootstrap replicates of the delta, by the method named in config.p_value: "
               + "; ".join(f"{k}: {v}" for k, v in P_VALUE_METHODS.items()),
    "multiple_testing": "Holm (FWER) and Benjamini-Hochberg (FDR) over every row of comparison.csv",
    "compare_thresholds": "each compared table gets its own thresholds, chosen by the same rule on its own val rows",
    "selection_rate": "P(score >= threshold) per group over images with a known label; dp_difference = max - min selection rate over groups (fairlearn demographic_parity_difference, between_groups); max-t projection interval",
    "calibration": f"{N_BINS} equal-width bins on [0, 1], bin k = (k/K, (k+1)/K], first bin holds 0 (scikit-learn calibration_curve uniform); ece = sum_k n_k/n |mean y_k - mean p_k| (Guo et al. 2017); citl = mean p - mean y (calibration-in-the-large, > 0 over-predicts); percentile intervals per group; calibration_gap = max - min ECE over groups with a max-t projection interval; reliability curves in reliability.csv and reliability_<attribute>.png",
    "site": "a site/dataset column is an attribute like any other (e.g. --attributes dataset): per-site AUROC, rates, calibration in group_metrics.csv and calibration.csv",
    "empty_group": "a rate with a zero denominator is NaN and listed in warnings, never 0 or 1",
    "rates": "per group: tp, fn, fp, tn (counts); TPR, FPR, TNR, PPV, FNR = 1 - TPR, NPV, FDR = 1 - PPV, FOR = 1 - NPV with percentile intervals widened to at least the Wilson score interval of the group's count (a group's TPR disparity likewise, around its reference), so a group with 1 positive never gets [1, 1]; brier = mean (p - y)^2 with a percentile interval; average_precision (scikit-learn average_precision_score; point estimate only); performance.csv holds the overall row per label (AUROC, TPR, FPR, selection rate, ECE, Brier, average precision, the threshold)",
    "ratios": "dp_ratio = min/max selection rate (fairlearn demographic_parity_ratio), eop_ratio = min/max TPR, eo_ratio = min(TPR ratio, FPR ratio) (fairlearn equalized_odds_ratio); 1 = parity; *_parity = ratio >= config.parity_ratio (0.8: the four-fifths rule); intervals projected from the same max-t bands as the differences",
    "unknown_attribute_values": "blank values and unknown markers (Unknown, UNABLE TO OBTAIN, PATIENT DECLINED TO ANSWER, ...; radfair.data.schema.MISSING_TEXTS and UNKNOWN_PHRASES) are missing, never a group; rows missing an attribute are left out of that attribute's groups, counted in missing_attribute and warned",
    "hard_predictions": "a score column holding only 0/1 on val and test is audited as predictions with threshold 0.5 (no threshold is searched over it); listed in hard_prediction_labels",
    "input_rules": "a repeated image_id and a patient in more than one split are errors (as in radfair split)",
}


NO_THRESHOLD = ("the threshold split has no positives or no negatives, so no threshold can be chosen; "
                "every metric of this label is NaN")


class AuditWarning(UserWarning):
    """A data condition the user must know about (e.g. a subgroup with no positives)."""


@dataclass
class AuditConfig:
    attributes: list[str]
    labels: list[str] | None = None
    threshold: str = "f1"
    threshold_on_test: bool = False
    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95
    min_group_size: int = 10
    summary_exclude: list[str] = field(default_factory=lambda: ["no_finding"])
    auc: bool = True
    p_value: str = "bootstrap-normal"  # P_VALUE_METHODS
    threshold_in_bootstrap: bool = False  # re-choose the thresholds on resampled validation patients in every replicate
    scores: str = "probabilities"  # or "logits" (sigmoid applied)
    uncertain: str | None = None  # -1 labels: zeros, ones or ignore (None: -1 is an error with this hint)
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> the file's own column name
    parity_ratio: float = 0.8  # ratio forms (min/max) below this fail parity (the four-fifths rule)
    chunk: int = 100
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))


#: An attribute with more groups than this share of test patients (and more than MAX_GROUPS_ABS)
#: looks like an identifier, not a group attribute.
ID_LIKE_SHARE, MAX_GROUPS_ABS = 0.5, 20


#: Where an attribute's values come from, for the error about an attribute column with no values.
ATTRIBUTE_SOURCES = {
    "race": "CheXpert race comes from the separately licensed CHEXPERT DEMO.xlsx, MIMIC race from MIMIC-IV admissions; "
            "UCSF-PDGM has none",
    "insurance": "only MIMIC records insurance (MIMIC-IV admissions)",
}


def summary_line(row) -> str:
    """One attribute's line of ``summary.csv`` in words (the CLI and the demo print it)."""
    if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
        uncertainty = (f" (bias-corrected {row.average_gap_bc:.3f}; 95% max-t interval for the true gap "
                       f"[{row.ci_low:.3f}, {row.ci_high:.3f}])")
    else:
        uncertainty = " (no bootstrap: no interval)"
    binary = f" = 2 x mean |dTPR| {row.average_gap / 2:.3f} (binary attribute)" if getattr(row, "binary", False) else ""
    return (f"{row.attribute}: average gap {row.average_gap:.3f}{binary}{uncertainty}; unfavourable {row.unfavorable or 'n/a'}; "
            f"favourable {row.favorable or 'n/a'}")


def _threshold_source(thresholds: pd.DataFrame, config: AuditConfig, split_absent: bool) -> str:
    """Where the thresholds really came from, in words (for the report's methods)."""
    rules = sorted(set(thresholds["rule"]))
    spec = str(config.threshold)
    parsed = parse_rule(spec)
    if parsed is None:
        try:
            float(spec)
            return f"a fixed threshold {spec} given by the user, for every label"
        except ValueError:
            return f"a threshold file given by the user ({Path(spec).name}), one threshold per label"
    if split_absent:
        return f"rule {spec} chosen per label on all rows of the table (no split column: every row is test)"
    where = "the TEST rows (--threshold-on-test: optimistic)" if config.threshold_on_test else "the validation rows"
    hard = " (labels with 0/1 predictions: 0.5)" if any(r.startswith("hard") for r in rules) else ""
    return f"rule {spec} chosen per label on {where}{hard}"


def check_config(config: AuditConfig) -> None:
    """Refuse options that have no meaning (negative replicate counts or group sizes)."""
    try:
        parse_rule(str(config.threshold))
    except ValueError as exc:
        raise RadfairInputError(BAD_OPTION.format(option="--threshold", value=str(config.threshold), expected=str(exc))) from None
    if not 0 < config.parity_ratio <= 1:
        raise RadfairInputError(BAD_OPTION.format(option="--parity-ratio", value=config.parity_ratio, expected="a number in (0, 1]"))
    for option, value in (("--bootstrap", config.bootstrap), ("--min-group-size", config.min_group_size)):
        if value < 0:
            raise RadfairInputError(BAD_OPTION.format(option=option, value=value, expected="a number >= 0"))
    if config.p_value not in P_VALUE_METHODS:
        raise RadfairInputError(BAD_OPTION.format(option="--p-value", value=config.p_value, expected=f"one of {sorted(P_VALUE_METHODS)}"))
    if config.threshold_in_bootstrap and (parse_rule(str(config.threshold)) is None or config.threshold_on_test):
        raise RadfairInputError(BAD_OPTION.format(option="--threshold-in-bootstrap", value=str(config.threshold),
                                                  expected=f"a threshold rule chosen on val ({', '.join(RULES)}); a fixed "
                                                           "threshold has no uncertainty to carry"))
    if not config.attributes:
        raise RadfairInputError(BAD_OPTION.format(option="--attributes", value="", expected="at least one attribute"))


def check_attributes(test: pd.DataFrame, attributes: list[str], path: str) -> None:
    """Each attribute needs two or more groups in test and must not look like an identifier."""
    n_patients = test["patient_id"].nunique()
    for attribute in attributes:
        groups = pd.unique(attribute_values(test, attribute).dropna())
        if len(groups) < 2:
            raise RadfairInputError(f"{path}: attribute {attribute!r} has {len(groups)} group(s) {preview(groups)} in the "
                                    "test split; a disparity needs at least two")
        if len(groups) > MAX_GROUPS_ABS and len(groups) > ID_LIKE_SHARE * n_patients:
            raise RadfairInputError(f"{path}: attribute {attribute!r} has {len(groups)} groups among {n_patients} test "
                                    "patients; it looks like an identifier, not a group attribute")


def check_paired(test_a: pd.DataFrame, test_b: pd.DataFrame, path_a: str, path_b: str) -> None:
    """A paired comparison needs the same test images (by image_id) of the same patients."""
    for df, path in ((test_a, path_a), (test_b, path_b)):
        if "image_id" not in df.columns:
            raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=["image_id"], expected="image_id to pair rows of --compare"))
    a = test_a.set_index("image_id")["patient_id"]
    b = test_b.set_index("image_id")["patient_id"]
    only = a.index.symmetric_difference(b.index)
    common = a.index.intersection(b.index)
    moved = int((a[common].astype(str) != b[common].astype(str)).sum()) if len(common) else 0
    if len(only) or moved or a.index.duplicated().any() or b.index.duplicated().any():
        raise RadfairInputError(
            f"{path_b}: {len(only)} test image_id value(s) {preview(only)} are in only one of the two tables and {moved} "
            f"belong to another patient; a paired comparison needs the same test images as {path_a}")


#: Score columns holding only these values are hard predictions, not scores: no threshold is searched.
HARD_PREDICTION_VALUES = (0.0, 1.0)
HARD_PREDICTION_THRESHOLD = 0.5
HARD_PREDICTIONS = ("label {label}: p_{label} holds only 0/1 (hard predictions, not scores); audited as "
                    "predictions with threshold 0.5 instead of searching a {rule} threshold")
UNKNOWN_AS_MISSING = ("{path}: column {column!r}: {count} row(s) hold unknown marker(s) {values}; treated as missing "
                      "(not a group)")
MISSING_ATTRIBUTE = ("attribute {attribute!r} is missing (blank or unknown) for {count} of {total} test image(s) "
                     "({patients} patient(s)); they are left out of its groups")


def clean_scored(df: pd.DataFrame, config: AuditConfig, path: str = "scored table") -> pd.DataFrame:
    """Hold an audit table to the loaders' rules before anything is computed.

    * a repeated ``image_id`` (e.g. a many-to-many merge) is an error: it would count an image twice;
    * a patient in more than one split (a per-image split) is an error, as in ``radfair split``;
    * in every attribute column, blank values and the loaders' unknown markers
      (:data:`radfair.data.schema.MISSING_TEXTS`, :data:`~radfair.data.schema.UNKNOWN_PHRASES`: ``Unknown``,
      ``UNABLE TO OBTAIN``, ``PATIENT DECLINED TO ANSWER``, ...) become missing, with a warning and a
      count; they never form a group.

    Returns a copy with the attribute columns cleaned; raises :class:`RadfairInputError`.
    """
    if "image_id" in df.columns:
        duplicated = df["image_id"][df["image_id"].duplicated()]
        if len(duplicated):
            raise RadfairInputError(DUPLICATE_IDS.format(path=path, column="image_id", values=preview(duplicated))
                                    + f" ({len(duplicated)} repeated row(s), e.g. from a many-to-many merge; "
                                    "each image would be counted more than once)")
    else:  # no image_id to tell images apart: rows identical in every column may be a merge's copies (or, with 0/1
        # scores, two images of one patient): said with a count, never silently counted twice without a word
        repeated = df.duplicated()
        if repeated.any():
            warnings.warn(f"{path}: {int(repeated.sum())} row(s) repeat another row in every column and there is no image_id "
                          "column to tell an image from a copy: each is audited as an image; if they are copies from a merge, "
                          "remove them or name your image column with --columns image_id=<column>", AuditWarning, stacklevel=2)
    if "split" in df.columns and "patient_id" in df.columns:
        check_patient_level(df[df["split"].isin(("train", "val", "test"))], path)
    df = df.copy()
    for column in sorted({p for a in config.attributes for p in a.split("*")} & set(df.columns)):
        values = df[column]
        unknown = unknown_marker_mask(values) & values.notna()
        if unknown.any():
            warnings.warn(UNKNOWN_AS_MISSING.format(path=path, column=column, count=int(unknown.sum()),
                                                    values=preview(values[unknown])), AuditWarning, stacklevel=2)
            df[column] = values.astype(object).where(~unknown, None)
        elif values.dtype == object:
            df[column] = values.where(values.notna(), None)
    return df


def missing_attribute_counts(test: pd.DataFrame, attributes: list[str]) -> dict[str, dict[str, int]]:
    """Per attribute: test images and patients with no value (left out of its groups), and the totals."""
    out = {}
    for attribute in attributes:
        missing = attribute_values(test, attribute).isna().to_numpy()
        out[attribute] = {"test_images": int(missing.sum()), "test_images_total": int(len(test)),
                          "test_patients": int(test.loc[missing, "patient_id"].nunique())}
    return out


def hard_prediction_labels(df: pd.DataFrame, labels: list[str]) -> list[str]:
    """Labels whose score column holds at most two distinct values, all in {0, 1} (val and test rows)."""
    used = df[df["split"].isin(("val", "test"))] if "split" in df.columns else df
    hard = []
    for label in labels:
        values = pd.to_numeric(used[f"p_{label}"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        known = values[~np.isnan(values)]
        if len(known) and np.isin(known, HARD_PREDICTION_VALUES).all():
            hard.append(label)
    return hard


def validate_scored(df: pd.DataFrame, config: AuditConfig, path: str = "scored table") -> list[str]:
    """Check columns and values; return the audited labels."""
    if df.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=path, step="reading (the table has a header but no rows)"))
    needed = ["patient_id", "split"] + sorted({p for a in config.attributes for p in a.split("*")})
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected="patient_id, split, the attribute columns, y_<label>, p_<label>"))
    for column in needed[2:]:
        if df[column].isna().all():
            raise RadfairInputError(f"{path}: column {column!r} has no values (missing in all {len(df)} rows); "
                                    f"expected {column} groups to audit by ({ATTRIBUTE_SOURCES.get(column, 'add them to the cohort')})")
    available = [c[2:] for c in df.columns if c.startswith("y_") and f"p_{c[2:]}" in df.columns]
    labels = available if config.labels is None else [label.removeprefix("y_") for label in config.labels]
    absent = [f"{prefix}{label}" for label in labels for prefix in ("y_", "p_") if f"{prefix}{label}" not in df.columns]
    if absent or not labels:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=absent or ["y_<label>/p_<label>"], expected="a y_ and a p_ column per label"))
    for column in [f"{prefix}{label}" for label in labels for prefix in ("y_", "p_")]:
        if not pd.api.types.is_numeric_dtype(df[column]) and not pd.api.types.is_bool_dtype(df[column]):
            raise RadfairInputError(BAD_VALUES.format(path=path, column=column, values=preview(df[column].dropna()),
                                                      expected="expected numbers, not text"))
    bad_split = df["split"][~df["split"].isin(("train", "val", "test"))]
    if len(bad_split):
        raise RadfairInputError(BAD_VALUES.format(path=path, column="split", values=preview(bad_split), expected="expected train, val or test"))
    used = df["split"].isin(("val", "test"))  # train rows are never used by the audit: their scores may be blank
    for label in labels:
        y, p = df[f"y_{label}"], pd.to_numeric(df[f"p_{label}"], errors="coerce")
        bad_y = y[y.notna() & ~y.isin((0, 1))]
        if len(bad_y):
            raise RadfairInputError(BAD_VALUES.format(path=path, column=f"y_{label}", values=preview(bad_y), expected="expected 1, 0 or NaN"))
        bad_p = df[f"p_{label}"][used & (p.isna() | (p < 0) | (p > 1))]
        if len(bad_p):
            raise RadfairInputError(BAD_VALUES.format(path=path, column=f"p_{label}", values=preview(bad_p),
                                                      expected="expected scores in [0, 1] on val and test rows, no NaN"))
    return labels


class Evaluation:
    """One scored table's test rows, encoded for fast (replicated) statistics (:class:`ScoreSweep`)."""

    def __init__(self, test: pd.DataFrame, labels: list[str], thresholds: np.ndarray, attributes: list[str],
                 patient_index: pd.Index, auc: bool):
        self.labels = labels
        self.attributes = attributes
        self.auc = auc
        self.image_patient = patient_index.get_indexer(test["patient_id"])
        y = test[[f"y_{k}" for k in labels]].to_numpy(float)
        scores = test[[f"p_{k}" for k in labels]].to_numpy(float)
        self.groups: dict[str, list[str]] = {}
        all_codes = []
        for attribute in attributes:
            codes, names = encode_groups(attribute_values(test, attribute), attribute)
            self.groups[attribute] = names
            all_codes.append(codes)
        # the overall AUROC is one more grouping, with a single group
        self.sweep = ScoreSweep(y, scores, thresholds, self.image_patient, [np.zeros(len(test), np.int64)] + all_codes,
                                [1] + [len(self.groups[a]) for a in attributes], N_BINS)
        self._y, self._scores, self._codes = y, scores, all_codes
        self._ap: list | None = None

    def average_precision(self) -> list[np.ndarray]:
        """Average precision per grouping: overall (1, L), then each attribute (G, L); NaN where a group has no
        positive or no negative. Point estimates only. AP = sum_k (R_k - R_(k-1)) P_k over the distinct thresholds,
        scikit-learn's ``average_precision_score`` (no interpolation; the tests compare the two)."""
        if self._ap is not None:
            return self._ap
        groupings = [np.zeros(len(self._y), np.int64)] + self._codes
        sizes = [1] + [len(self.groups[a]) for a in self.attributes]
        out = [np.full((size, self._y.shape[1]), np.nan) for size in sizes]
        for j in range(self._y.shape[1]):
            known = ~np.isnan(self._y[:, j])
            order = np.flatnonzero(known)[np.argsort(-self._scores[known, j], kind="mergesort")]  # one sort per label
            for codes, size, values in zip(groupings, sizes, out, strict=True):
                for g in range(size):
                    rows = order[codes[order] == g]
                    y, s = self._y[rows, j], self._scores[rows, j]
                    n_pos = (y == 1).sum()
                    if n_pos == 0 or n_pos == len(y):
                        continue
                    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each distinct score
                    tp = np.cumsum(y)[last]
                    precision = tp / (last + 1)
                    recall = tp / n_pos
                    values[g, j] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
        self._ap = out
        return out

    def counts_at(self, thresholds: np.ndarray, multiplicities: np.ndarray) -> list[np.ndarray]:
        """Confusion counts (B, G, L, 4) per attribute, then overall (B, 1, L, 4), with one threshold row per
        replicate (``thresholds`` (B, L)).

        The sweep's counts use one fixed threshold per label; this slower path (one sparse product per replicate
        and attribute) carries threshold uncertainty. A NaN threshold (the resampled validation rows held one
        class) makes that replicate's counts of the label NaN.
        """
        import scipy.sparse as sp

        n, n_labels = self._scores.shape
        onehots = []
        groupings = list(zip(self._codes, [len(self.groups[a]) for a in self.attributes], strict=True))
        for codes, size in groupings + [(np.zeros(n, np.int64), 1)]:  # the attributes, then overall
            known = codes >= 0
            onehots.append(sp.csr_matrix((np.ones(known.sum()), (codes[known], np.flatnonzero(known))), shape=(size, n)))
        out = [np.empty((len(thresholds), m.shape[0], n_labels, 4)) for m in onehots]
        for b, (t, w) in enumerate(zip(thresholds, multiplicities, strict=True)):
            with np.errstate(invalid="ignore"):
                indicators = confusion_indicators(self._y, self._scores >= t[None, :])  # (n, L, 4)
            weighted = (indicators * w[self.image_patient][:, None, None]).reshape(n, n_labels * 4)
            for a, m in enumerate(onehots):
                counts = np.asarray(m @ weighted).reshape(m.shape[0], n_labels, 4)
                counts[:, ~np.isfinite(t)] = np.nan
                out[a][b] = counts
        return out

    def statistics(self, multiplicities: np.ndarray, summary_mask: np.ndarray,
                   thresholds: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every statistic for each row of ``multiplicities`` (B, n_patients); arrays lead with B.

        ``thresholds`` (B, L): a threshold per replicate (threshold uncertainty, :meth:`counts_at`); None: the
        fixed thresholds of the sweep.
        """
        overall, *by_attribute = self.sweep.run(multiplicities)
        per_replicate = self.counts_at(thresholds, multiplicities) if thresholds is not None else None
        out: dict[str, np.ndarray] = {}
        if self.auc:
            out["auc|all"] = overall["auc"][:, 0]
        overall_counts = overall["counts"] if per_replicate is None else per_replicate[-1]
        r_all = rates(overall_counts)
        for name in ("tpr", "fpr"):
            out[f"{name}|all"] = r_all[name][:, 0]
        out["selection_rate|all"] = selection_rate(overall_counts)[:, 0]
        out["ece|all"] = residual_metrics(overall["residuals"])["ece"][:, 0]
        out["brier|all"] = overall["brier"][:, 0]
        for index, (attribute, swept) in enumerate(zip(self.attributes, by_attribute, strict=True)):
            counts = swept["counts"] if per_replicate is None else per_replicate[index]
            r = rates(counts)
            for name in ("n", "n_pos", "n_neg") + COUNT_NAMES + RATE_NAMES:
                out[f"{name}|{attribute}"] = r[name]
            out[f"brier|{attribute}"] = swept["brier"]
            for name, value in equalized_odds_ratios(r["tpr"], r["fpr"]).items():
                out[f"{name}|{attribute}"] = value
            disparity = tpr_disparity(r["tpr"])
            out[f"disparity|{attribute}"] = disparity
            out[f"gap|{attribute}"] = gap(disparity)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[f"average_gap|{attribute}"] = np.nanmean(out[f"gap|{attribute}"][:, summary_mask], axis=-1)
            for name, value in equalized_odds(r["tpr"], r["fpr"]).items():
                out[f"{name}|{attribute}"] = value
            selection = selection_rate(counts)
            out[f"selection_rate|{attribute}"] = selection
            out[f"dp_difference|{attribute}"] = gap(selection)
            out[f"dp_ratio|{attribute}"] = min_max_ratio(selection)
            cal = residual_metrics(swept["residuals"])
            for name in ("n_cal", "ece", "citl"):
                out[f"{name}|{attribute}"] = cal[name]
            if multiplicities.shape[0] == 1:  # the point estimate: per-group bins for the reliability curves
                bins = calibration_metrics(swept["bins"])
                for name in ("bin_count", "bin_observed", "bin_predicted"):
                    out[f"{name}|{attribute}"] = bins[name]
            out[f"calibration_gap|{attribute}"] = gap(cal["ece"])
            if self.auc:
                out[f"auc|{attribute}"] = swept["auc"]
        return out


def _hash(path: str | Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Prepared:
    """One table after the input rules: the audited labels, thresholds, test rows, the whole normalised table
    and the notes of every input rule applied (:func:`radfair.fairness._inputs.normalise_table`)."""

    labels: list[str]
    thresholds: pd.DataFrame
    test: pd.DataFrame
    table: pd.DataFrame
    notes: list[str]
    hard: list[str]  # labels audited as 0/1 predictions (hard_prediction_labels)
    missing: dict[str, dict[str, int]]  # test images without a value, per attribute (missing_attribute_counts)


def _prepare(df: pd.DataFrame, config: AuditConfig, path: str) -> Prepared:
    df, notes = normalise_table(df, attributes=config.attributes, columns=config.columns, scores=config.scores,
                                uncertain=config.uncertain, threshold=str(config.threshold),
                                threshold_on_test=config.threshold_on_test, path=path)
    split_absent = bool(df.attrs.get("split_absent"))
    labels = validate_scored(df, config, path)
    df = clean_scored(df, config, path)
    df.attrs["split_absent"] = split_absent
    hard = hard_prediction_labels(df, labels)
    thresholds = resolve_thresholds(df, labels, config.threshold, config.threshold_on_test or split_absent, path, hard=hard)
    if parse_rule(str(config.threshold)) is not None:
        for label in hard:
            warnings.warn(HARD_PREDICTIONS.format(label=label, rule=config.threshold), AuditWarning, stacklevel=2)
    test = df[df["split"] == "test"].reset_index(drop=True)
    if test.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=path, step="selecting split == 'test'"))
    check_attributes(test, config.attributes, path)
    missing = missing_attribute_counts(test, config.attributes)
    for attribute, counts in missing.items():
        if counts["test_images"]:
            warnings.warn(MISSING_ATTRIBUTE.format(attribute=attribute, count=counts["test_images"],
                                                   total=counts["test_images_total"], patients=counts["test_patients"]),
                          AuditWarning, stacklevel=2)
    undefined = [label for label, t in zip(labels, thresholds["threshold"], strict=True) if not np.isfinite(t)]
    for label in undefined:
        warnings.warn(f"label {label}: {NO_THRESHOLD}", AuditWarning, stacklevel=2)
        test[f"y_{label}"] = np.nan  # no threshold -> no metric: NaN everywhere, never a "perfect" 0 gap
    return Prepared(labels, thresholds, test, df, notes, hard, missing)


def run_audit(df: pd.DataFrame, config: AuditConfig, compare: pd.DataFrame | None = None,
              path: str = "scored table", compare_path: str = "compare table", on_point=None) -> dict:
    """Compute every output table; returns {name: DataFrame} plus "audit" (a JSON-ready dict).

    ``on_point``: called once the point estimates exist, before the bootstrap, with the tables that need no
    interval (``roc``, ``reliability``, ``group_metrics`` with the operating points, ``gaps``), so that figures of
    them can be drawn while the replicates run (:func:`audit_files` does).
    """
    check_config(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = _prepare(df, config, path)
        labels, thresholds, test = prepared.labels, prepared.thresholds, prepared.test
        patients = pd.Index(pd.unique(test["patient_id"]))
        if compare is not None:
            prepared_b = _prepare(compare, config, compare_path)
            labels_b, thresholds_b, test_b = prepared_b.labels, prepared_b.thresholds, prepared_b.test
            if labels_b != labels:
                raise RadfairInputError(f"{compare_path}: labels {labels_b} differ from {path}'s {labels}")
            check_paired(test, test_b, path, compare_path)
            patients = patients.append(pd.Index(pd.unique(test_b["patient_id"]))).unique()
        summary_mask = np.array([label not in config.summary_exclude for label in labels])
        ev = Evaluation(test, labels, thresholds["threshold"].to_numpy(float), config.attributes, patients, config.auc)
        ev_b = Evaluation(test_b, labels, thresholds_b["threshold"].to_numpy(float), config.attributes, patients, config.auc) if compare is not None else None

        ones = np.ones((1, len(patients)))
        point = {k: v[0] for k, v in ev.statistics(ones, summary_mask).items()}
        point_b = {k: v[0] for k, v in ev_b.statistics(ones, summary_mask).items()} if ev_b else None
        roc = roc_table(ev._y, ev._scores, labels, {a: (c, ev.groups[a]) for a, c in zip(ev.attributes, ev._codes, strict=True)})
        reliability = _reliability_table(ev, point, labels)
        if on_point is not None:
            on_point(_point_tables(ev, point, labels) | {"roc": roc, "reliability": reliability})
        reps: dict[str, list] = {}
        reps_delta: dict[str, list] = {}

        sizes = chunk_sizes(config.bootstrap, config.chunk)  # each chunk drawn in its worker, from its own generator
        if config.threshold_in_bootstrap:  # each replicate re-chooses the thresholds on resampled validation patients
            rechosen = validation_thresholds(prepared.table, labels, config, path, prepared.hard)
            rechosen_b = (validation_thresholds(prepared_b.table, labels, config, compare_path, prepared_b.hard)
                          if compare is not None else None)
            edges = np.cumsum([0] + sizes)
            tasks = [(i, size, rechosen[lo:hi], rechosen_b[lo:hi] if rechosen_b is not None else None)
                     for i, (size, lo, hi) in enumerate(zip(sizes, edges[:-1], edges[1:], strict=True))]
        else:
            tasks = [(i, size, None, None) for i, size in enumerate(sizes)]

        def replicate(task):
            index, size, t_a, t_b = task
            w = chunk_multiplicities(len(patients), size, config.seed, index)
            stats_a = ev.statistics(w, summary_mask, t_a)
            stats_b = ev_b.statistics(w, summary_mask, t_b) if ev_b is not None else {}
            return stats_a, {k: v - stats_a[k] for k, v in stats_b.items()}

        for stats_a, deltas in map_chunks(replicate, tasks, config.workers):
            for k, v in stats_a.items():
                reps.setdefault(k, []).append(v)
            for k, v in deltas.items():
                reps_delta.setdefault(k, []).append(v)
        reps_all = {k: np.concatenate(v) for k, v in reps.items()} if config.bootstrap else {}
        delta_all = {k: np.concatenate(v) for k, v in reps_delta.items()} if config.bootstrap else {}
        _warn_empty_groups(ev, point, labels, skip=test.columns[test.isna().all()], min_group_size=config.min_group_size)

        tables = _tables(ev, point, reps_all, labels, summary_mask, config, prepared.missing) | {"reliability": reliability}
        tables["thresholds"] = thresholds
        tables["performance"]["threshold"] = thresholds["threshold"].to_numpy(float)
        tables["roc"] = roc
        if ev_b is not None:
            tables["comparison"] = _comparison(ev, point, point_b, delta_all, labels, config)
            tables["thresholds_compare"] = thresholds_b
    messages = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    for message in messages:
        warnings.warn(message, AuditWarning, stacklevel=2)
    tables["audit"] = {
        "radfair_version": __version__,
        "versions": {"numpy": np.__version__, "pandas": pd.__version__},
        "config": asdict(config),
        "labels": labels,
        "test_rows": int(len(test)),
        "test_patients": int(test["patient_id"].nunique()),
        "missing_attribute": prepared.missing,
        "hard_prediction_labels": prepared.hard,
        "conventions": CONVENTIONS,
        "warnings": messages,
        "input_rules": prepared.notes,
        "threshold_source": _threshold_source(thresholds, config, bool(prepared.table.attrs.get("split_absent"))),
    }
    return tables


@dataclass
class SharedReplicates:
    """Statistics of several scored tables of the same test images under the same patient resamples.

    ``point[i]`` and ``reps[i]`` are the statistics of table ``i`` (the keys of :meth:`Evaluation.statistics`,
    e.g. ``"tpr|sex"`` (G, L), ``"disparity|sex"`` (G, L), ``"gap|sex"`` (L), ``"auc|all"`` (L)); each array of
    ``reps[i]`` leads with the replicate axis B, and replicate b of every table used the same patients.
    """

    labels: list[str]
    groups: dict[str, list[str]]
    thresholds: list[pd.DataFrame]
    point: list[dict[str, np.ndarray]]
    reps: list[dict[str, np.ndarray]]
    n_test_images: int
    n_test_patients: int
    missing_attribute: dict[str, dict[str, int]]


def shared_replicates(tables: list[pd.DataFrame], config: AuditConfig, paths: list[str] | None = None) -> SharedReplicates:
    """Point and patient-bootstrap statistics of ``tables`` (e.g. the seeds and arms of one study dataset).

    Every table is validated, cleaned and thresholded as ``radfair audit`` does (thresholds from each table's
    own validation rows by ``config.threshold``); their test rows must be the same images of the same patients
    (:func:`check_paired`). One set of ``config.bootstrap`` multiplicity matrices (seed ``config.seed``) is
    applied to every table, so differences between tables are paired. Raises :class:`RadfairInputError`.
    """
    check_config(config)
    paths = paths or [f"scored table {i}" for i in range(len(tables))]
    prepared = [_prepare(df, config, path) for df, path in zip(tables, paths, strict=True)]
    labels, first = prepared[0].labels, prepared[0].test
    for other_labels, test, path in [(p.labels, p.test, path) for p, path in zip(prepared[1:], paths[1:], strict=True)]:
        if other_labels != labels:
            raise RadfairInputError(f"{path}: labels {other_labels} differ from {paths[0]}'s {labels}")
        check_paired(first, test, paths[0], path)
    patients = pd.Index(pd.unique(first["patient_id"]))
    summary_mask = np.array([label not in config.summary_exclude for label in labels])
    evaluations = [Evaluation(test, labels, thresholds["threshold"].to_numpy(float), config.attributes, patients, config.auc)
                   for thresholds, test in [(p.thresholds, p.test) for p in prepared]]
    groups = evaluations[0].groups
    for ev, path in zip(evaluations[1:], paths[1:], strict=True):
        if ev.groups != groups:
            raise RadfairInputError(f"{path}: attribute groups {ev.groups} differ from {paths[0]}'s {groups}")
    ones = np.ones((1, len(patients)))
    point = [{k: v[0] for k, v in ev.statistics(ones, summary_mask).items()} for ev in evaluations]
    reps: list[dict[str, list]] = [{} for _ in evaluations]
    rechosen = ([validation_thresholds(p.table, labels, config, path, p.hard) for p, path in zip(prepared, paths, strict=True)]
                if config.threshold_in_bootstrap and config.bootstrap else [None] * len(tables))
    sizes = chunk_sizes(config.bootstrap, config.chunk)
    starts = np.cumsum([0] + sizes)

    def replicate(index: int) -> list[dict[str, np.ndarray]]:
        w = chunk_multiplicities(len(patients), sizes[index], config.seed, index)
        lo, hi = starts[index], starts[index + 1]
        return [ev.statistics(w, summary_mask, rechosen[i][lo:hi] if rechosen[i] is not None else None)
                for i, ev in enumerate(evaluations)]

    for chunk in map_chunks(replicate, range(len(sizes)), config.workers):
        for i, stats in enumerate(chunk):
            for k, v in stats.items():
                reps[i].setdefault(k, []).append(v)
    stacked = [{k: np.concatenate(v) for k, v in r.items()} for r in reps]
    return SharedReplicates(labels, groups, [p.thresholds for p in prepared], point, stacked, int(len(first)),
                            int(first["patient_id"].nunique()), prepared[0].missing)


def validation_thresholds(df: pd.DataFrame, labels: list[str], config: AuditConfig, path: str,
                          hard: list[str] = ()) -> np.ndarray:
    """(B, L) thresholds re-chosen by ``config.threshold``'s rule on B patient resamples of the validation rows.

    Validation patients are drawn with their own generator (seed ``[config.seed, 1]``), independent of the test
    resamples, so the intervals carry the uncertainty of where the threshold falls (hard 0/1 labels keep 0.5).
    """
    from ._bootstrap import patient_multiplicities
    from ._thresholds import choose_threshold

    val = df[df["split"] == "val"]
    patients = pd.Index(pd.unique(val["patient_id"]))
    unit = patients.get_indexer(val["patient_id"])
    y = val[[f"y_{k}" for k in labels]].to_numpy(float)
    scores = val[[f"p_{k}" for k in labels]].to_numpy(float)
    hard = set(hard)
    rng = np.random.default_rng([config.seed, 1])
    out = np.empty((config.bootstrap, len(labels)))
    done = 0
    while done < config.bootstrap:
        size = min(config.chunk, config.bootstrap - done)
        weights = patient_multiplicities(len(patients), size, rng)
        for b in range(size):
            rows = np.repeat(np.arange(len(val)), weights[b, unit].astype(np.int64))
            out[done + b] = [0.5 if label in hard else choose_threshold(y[rows, j], scores[rows, j], config.threshold)
                             for j, label in enumerate(labels)]
        done += size
    return out


def _point_tables(ev: Evaluation, point: dict, labels: list[str]) -> dict[str, pd.DataFrame]:
    """The tables the point estimates alone give for early figures: operating points and gaps."""
    ops, gaps = [], []
    for attribute, groups in ev.groups.items():
        for j, label in enumerate(labels):
            gaps.append({"label": label, "attribute": attribute, "gap": float(point[f"gap|{attribute}"][j])})
            for g, group in enumerate(groups):
                ops.append({"label": label, "attribute": attribute, "group": group, "n_pos": int(point[f"n_pos|{attribute}"][g, j]),
                            "tpr": float(point[f"tpr|{attribute}"][g, j]), "fpr": float(point[f"fpr|{attribute}"][g, j])})
    return {"group_metrics": pd.DataFrame(ops), "gaps": pd.DataFrame(gaps)}


def _reliability_table(ev: Evaluation, point: dict, labels: list[str]) -> pd.DataFrame:
    """Per attribute, label, group and calibration bin: count, mean predicted and observed rate (point estimates)."""
    rows = []
    edges = np.linspace(0, 1, N_BINS + 1)
    for attribute, groups in ev.groups.items():
        for j, label in enumerate(labels):
            for g, group in enumerate(groups):
                for k in range(N_BINS):
                    rows.append({"label": label, "attribute": attribute, "group": group, "bin": k,
                                 "bin_low": float(edges[k]), "bin_high": float(edges[k + 1]),
                                 "n": int(point[f"bin_count|{attribute}"][g, j, k]),
                                 "mean_predicted": float(point[f"bin_predicted|{attribute}"][g, j, k]),
                                 "observed_rate": float(point[f"bin_observed|{attribute}"][g, j, k])})
    return pd.DataFrame(rows)


def _warn_empty_groups(ev: Evaluation, point: dict, labels: list[str], skip=(), min_group_size: int = 10) -> None:
    small = sum(int(np.sum((point[f"n_pos|{a}"] > 0) & (point[f"n_pos|{a}"] < min_group_size))) for a in ev.groups)
    if small:
        warnings.warn(f"{small} group x finding cell(s) have 1 to {min_group_size - 1} positives in test (small_group): their "
                      "TPR intervals are floored by the Wilson interval and they are left out of the report's findings",
                      AuditWarning, stacklevel=3)
    for attribute, groups in ev.groups.items():
        n_pos, n_neg = point[f"n_pos|{attribute}"], point[f"n_neg|{attribute}"]
        for g, group in enumerate(groups):
            for j, label in enumerate(labels):
                if f"y_{label}" in skip:
                    continue  # already reported once (no threshold, or no labels at all)
                if n_pos[g, j] == 0:
                    warnings.warn(f"{attribute}={group}, label {label}: no positives in test; TPR is NaN", AuditWarning, stacklevel=3)
                if n_neg[g, j] == 0:
                    warnings.warn(f"{attribute}={group}, label {label}: no negatives in test; FPR is NaN", AuditWarning, stacklevel=3)


def _ci(reps: dict, key: str, level: float, shape) -> tuple[np.ndarray, np.ndarray]:
    if key not in reps:
        return np.full(shape, np.nan), np.full(shape, np.nan)
    return percentile_ci(reps[key], level)


def _spread_intervals(point: dict, reps: dict, attribute: str, summary_mask: np.ndarray, level: float) -> dict:
    """Max-t projection intervals (``_intervals``) of gap, average_gap, eodd_worst, eodd_mean and eop."""
    tpr, fpr = point[f"tpr|{attribute}"], point[f"fpr|{attribute}"]
    n_labels = tpr.shape[1]
    if f"tpr|{attribute}" not in reps:
        nan = np.full(n_labels, np.nan)
        return {name: (nan, nan) for name in ("gap",) + EO_NAMES + RATIO_NAMES} | {"average_gap": (np.array(np.nan), np.array(np.nan))}
    n_pos, n_neg = point[f"n_pos|{attribute}"], point[f"n_neg|{attribute}"]
    tpr_reps, fpr_reps = reps[f"tpr|{attribute}"], reps[f"fpr|{attribute}"]
    factor = 2.0 if tpr.shape[0] == 2 else 1.0  # binary: gap = 2 |dTPR|; otherwise the median cancels
    lo, hi = max_t_band(tpr, tpr_reps, n_pos, level, family_axes=(0,))
    eop = spread_interval(lo, hi, axis=0)
    both = np.concatenate([tpr, fpr]), np.concatenate([tpr_reps, fpr_reps], axis=1), np.concatenate([n_pos, n_neg])
    lo2, hi2 = max_t_band(*both, level, family_axes=(0,))
    g = tpr.shape[0]
    d_tpr, d_fpr = spread_interval(lo2[:g], hi2[:g], axis=0), spread_interval(lo2[g:], hi2[g:], axis=0)
    out = {"eop": eop, "gap": (factor * eop[0], factor * eop[1]),
           "eodd_worst": (np.maximum(d_tpr[0], d_fpr[0]), np.maximum(d_tpr[1], d_fpr[1])),
           "eodd_mean": ((d_tpr[0] + d_fpr[0]) / 2, (d_tpr[1] + d_fpr[1]) / 2)}
    r_tpr, r_fpr = min_max_ratio_interval(lo2[:g], hi2[:g], axis=0), min_max_ratio_interval(lo2[g:], hi2[g:], axis=0)
    out["eop_ratio"] = min_max_ratio_interval(lo, hi, axis=0)
    out["eo_ratio"] = (np.fmin(r_tpr[0], r_fpr[0]), np.fmin(r_tpr[1], r_fpr[1]))
    mask = summary_mask & ~np.isnan(point[f"gap|{attribute}"])
    if mask.any():
        lo3, hi3 = max_t_band(tpr[:, mask], tpr_reps[:, :, mask], n_pos[:, mask], level, family_axes=(0, 1))
        per_label = spread_interval(lo3, hi3, axis=0)
        out["average_gap"] = (np.array(factor * np.mean(per_label[0])), np.array(factor * np.mean(per_label[1])))
    else:
        out["average_gap"] = (np.array(np.nan), np.array(np.nan))
    return out


def _selection_calibration_tables(ev: Evaluation, point: dict, reps: dict, labels: list[str], level: float,
                                  parity_ratio: float = 0.8) -> dict:
    """selection_rates, demographic_parity, calibration and calibration_gap tables."""
    sel_rows, dp_rows, cal_rows, gap_rows = [], [], [], []
    for attribute, groups in ev.groups.items():
        shape = (len(groups), len(labels))
        sel, ece, citl = (point[f"{k}|{attribute}"] for k in ("selection_rate", "ece", "citl"))
        n = point[f"n_cal|{attribute}"]
        sel_ci, ece_ci, citl_ci = (_ci(reps, f"{k}|{attribute}", level, shape) for k in ("selection_rate", "ece", "citl"))
        projected = {}
        for name, rate, denominator in (("dp_difference", "selection_rate", n), ("calibration_gap", "ece", None)):
            key = f"{rate}|{attribute}"
            if key in reps:
                lo, hi = max_t_band(point[key], reps[key], denominator, level, family_axes=(0,))
                interval = spread_interval(lo, hi, axis=0)
                corrected = bias_corrected(point[f"{name}|{attribute}"], reps[f"{name}|{attribute}"], *interval)
                if name == "dp_difference":
                    projected["dp_ratio"] = min_max_ratio_interval(lo, hi, axis=0)
            else:
                interval = (np.full(len(labels), np.nan),) * 2
                corrected = np.full(len(labels), np.nan)
                if name == "dp_difference":
                    projected["dp_ratio"] = interval
            projected[name] = (interval, corrected)
        for j, label in enumerate(labels):
            for g, group in enumerate(groups):
                base = {"label": label, "attribute": attribute, "group": group, "n": int(n[g, j])}
                sel_rows.append(base | {"selection_rate": float(sel[g, j]), "ci_low": float(sel_ci[0][g, j]), "ci_high": float(sel_ci[1][g, j])})
                cal_rows.append(base | {"ece": float(ece[g, j]), "ece_ci_low": float(ece_ci[0][g, j]), "ece_ci_high": float(ece_ci[1][g, j]),
                                        "citl": float(citl[g, j]), "citl_ci_low": float(citl_ci[0][g, j]), "citl_ci_high": float(citl_ci[1][g, j])})
            for name, rows in (("dp_difference", dp_rows), ("calibration_gap", gap_rows)):
                (lo, hi), corrected = projected[name]
                rows.append({"label": label, "attribute": attribute, name: float(point[f"{name}|{attribute}"][j]),
                             f"{name}_bc": float(corrected[j]), "ci_low": float(lo[j]), "ci_high": float(hi[j])})
            ratio = float(point[f"dp_ratio|{attribute}"][j])
            dp_rows[-1] |= {"dp_ratio": ratio, "dp_ratio_ci_low": float(projected["dp_ratio"][0][j]),
                            "dp_ratio_ci_high": float(projected["dp_ratio"][1][j]),
                            "dp_ratio_parity": bool(ratio >= parity_ratio) if np.isfinite(ratio) else None}
    return {"selection_rates": pd.DataFrame(sel_rows), "demographic_parity": pd.DataFrame(dp_rows),
            "calibration": pd.DataFrame(cal_rows), "calibration_gap": pd.DataFrame(gap_rows)}


def _tables(ev: Evaluation, point: dict, reps: dict, labels: list[str], summary_mask: np.ndarray, config: AuditConfig,
            missing: dict[str, dict[str, int]]) -> dict:
    level = config.level
    group_rows, disp_rows, gap_rows, eo_rows, summary_rows = [], [], [], [], []
    for attribute, groups in ev.groups.items():
        n_groups = len(groups)
        cis = {name: _ci(reps, f"{name}|{attribute}", level, (n_groups, len(labels))) for name in RATE_NAMES + ("auc", "disparity", "brier")}
        if reps:  # a rate's interval is never narrower than its Wilson score interval (small groups: [1, 1] is no interval)
            tp, fn, fp, tn = (point[f"{k}|{attribute}"] for k in COUNT_NAMES)
            wilson = {name: wilson_interval(x, n, level) for name, (x, n) in {
                "tpr": (tp, tp + fn), "fnr": (fn, tp + fn), "fpr": (fp, fp + tn), "tnr": (tn, fp + tn),
                "ppv": (tp, tp + fp), "fdr": (fp, tp + fp), "npv": (tn, tn + fn), "for": (fn, tn + fn)}.items()}
            for name, (w_low, w_high) in wilson.items():
                cis[name] = (np.fmin(cis[name][0], w_low), np.fmax(cis[name][1], w_high))
            reference = point[f"tpr|{attribute}"] - point[f"disparity|{attribute}"]  # the other group's TPR, or the median
            w_low, w_high = wilson["tpr"]
            cis["disparity"] = (np.fmax(np.fmin(cis["disparity"][0], w_low - reference), -1.0),
                                np.fmin(np.fmax(cis["disparity"][1], w_high - reference), 1.0))
        ap = ev.average_precision()[list(ev.groups).index(attribute) + 1]
        spread_cis = _spread_intervals(point, reps, attribute, summary_mask, level)
        gap_ci = spread_cis["gap"]
        eo_ci = {name: spread_cis[name] for name in EO_NAMES}
        bc = {name: bias_corrected(point[f"{name}|{attribute}"], reps[f"{name}|{attribute}"], *spread_cis[name])
              if f"{name}|{attribute}" in reps else np.full(np.shape(point[f"{name}|{attribute}"]), np.nan)
              for name in ("gap", "average_gap") + EO_NAMES}
        n_pos = point[f"n_pos|{attribute}"]
        share = n_pos / np.where(n_pos.sum(axis=0) > 0, n_pos.sum(axis=0), np.nan)
        disparity = point[f"disparity|{attribute}"]
        for j, label in enumerate(labels):
            for g, group in enumerate(groups):
                row = {"label": label, "attribute": attribute, "group": group,
                       "n": int(point[f"n|{attribute}"][g, j]), "n_pos": int(n_pos[g, j]), "n_neg": int(point[f"n_neg|{attribute}"][g, j])}
                for name in COUNT_NAMES:
                    row[name] = int(point[f"{name}|{attribute}"][g, j])
                for name in RATE_NAMES + ("auc", "brier"):
                    value = point.get(f"{name}|{attribute}")
                    row[name] = float(value[g, j]) if value is not None else np.nan
                    row[f"{name}_ci_low"], row[f"{name}_ci_high"] = float(cis[name][0][g, j]), float(cis[name][1][g, j])
                row["average_precision"] = float(ap[g, j])
                row["small_group"] = bool(n_pos[g, j] < config.min_group_size)
                group_rows.append(row)
                disp_rows.append({"label": label, "attribute": attribute, "group": group, "share_of_positives": float(share[g, j]),
                                  "tpr_disparity": float(disparity[g, j]), "ci_low": float(cis["disparity"][0][g, j]),
                                  "ci_high": float(cis["disparity"][1][g, j]), "small_group": row["small_group"]})
            fav = label_winners(disparity[:, j:j + 1], favourable=True)[0]
            unfav = label_winners(disparity[:, j:j + 1], favourable=False)[0]
            gap_rows.append({"label": label, "attribute": attribute, "gap": float(point[f"gap|{attribute}"][j]),
                             "gap_bc": float(bc["gap"][j]), "ci_low": float(gap_ci[0][j]), "ci_high": float(gap_ci[1][j]),
                             "most_favorable": groups[fav] if fav >= 0 else "",
                             "most_unfavorable": groups[unfav] if unfav >= 0 else ""})
            eo = {"label": label, "attribute": attribute}
            for name in EO_NAMES:
                eo[name] = float(point[f"{name}|{attribute}"][j])
                eo[f"{name}_bc"] = float(bc[name][j])
                eo[f"{name}_ci_low"], eo[f"{name}_ci_high"] = float(eo_ci[name][0][j]), float(eo_ci[name][1][j])
            for name in RATIO_NAMES:
                value = float(point[f"{name}|{attribute}"][j])
                eo[name] = value
                eo[f"{name}_ci_low"], eo[f"{name}_ci_high"] = float(spread_cis[name][0][j]), float(spread_cis[name][1][j])
                eo[f"{name}_parity"] = bool(value >= config.parity_ratio) if np.isfinite(value) else None
            eo_rows.append(eo)
        gaps = np.where(summary_mask, point[f"gap|{attribute}"], np.nan)
        avg_ci = spread_cis["average_gap"]
        finite = np.isfinite(gaps)
        summary_rows.append({
            "attribute": attribute,
            "binary": len(groups) == 2,
            "missing_test_images": missing[attribute]["test_images"],
            "average_gap": float(point[f"average_gap|{attribute}"]),
            "average_gap_bc": float(bc["average_gap"]),
            "ci_low": float(avg_ci[0]), "ci_high": float(avg_ci[1]),
            "lowest_label": labels[int(np.nanargmin(gaps))] if finite.any() else "",
            "lowest_gap": float(np.nanmin(gaps)) if finite.any() else np.nan,
            "highest_label": labels[int(np.nanargmax(gaps))] if finite.any() else "",
            "highest_gap": float(np.nanmax(gaps)) if finite.any() else np.nan,
            "unfavorable": extreme_groups(disparity[:, summary_mask], groups, favourable=False),
            "favorable": extreme_groups(disparity[:, summary_mask], groups, favourable=True),
        })
    auc_all = point.get("auc|all")
    auc_ci = _ci(reps, "auc|all", level, (len(labels),))
    performance = pd.DataFrame({"label": labels, "auc": auc_all if auc_all is not None else np.nan,
                                "ci_low": auc_ci[0], "ci_high": auc_ci[1]})
    for name in ("tpr", "fpr", "selection_rate", "ece", "brier"):  # the overall row beside the groups
        low, high = _ci(reps, f"{name}|all", level, (len(labels),))
        performance[name], performance[f"{name}_ci_low"], performance[f"{name}_ci_high"] = point[f"{name}|all"], low, high
    performance["average_precision"] = ev.average_precision()[0][0]
    performance["threshold"] = np.nan  # filled by run_audit
    extra = _selection_calibration_tables(ev, point, reps, labels, level, config.parity_ratio)
    return extra | {"group_metrics": pd.DataFrame(group_rows), "disparities": pd.DataFrame(disp_rows), "gaps": pd.DataFrame(gap_rows),
            "summary": pd.DataFrame(summary_rows), "equalized_odds": pd.DataFrame(eo_rows), "performance": performance}


def _comparison(ev: Evaluation, point_a: dict, point_b: dict, deltas: dict, labels: list[str], config: AuditConfig) -> pd.DataFrame:
    rows = []

    def add(label, attribute, metric, key, index):
        a, b = float(point_a[key][index]), float(point_b[key][index])
        d = b - a
        if key in deltas:
            reps = deltas[key][(slice(None),) + index]
            low, high = percentile_ci(reps, config.level)
            p = float(p_value(np.array(d), reps, config.p_value))
        else:
            low = high = p = np.nan
        rows.append({"label": label, "attribute": attribute, "metric": metric, "value_a": a, "value_b": b,
                     "delta": d, "ci_low": float(low), "ci_high": float(high), "p_value": p})

    if "auc|all" in point_a:
        for j, label in enumerate(labels):
            add(label, "(all)", "auc", "auc|all", (j,))
    for attribute in ev.groups:
        for j, label in enumerate(labels):
            for metric in ("gap",) + EO_NAMES:
                add(label, attribute, metric, f"{metric}|{attribute}", (j,))
        add("(average)", attribute, "average_gap", f"average_gap|{attribute}", ())
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"].to_numpy())
    table["p_bh"] = benjamini_hochberg(table["p_value"].to_numpy())
    return table


OUTPUTS = ("roc", "thresholds", "group_metrics", "disparities", "gaps", "summary", "equalized_odds", "performance",
           "selection_rates", "demographic_parity", "calibration", "calibration_gap", "reliability",
           "comparison", "thresholds_compare")


def audit_files(scored: str | Path, out: str | Path, config: AuditConfig, compare: str | Path | None = None) -> dict:
    """Read, audit and write every output (CSV and parquet) plus ``audit.json`` into ``out``.

    The files are written into a temporary folder beside ``out`` and then moved in; outputs of an
    earlier run that this run does not write (e.g. ``comparison.csv``) are removed, so ``out`` never
    mixes two runs.
    """
    out = output_folder(out, create=False)
    check_config(config)
    df = read_table(scored, "scored table")
    other = read_table(compare, "scored table to compare") if compare else None
    early_dir = Path(tempfile.mkdtemp(prefix=".radfair-figures-"))
    painter = FigurePainter(config.workers)
    staging = None
    try:
        # ROC and reliability figures need no interval: drawn in a worker process while the bootstrap runs
        tables = run_audit(df, config, other, str(scored), str(compare),
                           on_point=lambda early: painter.submit(figure_jobs(early, early_dir, config.level, kinds=("roc", "reliability"))))
        painter.submit(figure_jobs(tables, early_dir, config.level, kinds=("forest",)), forked=True)
        tables["audit"]["inputs"] = {"scored": {"path": str(scored), "sha256": _hash(scored)},
                                     "compare": {"path": str(compare), "sha256": _hash(compare)} if compare else None}
        out = output_folder(out)
        staging = temp_folder_beside(out)
        for name in OUTPUTS:  # while the worker draws the forest plots
            if name in tables:
                write_table(tables[name], staging / f"{name}.csv")
                write_table(tables[name], staging / f"{name}.parquet")
        figures = painter.result()
        order = {"forest": 0, "roc": 1, "reliability": 2}
        figures = sorted(figures, key=lambda name: (order[name.split("_")[0]], name))
        for name in figures:
            shutil.move(early_dir / name, staging / name)
        tables["audit"]["figures"] = figures
        write_json(staging / "audit.json", json.loads(json.dumps(tables["audit"], default=str)))
        written = {p.name for p in staging.iterdir()}
        known = [f"{n}.{ext}" for n in OUTPUTS for ext in ("csv", "parquet")] + ["audit.json"]
        for name in known + [p.name for pattern in ("reliability_*.png", "forest_*.png", "roc_*.png") for p in out.glob(pattern)]:
            if name not in written:
                (out / name).unlink(missing_ok=True)
        for name in sorted(written - {"audit.json"}) + ["audit.json"]:
            os.replace(staging / name, out / name)
    finally:
        painter.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(early_dir, ignore_errors=True)
    return tables
