"""The reconstruction paper's tables from ``bias_shift`` and ``performance`` (Markdown).

* Table 1 — baseline fairness on clean images: mean over labels of worst-case EODD (classifiers) and SER
  (segmentation) per attribute, with the range over labels;
* Table 2 — median and median absolute % change of the bias metric (EODD worst case / SER) per reconstructor;
* Tables 7 and 8 — per level: AUROC per task (and their average), Dice, PSNR, SSIM for the clean baseline
  (PSNR/SSIM baseline: the degraded input) and each reconstructor.

Only standard (unmitigated) reconstructions enter Tables 1, 2, 7 and 8, and only the headline attributes: a
re-grouping variant (``race_merged``, :data:`.analysis.VARIANTS`) is the appendix's sensitivity analysis, drawn in
Figures 18-19. Tables 5 and 6 count the patients of each subgroup per split (:func:`subgroup_counts`). A cell without
a value says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...report.markdown import markdown_table
from .analysis import VARIANTS

BIAS_METRIC = {"classification": "eodd_worst", "segmentation": "ser"}
SEGMENTATION_TASK = "tumour_segmentation"
DATASET_NAMES = {"chexpert": "CheXpert", "ucsf-pdgm": "UCSF-PDGM"}
RECON_NAMES = {"unet": "U-Net", "pix2pix": "Pix2Pix (GAN)", "irsde": "IR-SDE"}


def task_kind(label: str) -> str:
    return "segmentation" if label == SEGMENTATION_TASK else "classification"


def attribute_rows(shift: pd.DataFrame, variant: str | None = None) -> pd.DataFrame:
    """The rows of the headline attributes; with ``variant`` (a key of :data:`.analysis.VARIANTS`, e.g. ``race_merged``)
    its rows replace those of the attribute it re-groups (the paper's Figures 18-19)."""
    hidden = set(VARIANTS) - {variant}
    if variant is not None:
        hidden.add(VARIANTS[variant])
    return shift[~shift["attribute"].isin(hidden)]


def bias_rows(shift: pd.DataFrame, mitigation: str | None = "standard", variant: str | None = None) -> pd.DataFrame:
    """The rows of the headline bias metric: EODD (worst case) for classifiers, SER for the segmenter, of the headline
    attributes (:func:`attribute_rows`)."""
    shift = attribute_rows(shift, variant)
    kinds = shift["label"].map(task_kind)
    keep = shift["metric"] == kinds.map(BIAS_METRIC)
    if mitigation is not None:
        keep &= shift["mitigation"] == mitigation
    return shift[keep].assign(task=kinds[keep])


def table1_baseline_fairness(shift: pd.DataFrame) -> str:
    rows = bias_rows(shift).drop_duplicates(["dataset", "label", "attribute", "metric"])
    if rows.empty:
        return "_No bias rows: no task had a threshold and two groups (see study.json warnings)._\n"
    out = []
    for (dataset, task), part in rows.groupby(["dataset", "task"], sort=False):
        line = {"dataset": DATASET_NAMES.get(dataset, dataset), "task": task, "metric": BIAS_METRIC[task]}
        for attribute, cell in part.groupby("attribute", sort=False):
            values = cell["baseline"].dropna()
            line[attribute] = (f"{values.mean():.3f} ({values.min():.3f}–{values.max():.3f}, {len(values)} label{'s' if len(values) != 1 else ''})"
                               if len(values) else "n/a (undefined for every label)")
        out.append(line)
    table = pd.DataFrame(out).fillna("— (attribute not recorded)")
    return ("Mean over labels of the clean-image bias metric (range over labels); classifiers: worst-case EODD, "
            "segmenter: SER.\n\n" + markdown_table(table))


def table2_shift_by_reconstructor(shift: pd.DataFrame, column: str = "reconstructor", mitigation: str | None = "standard") -> str:
    rows = bias_rows(shift, mitigation).dropna(subset=["pct_change"])
    rows = rows[np.isfinite(rows["pct_change"])]
    if rows.empty:
        return "_No finite % change (every baseline was 0 or undefined)._\n"
    grouped = rows.groupby(column, sort=False)["pct_change"]
    table = pd.DataFrame({"": ["Median % change", "Median |% change|", "cells"]})
    for name, values in grouped:
        table[RECON_NAMES.get(name, name)] = [f"{values.median():.2f}", f"{values.abs().median():.2f}", str(len(values))]
    return ("% change of EODD (worst case; classifiers) and SER (segmenter) from clean to reconstructed test images, over "
            "datasets, levels, tasks and attributes.\n\n" + markdown_table(table))


def table_by_attribute(shift: pd.DataFrame, column: str) -> str:
    """Median % change of the bias metric per ``column`` value (rows) and attribute (columns), all strategies."""
    rows = bias_rows(shift, None).dropna(subset=["pct_change"])
    rows = rows[np.isfinite(rows["pct_change"])]
    if rows.empty:
        return "_No finite % change._\n"
    table = rows.pivot_table(index=column, columns="attribute", values="pct_change", aggfunc="median", sort=False)
    return markdown_table(table.round(2).reset_index().fillna("n/a"))


UNKNOWN = "unknown"
SPLITS = ("train", "val", "test")


def subgroup_counts(split: pd.DataFrame, rows: list[str], column: str | None) -> pd.DataFrame:
    """Tables 5-6: patients per subgroup, over all splits then per split (``split`` column, the study's saved split).

    One line per combination of the ``rows`` attributes (e.g. sex x age_binary), one count column per group of
    ``column`` (e.g. race; None: no column split) and ``total``; a "total" line closes each split. A patient counts
    once, with its first row's values (sex and age_binary are per patient in the study's split); a missing value is
    the group "unknown" (never dropped), so every block adds up to the split's patients."""
    patients = split.drop_duplicates("patient_id")
    groups = [] if column is None else sorted(patients[column].dropna().astype(str).unique())
    groups += [UNKNOWN] if column is not None and patients[column].isna().any() else []
    blocks, lines = [], None
    for name in ("all", *SPLITS):
        part = patients if name == "all" else patients[patients["split"] == name]
        keys = part[rows].astype(object).where(part[rows].notna(), UNKNOWN).astype(str)
        values = (part[column].astype(object).where(part[column].notna(), UNKNOWN).astype(str) if column is not None
                  else pd.Series("total", index=part.index))
        table = pd.crosstab([keys[r] for r in rows], values).reindex(columns=groups or ["total"], fill_value=0)
        lines = table.sort_index().index if lines is None else lines  # every split lists every subgroup (0 included)
        table = table.reindex(lines, fill_value=0)
        if groups:
            table["total"] = table.sum(axis=1)
        table = table.sort_index().reset_index()
        totals = {r: "total" if i == 0 else "" for i, r in enumerate(rows)} | table[groups + ["total"]].sum().to_dict()
        table = pd.concat([table, pd.DataFrame([totals])], ignore_index=True)
        blocks.append(table.assign(split=name)[["split", *rows, *groups, "total"]])
    return pd.concat(blocks, ignore_index=True)


def subgroup_table(split: pd.DataFrame, rows: list[str], column: str | None, dataset: str) -> str:
    """Markdown of :func:`subgroup_counts` with a line that says what is counted."""
    counts = subgroup_counts(split, rows, column)
    by = " x ".join(rows) + (f" (rows) and {column} (columns)" if column else " (rows)")
    return (f"Patients of {DATASET_NAMES.get(dataset, dataset)} per subgroup, by {by}: all splits, then train, val and test "
            "(the study's saved split; train holds the reconstructor and downstream training patients). \"unknown\": the "
            "attribute is not recorded.\n\n" + markdown_table(counts.astype(object)))


def performance_table(performance: pd.DataFrame, dataset: str) -> str:
    """Tables 7/8: rows (level, metric, task), columns Baseline and each reconstructor, standard training only."""
    perf = performance[(performance["dataset"] == dataset) & (performance["mitigation"] == "standard")]
    if perf.empty:
        return f"_No {DATASET_NAMES.get(dataset, dataset)} results in this study._\n"
    lines = []
    for level, part in perf.groupby("level", sort=False):
        auc = part[part["metric"] == "auc"]
        for (metric, task), cell in part.groupby(["metric", "task"], sort=False):
            lines.append(_row(level, metric, task, cell))
        if auc["task"].nunique() > 1:
            average = auc.groupby("reconstructor", sort=False)[["baseline", "reconstructed"]].mean().reset_index()
            lines.append(_row(level, "auc", "average", average))
    table = pd.DataFrame(lines)
    return ("Baseline: clean images for AUROC and Dice; the degraded input for PSNR and SSIM (so the reconstructor's gain "
            "reads across the row).\n\n" + markdown_table(table.fillna("n/a")))


UNDEFINED = "n/a (undefined: one class or no patient in the test rows, see study.json warnings)"


def _value(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else UNDEFINED


def _row(level: str, metric: str, task: str, cell: pd.DataFrame) -> dict:
    """One table line; the baseline is the same for every reconstructor of a level (clean scores / degraded input)."""
    baseline = _value(cell["baseline"].iloc[0]) + (" (degraded input)" if metric in ("psnr", "ssim") else "")
    row = {"level": level, "metric": metric.upper() if metric in ("auc", "psnr", "ssim") else metric.capitalize(), "task": task,
           "Baseline": baseline}
    for _, r in cell.iterrows():
        row[RECON_NAMES.get(r["reconstructor"], r["reconstructor"])] = _value(r["reconstructed"])
    return row


__all__ = ["attribute_rows", "bias_rows", "performance_table", "subgroup_counts", "subgroup_table", "table1_baseline_fairness",
           "table2_shift_by_reconstructor", "table_by_attribute"]
