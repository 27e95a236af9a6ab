"""``radfair.fairness.audit``: the audit from arrays, in a notebook, without files (in the style of fairlearn).

The same engine as ``radfair audit`` (:func:`radfair.fairness.run_audit`): the arrays become a scored table
(``patient_id``, ``split``, attributes, ``y_<label>``, ``p_<label>``) and every table of the CLI comes back as a
pandas DataFrame on an :class:`AuditResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import RadfairInputError

TABLES = ("thresholds", "group_metrics", "disparities", "gaps", "summary", "equalized_odds", "performance",
          "selection_rates", "demographic_parity", "calibration", "calibration_gap", "reliability")


@dataclass
class AuditResult:
    """Every table of an audit (the same as ``radfair audit`` writes), as DataFrames, plus the record.

    Attributes are named after the files: ``group_metrics`` (one row per label x attribute x group: counts,
    TPR/FPR/TNR/PPV/FNR/NPV/FDR/FOR, AUROC, Brier with intervals), ``disparities``, ``gaps``, ``summary``,
    ``equalized_odds`` (EODD, EOP and their ratio forms), ``performance`` (the overall row per label),
    ``selection_rates``, ``demographic_parity``, ``calibration``, ``calibration_gap``, ``reliability``,
    ``thresholds``; ``record`` holds the conventions, warnings and the input rules applied.
    """

    thresholds: pd.DataFrame
    group_metrics: pd.DataFrame
    disparities: pd.DataFrame
    gaps: pd.DataFrame
    summary: pd.DataFrame
    equalized_odds: pd.DataFrame
    performance: pd.DataFrame
    selection_rates: pd.DataFrame
    demographic_parity: pd.DataFrame
    calibration: pd.DataFrame
    calibration_gap: pd.DataFrame
    reliability: pd.DataFrame
    record: dict = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """The data conditions found (groups without positives, missing attribute values, ...)."""
        return list(self.record.get("warnings", []))


def _as_2d(values, name: str, n: int | None = None) -> tuple[np.ndarray, list[str] | None]:
    if isinstance(values, pd.DataFrame):
        return values.to_numpy(dtype=float), [str(c) for c in values.columns]
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise RadfairInputError(f"{name}: expected shape (n,) or (n, L), got {array.shape}")
    if n is not None and len(array) != n:
        raise RadfairInputError(f"{name}: {len(array)} rows; expected {n} (one per image, as y_true)")
    return array, None


def audit(y_true, y_score, *, sensitive_features, patient_ids=None, split=None, labels: list[str] | None = None,
          threshold: str | float = 0.5, scores: str = "probabilities", uncertain: str | None = None,
          bootstrap: int = 1000, random_state: int = 0,
          level: float = 0.95, parity_ratio: float = 0.8, summary_exclude: list[str] | None = None) -> AuditResult:
    """Audit one model's predictions from arrays: subgroup rates, disparities, gaps, EODD, ratios, with intervals.

    Parameters
    ----------
    y_true : array-like of shape (n,) or (n, L), or DataFrame
        Labels in {1, 0, NaN} (NaN: unknown, left out of that label), one row per image.
    y_score : array-like of shape (n,) or (n, L), or DataFrame
        Scores: probabilities in [0, 1] (or logits with ``scores="logits"``), same shape as ``y_true``.
    sensitive_features : DataFrame, dict of arrays, or Series of length n
        One column per attribute (e.g. ``sex``, ``race``); missing values and unknown markers (``Unknown``, ...) are
        left out of that attribute's groups, counted and warned.
    patient_ids : array-like of length n, optional
        The patient of each image: the bootstrap resamples patients (all their images follow). Default: every
        image is its own patient.
    split : array-like of length n, optional
        ``train`` / ``val`` / ``test`` per image (``validate`` means ``val``); needed only when ``threshold`` is a
        rule chosen on validation rows (``"f1"``, ``"balanced"``, ``"youden"``). Default: every row is test.
    labels : list of str, optional
        Label names (default: the DataFrame's columns, else ``label_0``, ``label_1``, ...).
    threshold : float or str, default 0.5
        A number, a rule (``"f1"``, ``"balanced"``, ``"youden"``: chosen on ``split == "val"``), or a target
        operating point ``"fpr:0.2"`` / ``"tpr:0.9"`` (on the validation rows, or on all rows without ``split``).
    scores : {"probabilities", "logits"}
    uncertain : {"zeros", "ones", "ignore"}, optional
        How CheXpert's uncertain (-1) labels count; without it a -1 label is an error.
    bootstrap : int, default 1000
        Patient-level bootstrap replicates (0: point estimates only).
    random_state : int
        Seed of the bootstrap: same inputs and seed, same numbers.
    level, parity_ratio, summary_exclude
        Interval level; the ratio below which a ratio form fails parity (0.8, the four-fifths rule); labels left out
        of the average gap (default none).

    Returns
    -------
    AuditResult
        The tables of ``radfair audit`` as DataFrames.

    Raises
    ------
    RadfairInputError
        Arrays of different lengths, labels other than 1/0/NaN, scores outside [0, 1], an attribute with fewer
        than two groups, a rule threshold without validation rows, ... (one line naming the input and what was
        expected).

    Examples
    --------
    >>> import numpy as np
    >>> from radfair.fairness import audit
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> sex = np.where(rng.random(400) < 0.5, "Female", "Male")
    >>> score = np.clip(0.35 * y + 0.65 * rng.random(400) - 0.15 * y * (sex == "Female"), 0, 1)
    >>> result = audit(y, score, sensitive_features={"sex": sex}, threshold=0.5, bootstrap=200)
    >>> print(result.group_metrics[["group", "n_pos", "tpr", "tpr_ci_low", "tpr_ci_high"]].round(3).to_string(index=False))
     group  n_pos   tpr  tpr_ci_low  tpr_ci_high
      Male    126 0.730       0.647        0.808
    Female     95 0.558       0.446        0.654
    >>> row = result.summary.iloc[0]  # binary attribute: gap = 2 |TPR_Male - TPR_Female|
    >>> round(float(row.average_gap), 3), bool(row.ci_low <= row.average_gap <= row.ci_high)
    (0.345, True)
    """
    from ._audit import AuditConfig, run_audit

    y, names = _as_2d(y_true, "y_true")
    n = len(y)
    p, score_names = _as_2d(y_score, "y_score", n)
    if names and score_names and names != score_names:
        raise RadfairInputError(f"y_score: columns {score_names} are not those of y_true {names}; labels are paired by "
                                "name: give both frames the same column names in the same order (or pass arrays and labels=)")
    if p.shape != y.shape:
        raise RadfairInputError(f"y_score: shape {p.shape}; expected {y.shape} (the shape of y_true)")
    labels = list(labels or names or [f"label_{j}" for j in range(y.shape[1])])
    if len(labels) != y.shape[1]:
        raise RadfairInputError(f"labels: {len(labels)} names for {y.shape[1]} label column(s)")
    if isinstance(sensitive_features, pd.Series):
        features = sensitive_features.to_frame(sensitive_features.name or "group").reset_index(drop=True)
    else:
        features = pd.DataFrame(sensitive_features).reset_index(drop=True)
    if len(features) != n:
        raise RadfairInputError(f"sensitive_features: {len(features)} rows; expected {n} (one per image, as y_true)")
    table = features.copy()
    table["patient_id"] = np.asarray(patient_ids) if patient_ids is not None else np.arange(n).astype(str)
    table["image_id"] = np.arange(n).astype(str)
    if split is not None:
        table["split"] = np.asarray(split)
    for j, label in enumerate(labels):
        table[f"y_{label}"], table[f"p_{label}"] = y[:, j], p[:, j]
    config = AuditConfig(attributes=[str(c) for c in features.columns], threshold=str(threshold), bootstrap=bootstrap,
                         seed=random_state, level=level, scores=scores, uncertain=uncertain, parity_ratio=parity_ratio,
                         summary_exclude=list(summary_exclude or []))
    tables = run_audit(table, config, path="arrays")
    return AuditResult(**{name: tables[name] for name in TABLES}, record=tables["audit"])
