"""Mitigation outputs of the reconstruction paper: Tables 3–4 and Figures 11–15 (Figures 4/5/16/17 are the bias-change
figures of :mod:`.figures`, which draw one bar series per (reconstructor, strategy), UCSF-PDGM included).

* Table 3 — median % change of the bias metric (worst-case EODD for classifiers, SER for the segmenter) from clean to
  reconstructed test images per strategy and attribute, over the mitigated (dataset, reconstructor, level) cells
  only, so ``standard`` is compared on the same cells (the paper pools datasets, tasks and models);
* Table 4 — mean % change of test PSNR and of the task metric (mean AUROC; Dice for UCSF-PDGM segmentation) of
  each strategy relative to the standard reconstruction of the same (reconstructor, level), per dataset;
* Figures 11–14 — the X-ray part's (CheXpert's) validation λ sweep: worst-case EODD with AUROC (11 EODD loss, 12 adversarial) or
  with PSNR (13, 14) against λ, the standard fine-tune as a dashed reference, the chosen λ circled;
* Figure 15 — test change of mean AUROC, Dice and PSNR per strategy and (dataset, reconstructor, level) against
  the standard reconstruction.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ...io import write_text  # noqa: E402
from ...report.markdown import markdown_table  # noqa: E402
from .figures import save  # noqa: E402
from .mitigate import FINETUNE  # noqa: E402
from .tables import DATASET_NAMES, RECON_NAMES, table_by_attribute  # noqa: E402

LAMBDA_FIGURES = {"fig11_lambda_eodd_auroc.png": ("eodd", "val_auroc"), "fig12_lambda_adversarial_auroc.png": ("adversarial", "val_auroc"),
                  "fig13_lambda_eodd_psnr.png": ("eodd", "val_psnr"), "fig14_lambda_adversarial_psnr.png": ("adversarial", "val_psnr")}
LABELS = {"val_eodd": "validation EODD (worst case)", "val_auroc": "validation mean AUROC", "val_psnr": "validation PSNR (dB)"}
CELL = ["dataset", "reconstructor", "level"]
METRICS = {"psnr": "PSNR", "auroc": "mean AUROC", "dice": "Dice"}


def _mitigated_cells(shift: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    return shift.merge(sweep[CELL].drop_duplicates(), on=CELL)


def strategy_performance(performance: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, reconstructor, level, mitigation): test PSNR, mean AUROC and Dice (NaN where the dataset has
    none), and their % change and difference against the standard reconstruction of the cell."""
    perf = performance.merge(sweep[CELL].drop_duplicates(), on=CELL)
    keys = [*CELL, "mitigation"]
    psnr = perf[perf["metric"] == "psnr"].set_index(keys)["reconstructed"].rename("psnr")
    auroc = perf[perf["metric"] == "auc"].groupby(keys)["reconstructed"].mean().rename("auroc")
    dice = perf[perf["metric"] == "dice"].groupby(keys)["reconstructed"].mean().rename("dice")
    table = pd.concat([psnr, auroc, dice], axis=1).reset_index()
    standard = table[table["mitigation"] == "standard"].set_index(CELL)
    for metric in METRICS:
        reference = standard[metric].reindex(pd.MultiIndex.from_frame(table[CELL])).to_numpy()
        table[f"{metric}_pct_change"] = 100 * (table[metric] - reference) / reference
        table[f"{metric}_delta"] = table[metric] - reference
    return table


def table3(shift: pd.DataFrame, sweep: pd.DataFrame) -> str:
    return ("Median % change of the bias metric (worst-case EODD for classifiers, SER for the segmenter) from clean to "
            "reconstructed test images, over the mitigated cells (datasets x reconstructors x levels x tasks); rows: "
            "strategy, columns: attribute.\n\n" + table_by_attribute(_mitigated_cells(shift, sweep), "mitigation"))


def table4(performance: pd.DataFrame, sweep: pd.DataFrame) -> str:
    table = strategy_performance(performance, sweep)
    table = table[table["mitigation"] != "standard"]
    if table.empty:
        return "_No mitigated run._\n"
    columns = [f"{m}_pct_change" for m in METRICS]
    summary = table.groupby(["dataset", "mitigation"], sort=False)[columns].mean().round(3).reset_index()
    summary["dataset"] = summary["dataset"].map(lambda d: DATASET_NAMES.get(d, d))
    summary.columns = ["dataset", "mitigation", *[f"{name} % change (test)" for name in METRICS.values()]]
    return ("Mean over reconstructors and levels of the % change against the standard reconstruction of the same cell "
            "(n/a: the dataset has no such task).\n\n" + markdown_table(summary.astype(object).where(summary.notna(), "n/a")))


def lambda_figure(sweep: pd.DataFrame, strategy: str, other: str, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for number, ((kind, level), group) in enumerate(sweep.groupby(["reconstructor", "level"], sort=False)):
        runs = group[group["strategy"] == strategy].sort_values("weight")
        reference = group[group["strategy"] == FINETUNE]
        colour = f"C{number}"
        for ax, metric in zip(axes, ("val_eodd", other), strict=True):
            ax.plot(runs["weight"], runs[metric], "o-", color=colour, label=f"{RECON_NAMES.get(kind, kind)} {level}")
            if len(reference):
                ax.axhline(float(reference[metric].iloc[0]), color=colour, linestyle="--", linewidth=1)
            chosen = runs[runs["chosen"].astype(bool)]
            ax.scatter(chosen["weight"], chosen[metric], s=140, facecolors="none", edgecolors="black")
            ax.set_xscale("log")
            ax.set_xlabel("λ_fair")
            ax.set_ylabel(LABELS[metric])
    axes[0].legend(fontsize=7)
    fig.suptitle(f"λ sweep, {strategy} loss (dashed: standard fine-tune with the same budget; circle: chosen λ)", fontsize=9)
    save(fig, path)


def figure15(performance: pd.DataFrame, sweep: pd.DataFrame, path: Path) -> None:
    table = strategy_performance(performance, sweep)
    table = table[table["mitigation"] != "standard"]
    strategies = list(dict.fromkeys(table["mitigation"]))
    cells = list(dict.fromkeys(zip(table["dataset"], table["reconstructor"], table["level"], strict=True)))
    metrics = [m for m in ("auroc", "dice", "psnr") if table[f"{m}_delta"].notna().any()]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    width = 0.8 / max(len(cells), 1)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for number, (dataset, kind, level) in enumerate(cells):
            here = (table["dataset"] == dataset) & (table["reconstructor"] == kind) & (table["level"] == level)
            rows = table[here].set_index("mitigation").reindex(strategies)
            x = np.arange(len(strategies)) + (number - (len(cells) - 1) / 2) * width
            ax.bar(x, rows[f"{metric}_delta"], width, color=f"C{number}",
                   label=f"{DATASET_NAMES.get(dataset, dataset)} {RECON_NAMES.get(kind, kind)} {level}")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(strategies)), strategies)
        ax.set_ylabel(f"Δ {METRICS[metric]}{' (dB)' if metric == 'psnr' else ''} vs standard (test)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Cost of mitigation on test images (bars: change against the standard reconstruction)", fontsize=9)
    save(fig, path)


def write_mitigation_outputs(out: Path, bias_shift: pd.DataFrame, performance: pd.DataFrame, sweep: pd.DataFrame,
                             xray_dataset: str) -> list[str]:
    """``xray_dataset``: the X-ray part's dataset (CheXpert in the paper), whose sweep the λ figures draw."""
    write_text(out / "table3_shift_by_mitigation.md", "# Table 3: bias change by mitigation strategy\n\n" + table3(bias_shift, sweep))
    write_text(out / "table4_mitigation_cost.md", "# Table 4: cost of mitigation\n\n" + table4(performance, sweep))
    notes = []
    xray = sweep[sweep["dataset"] == xray_dataset]  # the paper's λ figures: the X-ray part (the UCSF sweep is in mitigation_sweep.csv)
    for name, (strategy, metric) in LAMBDA_FIGURES.items():
        if (xray["strategy"] == strategy).any():
            lambda_figure(xray, strategy, metric, out / name)
        else:
            notes.append(f"{name} not drawn: no {DATASET_NAMES.get(xray_dataset, xray_dataset)} {strategy} run in the mitigation sweep")
    figure15(performance, sweep, out / "fig15_mitigation_performance.png")
    return notes


__all__ = ["strategy_performance", "write_mitigation_outputs"]
