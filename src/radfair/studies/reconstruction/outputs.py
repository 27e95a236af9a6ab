"""Write the reconstruction paper's tables and figures into the study folder (see :mod:`.tables`, :mod:`.figures`,
:mod:`.examples`). Returns notes for ``study.json`` (e.g. a figure that could not be drawn and why)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...io import write_text
from ...training.classify import load_classifier
from .examples import examples_figure, gradcam_figure
from .figures import (
    figure2_performance_vs_noise,
    figure3_bias_change_hist,
    figure10_classification_vs_noise,
    figure_bias_change,
)
from .mitigation_outputs import write_mitigation_outputs
from .tables import performance_table, subgroup_table, table1_baseline_fairness, table2_shift_by_reconstructor

# Keyed by the part (xray | mri); file names carry the part's dataset short name (``part.short``: the X-ray part's
# registered dataset, e.g. chexpert or nih-cxr14; ucsf for the MRI part), so CheXpert's files keep the paper's names.
FIGURE_METRICS = {"xray": ("fig4", ("eodd_worst", "eop")), "mri": ("fig5", ("eodd_worst", "eop", "delta_dice", "ser"))}
# (the paper's Figures 16/17, EOP before and after mitigation, are the *_eop files)
TABLE_NUMBER = {"xray": "table7", "mri": "table8"}
# Tables 5/6: patients per subgroup (part -> number, row attributes, column attribute): CheXpert sex x age by race,
# UCSF-PDGM age by sex (a part without race recorded: sex x age only)
SUBGROUP_TABLES = {"xray": ("table5", ["sex", "age_binary"], "race"), "mri": ("table6", ["age_binary"], "sex")}
TABLE_TITLES = {"table5": "Table 5: patients per subgroup", "table6": "Table 6: patients per subgroup"}
VARIANT = "race_merged"  # Figures 18-19: the merged race groups (AI/AN and NH/PI within Other under Table 5's scheme)


def at_levels(shift: pd.DataFrame, levels: dict[str, str]) -> pd.DataFrame:
    """The rows of each dataset's level in ``levels`` (dataset -> level)."""
    return shift[shift["level"] == shift["dataset"].map(levels)]


def write_outputs(out: Path, config, parts: list, recon: dict, scoring: dict, bias_shift: pd.DataFrame, performance: pd.DataFrame,
                  sweep: pd.DataFrame | None = None, middle: dict[str, str] | None = None) -> list[str]:
    """Tables and figures (``recon``, ``scoring``: dataset -> key -> the reconstructor run, the scoring runs, whose
    ``reconstructed`` tables hold the example images). The fairness views (Table 2, Figures 3-5) are at each dataset's ``middle`` level, the paper's
    scope (§4.2: "acceleration factor 8 for UCSF-PDGM and a photon count of 10,000 for CheXpert"); Table 2 adds the
    pooled levels as a second, exploratory block. ``middle`` None: every level (pooled)."""
    fair = at_levels(bias_shift, middle) if middle else bias_shift
    scope = ("at the middle level (" + ", ".join(f"{d}: {lv}" for d, lv in middle.items()) + "), the paper's scope"
             if middle else "pooled over every level")
    xray = next((p for p in parts if p.name == "xray"), None)
    notes = [] if sweep is None else write_mitigation_outputs(out, bias_shift, performance, sweep,
                                                              xray.dataset if xray is not None else "chexpert")
    write_text(out / "table1_baseline_fairness.md", "# Table 1: baseline fairness on clean images\n\n" + table1_baseline_fairness(bias_shift))
    write_text(out / "table2_shift_by_reconstructor.md",
               f"# Table 2: bias change by reconstructor, {scope}\n\n" + table2_shift_by_reconstructor(fair)
               + ("\n## Every level pooled (exploratory)\n\n" + table2_shift_by_reconstructor(bias_shift) if middle else ""))
    for part in parts:
        write_text(out / f"{TABLE_NUMBER[part.name]}_{part.short}.md",
                   f"# Performance: {part.dataset}\n\n" + performance_table(performance, part.dataset))
        number, rows, column = SUBGROUP_TABLES[part.name]
        column = column if column in part.split.columns and part.split[column].notna().any() else None
        write_text(out / f"{number}_subgroups_{part.short}.md",
                   f"# {TABLE_TITLES[number]} ({part.dataset})\n\n" + subgroup_table(part.split, rows, column, part.dataset))
    figure2_performance_vs_noise(performance, out / "fig2_performance_vs_noise.png")
    mri = next((p for p in parts if p.name == "mri"), None)
    if mri is not None and ((performance["dataset"] == mri.dataset) & (performance["metric"] == "auc")).any():
        figure10_classification_vs_noise(performance, mri.dataset, out / f"fig10_classification_vs_noise_{mri.short}.png")
    figure3_bias_change_hist(fair, out / "fig3_bias_change_hist.png", scope)
    notes += _merged_race_figures(out, fair, xray, scope)
    for part in parts:
        prefix, metrics, short = *FIGURE_METRICS[part.name], part.short
        for metric in metrics:
            if (bias_shift[(bias_shift["dataset"] == part.dataset)]["metric"] == metric).any():
                figure_bias_change(fair, part.dataset, metric, out / f"{prefix}_bias_change_{short}_{metric}.png")
            else:
                notes.append(f"{prefix}_bias_change_{short}_{metric}.png not drawn: no {metric} rows for {part.dataset}")
        tables = {(kind, level): part.reconstructed_table(scoring[part.dataset][(kind, level, mitigation)])
                  for (kind, level, mitigation) in recon[part.dataset] if mitigation == "standard"}
        examples_figure(part.dataset, tables, part.split, out / f"examples_{short}.png")
    if xray is not None:
        notes += _gradcam(out, xray, scoring[xray.dataset])
    return notes


def _merged_race_figures(out: Path, bias_shift: pd.DataFrame, xray, scope: str = "") -> list[str]:
    """Figures 18 (the bias-change distribution, Figure 3's) and 19 (the X-ray part's EODD change before and after
    mitigation, Figure 4's) with the merged race groups in place of race; a note when race_merged was not analysed."""
    if xray is None or not ((bias_shift["attribute"] == VARIANT) & (bias_shift["dataset"] == xray.dataset)).any():
        return [f"fig18/fig19 not drawn: no {VARIANT} rows (list {VARIANT} in analysis.attributes, with race recorded)"]
    figure3_bias_change_hist(bias_shift, out / "fig18_bias_change_hist_race_merged.png", scope, variant=VARIANT)
    figure_bias_change(bias_shift, xray.dataset, "eodd_worst", out / f"fig19_bias_change_{xray.short}_race_merged_eodd_worst.png",
                       attributes=[VARIANT])
    return []


def _gradcam(out: Path, xray, scoring: dict) -> list[str]:
    """Grad-CAM for the finding with the highest clean AUROC, on one positive test image, clean vs each reconstruction
    at the noisiest level (:meth:`XrayPart.gradcam_target`; its scoring runs kept that image's reconstructions)."""
    model, config = load_classifier(xray.runs.run_dir(xray.classifier))
    target = xray.gradcam_target
    if target is None:
        return [f"gradcam_{xray.short}.png not drawn: no test image is positive for any finding"]
    label, image_id = target
    level = xray.levels()[-1]
    images = {}
    for (kind, lv, mitigation), tasks in scoring.items():
        if lv != level or mitigation != "standard":
            continue
        table = pd.read_parquet(xray.reconstructed_table(tasks))
        row = table.assign(image_id=table["image_id"].astype(str)).set_index("image_id").loc[image_id]
        images.setdefault("clean", row["path_clean"])
        images.setdefault(f"degraded ({level})", row["path_degraded"])
        images[kind] = row["path"]
    gradcam_figure(model, config.labels, label, config.image_size, images, out / f"gradcam_{xray.short}.png",
                   scaling=config.pixel_scaling)
    return []


__all__ = ["write_outputs"]
