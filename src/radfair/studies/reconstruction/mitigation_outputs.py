"""Mitigation outputs of the reconstruction paper: Tables 3–4 and Figures 11–15 (Figures 4/5/16/17 are the bias-change
figures of :mod:`.figures`, which draw one bar series per (reconstructor, strategy)).

* Table 3 — median % change of worst-case EODD from clean to reconstructed test images per strategy and attribute,
  over the mitigated (reconstructor, level) cells only, so ``standard`` is compared on the same cells;
* Table 4 — mean % change of test PSNR and of mean AUROC of each strategy relative to the standard reconstruction
  of the same (reconstructor, level);
* Figures 11–14 — the validation λ sweep: worst-case EODD with AUROC (11 EODD loss, 12 adversarial) or with PSNR
  (13, 14) against λ, the standard fine-tune as a dashed reference, the chosen λ circled;
* Figure 15 — test change of mean AUROC and PSNR per strategy and reconstructor against the standard reconstruction.
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
from .tables import RECON_NAMES, table_by_attribute  # noqa: E402

LAMBDA_FIGURES = {"fig11_lambda_eodd_auroc.png": ("eodd", "val_auroc"), "fig12_lambda_adversarial_auroc.png": ("adversarial", "val_auroc"),
                  "fig13_lambda_eodd_psnr.png": ("eodd", "val_psnr"), "fig14_lambda_adversarial_psnr.png": ("adversarial", "val_psnr")}
LABELS = {"val_eodd": "validation EODD (worst case)", "val_auroc": "validation mean AUROC", "val_psnr": "validation PSNR (dB)"}


def _mitigated_cells(shift: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    cells = sweep[["reconstructor", "level"]].drop_duplicates()
    return shift.merge(cells, on=["reconstructor", "level"]).query("dataset == 'chexpert'")


def strategy_performance(performance: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """Per (reconstructor, level, mitigation): test PSNR and mean AUROC, and their % change against standard."""
    perf = performance.merge(sweep[["reconstructor", "level"]].drop_duplicates(), on=["reconstructor", "level"])
    perf = perf[perf["dataset"] == "chexpert"]
    psnr = perf[perf["metric"] == "psnr"].set_index(["reconstructor", "level", "mitigation"])["reconstructed"].rename("psnr")
    auroc = perf[perf["metric"] == "auc"].groupby(["reconstructor", "level", "mitigation"])["reconstructed"].mean().rename("auroc")
    table = pd.concat([psnr, auroc], axis=1).reset_index()
    standard = table[table["mitigation"] == "standard"].set_index(["reconstructor", "level"])
    for metric in ("psnr", "auroc"):
        reference = standard[metric].reindex(pd.MultiIndex.from_frame(table[["reconstructor", "level"]])).to_numpy()
        table[f"{metric}_pct_change"] = 100 * (table[metric] - reference) / reference
        table[f"{metric}_delta"] = table[metric] - reference
    return table


def table3(shift: pd.DataFrame, sweep: pd.DataFrame) -> str:
    return ("Median % change of worst-case EODD from clean to reconstructed test images, over the mitigated cells "
            "(reconstructors x levels x findings); rows: strategy, columns: attribute.\n\n"
            + table_by_attribute(_mitigated_cells(shift, sweep), "mitigation"))


def table4(performance: pd.DataFrame, sweep: pd.DataFrame) -> str:
    table = strategy_performance(performance, sweep)
    table = table[table["mitigation"] != "standard"]
    if table.empty:
        return "_No mitigated run._\n"
    summary = table.groupby("mitigation", sort=False)[["psnr_pct_change", "auroc_pct_change"]].mean().round(3)
    summary.columns = ["PSNR % change (test)", "mean AUROC % change (test)"]
    return ("Mean over reconstructors and levels (CheXpert) of the % change against the standard reconstruction of the "
            "same cell.\n\n" + markdown_table(summary.reset_index()))


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
    cells = list(dict.fromkeys(zip(table["reconstructor"], table["level"], strict=True)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / max(len(cells), 1)
    for ax, metric, name in zip(axes, ("auroc_delta", "psnr_delta"), ("Δ mean AUROC", "Δ PSNR (dB)"), strict=True):
        for number, (kind, level) in enumerate(cells):
            rows = table[(table["reconstructor"] == kind) & (table["level"] == level)].set_index("mitigation").reindex(strategies)
            x = np.arange(len(strategies)) + (number - (len(cells) - 1) / 2) * width
            ax.bar(x, rows[metric], width, color=f"C{number}", label=f"{RECON_NAMES.get(kind, kind)} {level}")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(strategies)), strategies)
        ax.set_ylabel(f"{name} vs standard (test)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Cost of mitigation on CheXpert test images (bars: change against the standard reconstruction)", fontsize=9)
    save(fig, path)


def write_mitigation_outputs(out: Path, bias_shift: pd.DataFrame, performance: pd.DataFrame, sweep: pd.DataFrame) -> list[str]:
    write_text(out / "table3_shift_by_mitigation.md", "# Table 3: bias change by mitigation strategy\n\n" + table3(bias_shift, sweep))
    write_text(out / "table4_mitigation_cost.md", "# Table 4: cost of mitigation\n\n" + table4(performance, sweep))
    notes = []
    for name, (strategy, metric) in LAMBDA_FIGURES.items():
        if (sweep["strategy"] == strategy).any():
            lambda_figure(sweep, strategy, metric, out / name)
        else:
            notes.append(f"{name} not drawn: strategy {strategy} not in the mitigation config")
    figure15(performance, sweep, out / "fig15_mitigation_performance.png")
    return notes


__all__ = ["strategy_performance", "write_mitigation_outputs"]
