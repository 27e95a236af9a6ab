"""The embeddings paper's Table 3 (AUROC) and Table 4 (fairness summary) layouts, as Markdown."""

from __future__ import annotations

import math

import pandas as pd

from ...report import format_ci, markdown_table

DATASET_NAMES = {"mimic": "MIMIC", "chexpert": "CXP", "all": "ALL"}


def table3(auc: pd.DataFrame, arms: list[str]) -> str:
    """Rows: labels; columns: dataset x arm; the better arm's mean AUROC per dataset and label in bold."""
    out = pd.DataFrame({"Label": list(dict.fromkeys(auc["label"]))})
    for dataset in dict.fromkeys(auc["dataset"]):
        sub = auc[auc["dataset"] == dataset].set_index(["model", "label"])
        for label_index, label in enumerate(out["Label"]):
            means = {arm: sub["auc_mean"].get((arm, label), math.nan) for arm in arms}
            finite = {a: m for a, m in means.items() if not math.isnan(m)}
            best = max(finite, key=finite.get) if len(finite) > 1 else None
            for arm in arms:
                key = (arm, label)
                text = format_ci(*(sub[c].get(key, math.nan) for c in ("auc_mean", "auc_ci_low", "auc_ci_high")))
                out.loc[label_index, f"{DATASET_NAMES.get(dataset, dataset)} {arm}"] = f"**{text}**" if arm == best else text
    note = ("\nMean test AUROC over seeds with Student-t 95% intervals; bold: the arm with the higher mean per dataset "
            "and label (an overlap of intervals means the difference is not resolved).\n")
    return markdown_table(out) + note


def table4(summary: pd.DataFrame, arms: list[str]) -> str:
    """Rows: attribute x dataset x arm; the arm with the lower average gap per (attribute, dataset) in bold."""
    rows = []
    for (attribute, dataset), g in summary.groupby(["attribute", "dataset"], sort=False):
        finite = g.dropna(subset=["average_gap"])
        fairer = finite.loc[finite["average_gap"].idxmin(), "model"] if len(finite) > 1 else None
        for r in g.itertuples():
            gap = format_ci(r.average_gap, r.ci_low, r.ci_high)
            rows.append({"Attribute": attribute, "Dataset": DATASET_NAMES.get(dataset, dataset),
                         "Model": f"**{r.model}**" if r.model == fairer else r.model, "Average gap": gap,
                         "Lowest (label: gap)": f"{r.lowest_label}: {r.lowest_gap:.3f}" if r.lowest_label else "n/a",
                         "Highest (label: gap)": f"{r.highest_label}: {r.highest_gap:.3f}" if r.highest_label else "n/a",
                         "Most unfavourable": r.unfavorable or "n/a", "Most favourable": r.favorable or "n/a"})
    note = ("\nAverage gap: per seed, the mean over findings (No Finding excluded) of max - min TPR disparity; mean over "
            "seeds with Student-t 95% interval. Lowest/highest label and the (k/n) group counts use the seed-mean "
            "disparities. Bold model: the lower average gap (the fairer arm) per attribute and dataset.\n")
    return markdown_table(pd.DataFrame(rows)) + note
