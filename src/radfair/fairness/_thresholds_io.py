"""Resolve the ``--threshold`` option: a rule, a fixed value, or a CSV file (label, threshold)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BAD_OPTION, BAD_VALUES, EMPTY_AFTER_FILTER, MISSING_COLUMNS, RadfairInputError, preview
from ..readers import read_csv
from ._thresholds import RULES, choose_threshold, parse_rule

TEST_THRESHOLD_WARNING = (
    "thresholds were chosen on the TEST split (--threshold-on-test): test metrics are optimistically biased"
)


def resolve_thresholds(df: pd.DataFrame, labels: list[str], spec: str | float = "f1", on_test: bool = False,
                       path: str = "scored table", hard: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """A table ``label, rule, threshold`` for every label.

    ``hard``: labels whose scores are hard 0/1 predictions; a rule (f1, balanced, youden) is never searched
    over them (it would pick 0 and call every image positive): they get threshold 0.5, rule ``hard 0/1``.
    """
    spec_text = str(spec)
    try:
        parsed = parse_rule(spec_text)
    except ValueError as exc:
        raise RadfairInputError(BAD_OPTION.format(option="--threshold", value=spec_text, expected=str(exc))) from None
    if parsed is not None:
        split = "test" if on_test else "val"
        if on_test and not (parsed[1] is not None and df.attrs.get("split_absent")):
            warnings.warn(TEST_THRESHOLD_WARNING, UserWarning, stacklevel=2)
        rows = df[df["split"] == split]
        if df.attrs.get("split_absent"):
            split = "all rows (no split column)"
        if rows.empty and set(labels) - set(hard):
            raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=path, step=f"selecting split == '{split}' to choose {spec_text} thresholds")
                                    + "; give a split column (train/val/test), a fixed --threshold VALUE or FILE, or --threshold-on-test")
        values = [0.5 if label in hard else
                  choose_threshold(rows[f"y_{label}"].to_numpy(float), rows[f"p_{label}"].to_numpy(float), spec_text)
                  for label in labels]
        rules = ["hard 0/1 predictions" if label in hard else f"{spec_text} on {split}" for label in labels]
        return pd.DataFrame({"label": labels, "rule": rules, "threshold": values})
    try:
        value = float(spec_text)
    except ValueError:
        value = None
    if value is not None:
        if not 0 <= value <= 1:
            raise RadfairInputError(BAD_OPTION.format(option="--threshold", value=spec_text, expected="a number in [0, 1]"))
        return pd.DataFrame({"label": labels, "rule": "fixed", "threshold": value})
    file = Path(spec_text)
    if not file.is_file():
        raise RadfairInputError(BAD_OPTION.format(option="--threshold", value=spec_text,
                                                  expected=f"one of {list(RULES)}, fpr:X or tpr:X (a target rate), a number, "
                                                           "or an existing CSV file"))
    table = read_csv(file, "a threshold CSV (label, threshold)")
    if not {"label", "threshold"} <= set(table.columns):
        raise RadfairInputError(MISSING_COLUMNS.format(path=file, columns=sorted({"label", "threshold"} - set(table.columns)), expected=["label", "threshold"]))
    values = pd.to_numeric(table["threshold"], errors="coerce")
    bad = table["threshold"][values.isna() | (values < 0) | (values > 1)]
    if len(bad):
        raise RadfairInputError(BAD_VALUES.format(path=file, column="threshold", values=preview(bad), expected="expected numbers in [0, 1]"))
    lookup = dict(zip(table["label"].astype(str).str.removeprefix("y_"), values, strict=True))
    missing = [label for label in labels if label not in lookup]
    if missing:
        raise RadfairInputError(f"{file}: no threshold for label(s) {missing}; the file has label(s) {sorted(lookup)}")
    return pd.DataFrame({"label": labels, "rule": f"file {file.name}", "threshold": [float(lookup[k]) for k in labels]})


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Binary predictions ``score >= threshold`` (a NaN threshold predicts nothing positive)."""
    with np.errstate(invalid="ignore"):
        return scores >= thresholds[None, :]
