"""``radfair study reconstruction``: degrade -> train reconstructors -> frozen downstream models -> fairness shift.

Both datasets (:mod:`.xray` CheXpert, :mod:`.mri` UCSF-PDGM; either can be switched off in the config) run as
runs of one run store under ``OUT/runs/`` (resumable; finished runs skipped): first every downstream model and
reconstructor in one grid, then the scoring of every reconstruction, then the analysis. With a ``mitigation`` section, the reconstructors
of the parts it names (CheXpert against the classifier, UCSF-PDGM against the segmenter) are also fine-tuned for
fairness (:mod:`.mitigate`) and the chosen runs join the grid under their strategy's name. Holm and BH are applied within the confirmatory family (``analysis.confirmatory``), BH within the rest. Outputs: ``performance.csv``, ``bias_shift.csv``, the paper's tables and
figures (:mod:`.outputs`), ``study.json`` (config, runs, warnings, timings, conventions).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pandas as pd

from ...data.race import RACE_SCHEMES
from ...execution import run_grid
from ...io import write_json, write_table
from ...training.checkpoint import check_device
from ..protocol import deviations
from .analysis import adjust_families, adjust_grid
from .config import ReconstructionConfig, load_config
from .mitigate import check_scope, choose_runs, sweep_specs
from .mri import MriPart
from .outputs import write_outputs
from .xray import XrayPart, level_name

SHIFT_COLUMNS = ["dataset", "reconstructor", "level", "mitigation", "label", "attribute", "metric", "baseline", "reconstructed",
                 "delta", "pct_change", "ci_low", "ci_high", "p_value"]


def _threads_per_run(executor: str, jobs: int) -> int:
    """Intra-op threads of each run: the cores shared out between the concurrent jobs (as Study 1). Left at 0
    (torch's default, every core per process), two local jobs on two cores oversubscribe and spin-wait: measured
    epochs of the same segmenter varied from 1.7 s to 28 s while another run trained beside it."""
    return 0 if executor == "local" and jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def _selection(selection) -> str:
    """A slice selection in words (study.json conventions)."""
    where = f"slices {selection.slice_range[0]}-{selection.slice_range[1] - 1}" if selection.slice_range else "every slice number"
    what = "every slice" if selection.include_empty else f"slices with >= {max(selection.min_tumour_pixels, 1)} tumour pixels"
    return f"{what} ({where})"


def _parts(config: ReconstructionConfig, out: Path, store: Path, log) -> list:
    parts = []
    if config.xray is not None:
        parts.append(XrayPart(config, out, store, log))
    if config.mri is not None:
        parts.append(MriPart(config, out, store, log))
    return parts


def run_study(config: ReconstructionConfig | str | Path, out: str | Path, *, executor: str = "local", jobs: int | None = None,
              address: str | None = None, progress: bool = True, log=print) -> dict:
    config = load_config(config) if not isinstance(config, ReconstructionConfig) else config.resolved()
    check_device(config.device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs"
    jobs = jobs or config.jobs
    grid = {"executor": executor, "jobs": jobs, "address": address, "progress": progress}
    cpus = _threads_per_run(executor, jobs)

    def run(specs: list) -> None:
        run_grid([dataclasses.replace(spec, cpus=cpus) for spec in specs], store, **grid)

    timings: dict[str, float] = {}
    parts = _parts(config, out, store, log)
    if config.mitigation is not None:
        check_scope(config.mitigation, parts)

    t = time.perf_counter()
    for part in parts:
        part.prepare()
    timings["data_and_degradation_s"] = time.perf_counter() - t

    t = time.perf_counter()
    downstream = {part.dataset: part.downstream_specs() for part in parts}
    recon = {part.dataset: part.reconstructor_specs() for part in parts}
    run([s for d in downstream.values() for s in d.values()] + [s for r in recon.values() for s in r.values()])
    timings["training_s"] = time.perf_counter() - t

    sweep = None
    if config.mitigation is not None:
        t = time.perf_counter()
        mitigated = [part for part in parts if part.dataset in config.mitigation.datasets]
        specs = {part.dataset: sweep_specs(config, part, recon[part.dataset], store) for part in mitigated}
        run([s for by_key in specs.values() for s in by_key.values()])
        sweeps = []
        for part in mitigated:  # the chosen runs join the grid; their scoring runs reconstruct their test images
            chosen, part_sweep = choose_runs(specs[part.dataset], store, config.mitigation, part.dataset)
            recon[part.dataset].update(chosen)
            sweeps.append(part_sweep)
        sweep = pd.concat(sweeps, ignore_index=True)
        write_table(sweep, out / "mitigation_sweep.csv")
        timings["mitigation_s"] = time.perf_counter() - t

    t = time.perf_counter()
    scoring = {part.dataset: part.scoring_specs(recon[part.dataset]) for part in parts}
    run([s for by_key in scoring.values() for tasks in by_key.values() for s in tasks.values()])
    timings["scoring_s"] = time.perf_counter() - t

    t = time.perf_counter()
    shift, performance, notes, versus = [], [], [], []
    for part in parts:
        result = part.analyse(recon[part.dataset], scoring[part.dataset])
        shift += result.shift
        performance += result.performance
        notes += result.notes
        versus += result.versus_standard
    if versus:  # own families: baseline = the reference reconstruction, reconstructed = the mitigated one
        table = pd.concat(versus, ignore_index=True)[SHIFT_COLUMNS + ["reference", "comparison"]]
        write_table(pd.concat([adjust_grid(rows) for _, rows in table.groupby("comparison", sort=False)], ignore_index=True),
                    out / "mitigation_vs_standard.csv")
    middle = {part.dataset: part.levels()[(len(part.levels()) - 1) // 2] for part in parts}
    bias_shift, multiple_testing = adjust_families(pd.concat(shift, ignore_index=True)[SHIFT_COLUMNS], config.analysis.confirmatory,
                                                   middle, config.analysis.p_value, config.analysis.bootstrap)
    performance = pd.concat(performance, ignore_index=True)
    for name, frame in (("bias_shift", bias_shift), ("performance", performance)):
        write_table(frame, out / f"{name}.csv")
        write_table(frame, out / f"{name}.parquet")
    timings["analysis_s"] = time.perf_counter() - t

    t = time.perf_counter()
    notes += write_outputs(out, config, parts, recon, scoring, bias_shift, performance, sweep, middle)
    timings["tables_and_figures_s"] = time.perf_counter() - t
    a = config.analysis
    write_json(out / "study.json", {
        "study": "reconstruction", "config": config.model_dump(mode="json"),
        "deviations": deviations("reconstruction", config.effective().model_dump(mode="json")),
        "data": {part.dataset: part.manifest for part in parts},
        "runs": {part.dataset: {**{f"downstream/{k}": s.run_id for k, s in downstream[part.dataset].items()},
                                **{"/".join(k): s.run_id for k, s in recon[part.dataset].items()}} for part in parts},
        "warnings": sorted(set(notes)), "timings": timings, "multiple_testing": multiple_testing,
        "conventions": {"thresholds": f"{a.threshold} on clean validation images, applied to clean and reconstructed test images",
                        "bootstrap": f"{a.bootstrap} paired patient-level replicates (same resamples for clean and reconstructed)",
                        "eodd": "eodd_worst = max(ΔTPR, ΔFPR); eodd_mean = (ΔTPR + ΔFPR)/2 (the reference code's EODD); "
                                "eop = ΔTPR; each the max over group pairs",
                        "segmentation": "ΔDice = max − min group mean Dice; SER = max/min group (1 − Dice); a patient's Dice = "
                                        "the mean of per-slice Dice over the inference slices (mri.slices.inference), "
                                        f"empty-truth convention {config.mri.segmenter.empty_slices if config.mri else 'n/a'}; "
                                        "group Dice = the mean over its patients",
                        "mri_slices": (f"downstream models trained on {_selection(config.mri.slices.train)}, scored on "
                                       f"{_selection(config.mri.slices.inference)}; classification: median of the slice scores "
                                       "per patient" if config.mri else "n/a"),
                        "multiple_testing": f"Holm (FWER) and Benjamini–Hochberg (FDR) within the confirmatory family "
                                            f"({multiple_testing['size']} rows: {multiple_testing['family']}); BH within the "
                                            f"exploratory rest; p-values: {multiple_testing['p_value_method']}",
                        "race": f"race grouped by the {a.race_scheme} scheme; race_merged: its merged variant ("
                                f"{', '.join(f'{k} into {v}' for k, v in RACE_SCHEMES[a.race_scheme].merged.items())}), "
                                "exploratory, Figures 18-19",
                        "psnr_baseline": "the degraded input's PSNR/SSIM against the clean image",
                        **({"mitigation": "primary comparison: each strategy against the same-budget standard fine-tune "
                                          "(mitigation_vs_standard.csv, comparison = primary); secondary: against the original "
                                          "reconstructor; λ " + (f"chosen once on the {config.mitigation.lambda_from} and reused "
                                                                 "for every reconstructor (the paper's protocol)"
                                                                 if config.mitigation.lambda_from else
                                                                 "chosen per reconstructor (a deviation: the paper chose it "
                                                                 "once, on the CheXpert U-Net; set mitigation.lambda_from: unet)")}
                           if config.mitigation is not None else {})}})
    gains = performance[performance["metric"] == "psnr"][["dataset", "reconstructor", "level", "baseline", "reconstructed", "delta"]]
    return {"bias_shift": bias_shift, "performance": performance, "timings": timings, "psnr_gain": gains.reset_index(drop=True)}


__all__ = ["run_study", "level_name"]
