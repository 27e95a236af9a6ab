"""The reconstruction paper's figures (matplotlib, PNG): Figure 2 (performance vs noise: CheXpert mean AUROC,
UCSF-PDGM Dice), Figure 10 (UCSF-PDGM classification vs noise), Figure 3 (distribution of bias changes), Figures 4/5
(bias change per task with intervals; mitigation strategies as extra bars), and Figures 18/19, the same as Figures
3/4 with the merged race groups (``race_merged``) in place of race.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ...io import atomic_path  # noqa: E402
from .tables import DATASET_NAMES, RECON_NAMES, attribute_rows, bias_rows  # noqa: E402

ALPHA = 0.05


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)


def _task_and_psnr_panel(ax, part: pd.DataFrame, task: pd.DataFrame, task_name: str, title: str) -> None:
    """One panel: the task metric (mean over ``task``'s rows per level) and PSNR, each as % of its reference.

    Task reference: the clean images (100 %, the dashed "baseline" line). PSNR reference: the clean-image PSNR is
    infinite, so PSNR is shown as % of the best reconstruction's PSNR; the degraded input's PSNR is the dotted line.
    """
    levels = list(dict.fromkeys(part["level"]))
    x = np.arange(len(levels))
    psnr = part[part["metric"] == "psnr"]
    reference = psnr["reconstructed"].max()
    for number, (kind, rows) in enumerate(task.groupby("reconstructor", sort=False)):
        colour = f"C{number}"
        by_level = rows.groupby("level", sort=False)[["baseline", "reconstructed"]].mean().reindex(levels)
        ax.plot(x, 100 * by_level["reconstructed"] / by_level["baseline"], "o-", color=colour,
                label=f"{RECON_NAMES.get(kind, kind)}: {task_name}")
        p = psnr[psnr["reconstructor"] == kind].set_index("level").reindex(levels)
        ax.plot(x, 100 * p["reconstructed"] / reference, "s--", color=colour, alpha=0.7, label=f"{RECON_NAMES.get(kind, kind)}: PSNR")
    degraded = psnr.groupby("level", sort=False)["baseline"].first().reindex(levels)
    ax.plot(x, 100 * degraded / reference, "k:", label="degraded input: PSNR")
    ax.axhline(100, color="grey", linestyle="--", linewidth=1, label=f"baseline (clean images): {task_name}")
    ax.set_xticks(x, levels, rotation=20)
    ax.set_ylabel("% of reference")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def figure2_performance_vs_noise(performance: pd.DataFrame, path: Path) -> None:
    """Figure 2: one panel per dataset, its headline task metric and PSNR against the level, as % of their references:
    segmentation Dice where the dataset has a segmenter (UCSF-PDGM), else the mean AUROC over its findings (CheXpert's
    12). UCSF-PDGM classification is Figure 10 (:func:`figure10_classification_vs_noise`)."""
    perf = performance[performance["mitigation"] == "standard"]
    datasets = list(dict.fromkeys(perf["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = perf[perf["dataset"] == dataset]
        dice = part[part["metric"] == "dice"]
        task, name = (dice, "Dice") if len(dice) else (part[part["metric"] == "auc"], "mean AUROC")
        _task_and_psnr_panel(ax, part, task, name, f"{DATASET_NAMES.get(dataset, dataset)}: {name} and PSNR")
    save(fig, path)


def figure10_classification_vs_noise(performance: pd.DataFrame, dataset: str, path: Path) -> None:
    """Figure 10: one panel per classification task of ``dataset`` (UCSF-PDGM: tumour type and grade), its AUROC and
    PSNR against the level, as % of their references (as Figure 2)."""
    part = performance[(performance["mitigation"] == "standard") & (performance["dataset"] == dataset)]
    tasks = list(dict.fromkeys(part.loc[part["metric"] == "auc", "task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rows = part[(part["metric"] == "auc") & (part["task"] == task)]
        _task_and_psnr_panel(ax, part, rows, "AUROC", f"{DATASET_NAMES.get(dataset, dataset)}: {task} AUROC and PSNR")
    save(fig, path)


def figure3_bias_change_hist(shift: pd.DataFrame, path: Path, scope: str = "", variant: str | None = None) -> None:
    """Histogram of % changes of EODD (worst case) / SER over every standard reconstruction of ``shift`` (the caller
    chooses the levels; ``scope`` names them in the title), per attribute; medians as vertical lines. ``variant``
    (e.g. ``race_merged``): its rows in place of the attribute it re-groups (Figure 18)."""
    rows = bias_rows(shift, variant=variant)
    rows = rows[np.isfinite(rows["pct_change"].astype(float))]
    fig, ax = plt.subplots(figsize=(7, 4))
    for number, (attribute, part) in enumerate(rows.groupby("attribute", sort=False)):
        values = part["pct_change"].clip(-300, 300)
        ax.hist(values, bins=30, range=(-300, 300), alpha=0.45, color=f"C{number}", label=f"{attribute} (n={len(values)})")
        ax.axvline(values.median(), color=f"C{number}", linewidth=2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("bias change, % of the clean-image value (clipped to ±300 %)")
    ax.set_ylabel("cells (dataset × level × reconstructor × task)")
    ax.set_title("Bias change with reconstruction (vertical lines: medians)" + (f"; race as {variant}" if variant else "")
                 + (f"\n{scope}" if scope else ""), fontsize=10)
    ax.legend(fontsize=8)
    save(fig, path)


def figure_bias_change(shift: pd.DataFrame, dataset: str, metric: str, path: Path, attributes: list[str] | None = None) -> None:
    """One panel per attribute: absolute change of ``metric`` per task and (reconstructor, mitigation), with the paired
    bootstrap 95 % interval as the error bar; a star marks Holm-adjusted p < 0.05 (confirmatory rows; the others have
    no Holm p). Levels are pooled side by side. ``attributes``: the panels (None: the headline attributes, without
    the re-grouping variants; Figure 19: ``["race_merged"]``)."""
    shift = attribute_rows(shift) if attributes is None else shift[shift["attribute"].isin(attributes)]
    rows = shift[(shift["dataset"] == dataset) & (shift["metric"] == metric)]
    attributes = list(dict.fromkeys(rows["attribute"]))
    fig, axes = plt.subplots(len(attributes), 1, figsize=(max(7, 0.9 * rows["label"].nunique() * max(1, rows["level"].nunique())),
                                                          3 * len(attributes)), squeeze=False)
    series = list(dict.fromkeys(zip(rows["reconstructor"], rows["mitigation"], strict=True)))
    tasks = list(dict.fromkeys(zip(rows["label"], rows["level"], strict=True)))
    width = 0.8 / max(len(series), 1)
    for ax, attribute in zip(axes[:, 0], attributes, strict=True):
        part = rows[rows["attribute"] == attribute].set_index(["label", "level", "reconstructor", "mitigation"])
        for number, (kind, mitigation) in enumerate(series):
            x, y, lo, hi, star = [], [], [], [], []
            for position, (label, level) in enumerate(tasks):
                key = (label, level, kind, mitigation)
                if key not in part.index:
                    continue
                r = part.loc[key]
                x.append(position + (number - (len(series) - 1) / 2) * width)
                y.append(r["delta"])
                lo.append(r["ci_low"])
                hi.append(r["ci_high"])
                star.append(bool(r["p_holm"] < ALPHA))
            name = RECON_NAMES.get(kind, kind) + ("" if mitigation == "standard" else f" + {mitigation}")
            ax.bar(x, y, width, color=f"C{number}", alpha=0.8, label=name)
            # the interval is drawn from its own ends: a percentile interval need not contain the point estimate
            ax.vlines(x, lo, hi, color="black", linewidth=1)
            for xi, top, s in zip(x, hi, star, strict=True):
                if s:
                    ax.text(xi, top if np.isfinite(top) else 0, "*", ha="center", va="bottom", fontsize=12)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(tasks)), [f"{label}\n{level}" if rows["level"].nunique() > 1 else label for label, level in tasks],
                      rotation=45, ha="right", fontsize=7)
        ax.set_ylabel(f"Δ {metric}")
        ax.set_title(f"{DATASET_NAMES.get(dataset, dataset)}, {attribute}: change of {metric} (black lines: 95 % paired-bootstrap CI; "
                     "* Holm p < 0.05)", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=min(4, len(series)))
    save(fig, path)


__all__ = ["figure10_classification_vs_noise", "figure2_performance_vs_noise", "figure3_bias_change_hist", "figure_bias_change"]
