"""The embeddings paper's Table 3 (AUROC) and Table 4 (fairness summary) layouts, as Markdown."""

from __future__ import annotations

import math

import pandas as pd

from ...report import format_ci, markdown_table

DATASET_NAMES = {"mimic": "MIMIC", "chexpert": "CXP", "all": "ALL"}


def _significant(comparison: pd.DataFrame | None, metric: str, dataset: str, attribute: str, label: str) -> float:
    """Holm p of a paired comparison row (NaN when there is none)."""
    if comparison is None or comparison.empty:
        return math.nan
    rows = comparison[(comparison["metric"] == metric) & (comparison["dataset"] == dataset)
                      & (comparison["attribute"] == attribute) & (comparison["label"] == label)]
    return float(rows["p_holm"].iloc[0]) if len(rows) else math.nan


def table3(auc: pd.DataFrame, arms: list[str], comparison: pd.DataFrame | None = None) -> str:
    """Rows: labels; columns: dataset x arm; the better arm in bold only when the paired difference is significant."""
    out = pd.DataFrame({"Label": list(dict.fromkeys(auc["label"]))})
    for dataset in dict.fromkeys(auc["dataset"]):
        sub = auc[auc["dataset"] == dataset].set_index(["model", "label"])
        for label_index, label in enumerate(out["Label"]):
            means = {arm: sub["auc_mean"].get((arm, label), math.nan) for arm in arms}
            finite = {a: m for a, m in means.items() if not math.isnan(m)}
            best = max(finite, key=finite.get) if len(finite) > 1 else None
            if not _significant(comparison, "auc", dataset, "(all)", label) < 0.05:
                best = None
            for arm in arms:
                key = (arm, label)
                text = format_ci(*(sub[c].get(key, math.nan) for c in ("auc_mean", "auc_ci_low", "auc_ci_high")))
                out.loc[label_index, f"{DATASET_NAMES.get(dataset, dataset)} {arm}"] = f"**{text}**" if arm == best else text
    note = ("\nMean test AUROC over seeds; 95% intervals carry seed and test-set sampling variance (patients and seeds "
            "resampled together). Bold: the arm with the higher AUROC where the paired difference (arm_comparison.csv) "
            "is significant after Holm.\n")
    return markdown_table(out) + note


def table4(summary: pd.DataFrame, arms: list[str], comparison: pd.DataFrame | None = None, averaging: str = "seed-mean",
           counting: str = "sign") -> str:
    """Rows: attribute x dataset x arm; the arm with the lower average gap in bold only when the paired difference is
    significant after Holm."""
    rows = []
    for (attribute, dataset), g in summary.groupby(["attribute", "dataset"], sort=False):
        finite = g.dropna(subset=["average_gap"])
        fairer = finite.loc[finite["average_gap"].idxmin(), "model"] if len(finite) > 1 else None
        if not _significant(comparison, "average_gap", dataset, attribute, "(average)") < 0.05:
            fairer = None
        for r in g.itertuples():
            gap = format_ci(r.average_gap, r.ci_low, r.ci_high)
            bc = getattr(r, "average_gap_bc", math.nan)
            rows.append({"Attribute": attribute, "Dataset": DATASET_NAMES.get(dataset, dataset),
                         "Model": f"**{r.model}**" if r.model == fairer else r.model,
                         "Average gap": f"**{gap}**" if r.model == fairer else gap,
                         "Bias-corrected": f"{bc:.3f}" if bc == bc else "n/a",
                         "Lowest (label: gap)": f"{r.lowest_label}: {r.lowest_gap:.3f}" if r.lowest_label else "n/a",
                         "Highest (label: gap)": f"{r.highest_label}: {r.highest_gap:.3f}" if r.highest_label else "n/a",
                         "Most unfavourable": r.unfavorable or "n/a", "Most favourable": r.favorable or "n/a"})
    note = (f"\nAverage gap over findings (No Finding excluded) under averaging '{averaging}' (seed-mean: max - min of the "
            "seed-mean disparities, the paper's); 95% max-t interval carrying seed and test-set sampling variance, and "
            f"the bias-corrected estimate. (Un)favourable counts under '{counting}' (sign: disparity < 0 / >= 0, the "
            "paper's). Bold: the lower average gap where the paired emb − img difference (arm_comparison.csv) is "
            "significant after Holm; no bold: the arms are not distinguishable.\n")
    return markdown_table(pd.DataFrame(rows)) + note


#: The embeddings paper's Table 2 (train, validation, test images), printed beside radfair's split.
PAPER_SPLIT_IMAGES = {"mimic": (182_896, 22_855, 22_855), "chexpert": (178_402, 22_085, 22_073), "all": (361_298, 41_063, 41_063)}


def table1_frame(splits: dict[str, pd.DataFrame], attributes: list[str]) -> pd.DataFrame:
    """The embeddings paper's Table 1: per dataset, images, patients and each attribute's group shares.

    ``splits``: dataset -> its split cohort (one row per image; ``patient_id`` and the attribute columns). A share is
    the percentage of the images whose attribute is known (as in the paper, each attribute's shares sum to 100 %); a
    row ``unknown`` gives the percentage of all images without a value, when there are any. Columns: subgroup,
    attribute, one per dataset (values as text).
    """
    from ...fairness._groups import CANONICAL_ORDER, attribute_values

    rows: dict[tuple[str, str], dict[str, str]] = {("", "# Images"): {}, ("", "# Patients"): {}}
    for dataset, cohort in splits.items():
        name = DATASET_NAMES.get(dataset, dataset)
        rows[("", "# Images")][name] = f"{len(cohort):,}"
        rows[("", "# Patients")][name] = f"{cohort['patient_id'].nunique():,}"
        for attribute in attributes:
            if attribute not in cohort.columns or cohort[attribute].isna().all():
                continue
            values = attribute_values(cohort, attribute)
            known = values.dropna().astype(str)
            order = list(CANONICAL_ORDER.get(attribute, ()))
            counts = known.value_counts()
            for group in sorted(counts.index, key=lambda g: (order.index(g) if g in order else len(order), g)):
                count = counts[group]
                rows.setdefault((attribute, group), {})[name] = f"{100 * count / len(known):.1f} %"
            if len(known) < len(values):
                rows.setdefault((attribute, "unknown"), {})[name] = f"{100 * (len(values) - len(known)) / len(values):.1f} % of all"
    names = [DATASET_NAMES.get(d, d) for d in splits]
    return pd.DataFrame([{"Subgroup": a, "Attribute": g, **{n: cells.get(n, "") for n in names}} for (a, g), cells in rows.items()])


def table1(splits: dict[str, pd.DataFrame], attributes: list[str]) -> str:
    return markdown_table(table1_frame(splits, attributes)) + (
        "\nShares of the images with a known value per attribute (the paper's layout); blank: the attribute is not "
        "in that dataset (e.g. insurance in CheXpert). Age groups as in the paper (0-20, 20-40, 40-60, 60-80, 80-).\n")


def table2_frame(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The embeddings paper's Table 2: images per split and dataset, with the paper's counts beside them."""
    rows = []
    for dataset, cohort in splits.items():
        counts = cohort["split"].value_counts()
        paper = PAPER_SPLIT_IMAGES.get(dataset)
        rows.append({"Dataset": DATASET_NAMES.get(dataset, dataset),
                     **{title: f"{int(counts.get(split, 0)):,}" for split, title in (("train", "Training"), ("val", "Validation"), ("test", "Test"))},
                     "Patients": f"{cohort['patient_id'].nunique():,}",
                     "Paper (train / val / test)": " / ".join(f"{n:,}" for n in paper) if paper else "n/a"})
    return pd.DataFrame(rows)


def table2(splits: dict[str, pd.DataFrame]) -> str:
    return markdown_table(table2_frame(splits)) + (
        "\nImages per split of radfair's patient-level split (every patient in one split, the same in every dataset: ALL "
        "is the union of the MIMIC and CXP splits); the paper's counts beside them. Synthetic or partial releases give "
        "other numbers by design.\n")
