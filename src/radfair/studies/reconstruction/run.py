"""``radfair study reconstruction`` (X-ray part): degrade -> train reconstructors -> frozen classifier -> shift.

Every trained or scored artefact is a run of the run store under ``OUT/runs/`` (resumable; finished runs
skipped): the 12-finding classifier (trained on clean images of the classifier patients only), one
reconstructor per (kind, dose level) (trained on the reconstruction patients), and the classifier's scores
of each reconstruction (``predict-classifier``). The degraded images are written once by
``radfair degrade xray`` into ``OUT/degraded_xray/`` (itself resumable and keyed by its settings).
Outputs: ``performance.csv`` (PSNR/SSIM of degraded and reconstructed test images, AUROC clean vs
reconstructed), ``bias_shift.csv`` (paired patient bootstrap, Holm/BH over the grid), ``study.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ...degradation.run import degrade_xray
from ...execution import RunSpec, run_grid
from ...io import read_table, write_json, write_table
from ...training.checkpoint import check_device
from ...training.classify import resolve_config
from ...training.reconstruct_run import ReconstructorRunConfig
from .analysis import FAIRNESS_METRICS, adjust_grid, clean_thresholds, paired_shift
from .config import ReconstructionConfig, load_config
from .data import prepare_xray


def level_name(mode: str, photons: float) -> str:
    return f"xray_{mode}_{int(photons)}"


def _classifier_cohort(split: pd.DataFrame, degraded: pd.DataFrame, path: Path) -> Path:
    """Clean (degrade's working-size) images of every patient except the reconstruction-training ones."""
    clean = degraded.drop_duplicates("image_id")[["image_id", "path_clean"]]
    table = split[split["recon_split"] != "reconstruction"].merge(clean, on="image_id", how="inner")
    table = table.assign(path=table.pop("path_clean"))
    if not path.is_file() or not read_table(path).equals(table):
        write_table(table, path)
    return path


def run_predict(config: dict, ctx) -> dict[str, str]:
    """``predict-classifier`` run kind: a frozen classifier run scores a reconstruction run's images."""
    from ...training.classify import predict_cohort

    base = read_table(config["cohort"])
    recon = read_table(config["reconstructed"])[["image_id", "path"]]
    table = base.drop(columns="path").merge(recon, on="image_id", how="inner")
    cohort = ctx.run_dir / "cohort.parquet"
    write_table(table, cohort)
    predict_cohort(config["classifier_run"], cohort, ctx.run_dir / "scored.parquet", device=ctx.device, progress=ctx.progress)
    return {"scored": "scored.parquet"}


def run_study(config: ReconstructionConfig | str | Path, out: str | Path, *, executor: str = "local", jobs: int | None = None,
              address: str | None = None, progress: bool = True, log=print) -> dict:
    config = load_config(config) if not isinstance(config, ReconstructionConfig) else config.resolved()
    check_device(config.device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or config.jobs
    timings: dict[str, float] = {}
    xray = config.xray
    t = time.perf_counter()
    manifest = prepare_xray(config, out, log)
    split = read_table(manifest["split"])
    d = xray.degradation
    degraded = degrade_xray(manifest["split"], out / "degraded_xray", d.photons, d.mode, d.size, seed=d.seed, device=config.device)
    classifier_cohort = _classifier_cohort(split, degraded, out / "data" / "xray_classifier.parquet")
    timings["data_and_degradation_s"] = time.perf_counter() - t

    store = out / "runs"
    c = xray.classifier
    clf_config = resolve_config(cohort=str(classifier_cohort), input="images", model=c.model, labels=xray.labels, image_size=d.size,
                                batch_size=c.batch_size, hidden=c.hidden, dropout=c.dropout, seed=c.seed, optim=c.optim, loop=c.loop)
    clf = RunSpec("train-classifier", clf_config.model_dump(mode="json"), {"cohort": clf_config.cohort}, device=config.device,
                  label="xray-classifier")
    recon_specs = {}
    for kind, rc in xray.reconstructors.items():
        for photons in d.photons:
            level = level_name(d.mode, photons)
            rcfg = ReconstructorRunConfig(degraded=str(out / "degraded_xray" / "degraded.parquet"), level=level,
                                          split_cohort=manifest["split"], reconstructor=rc, image_size=d.size,
                                          batch_size=xray.training.batch_size, seed=xray.training.seed, loop=xray.training.loop)
            recon_specs[(kind, level)] = RunSpec("train-reconstructor", rcfg.model_dump(mode="json"), {"degraded": rcfg.degraded},
                                                 device=config.device, label=f"{kind}-{level}")
    t = time.perf_counter()
    run_grid([clf, *recon_specs.values()], store, executor=executor, jobs=jobs, address=address, progress=progress)
    timings["training_s"] = time.perf_counter() - t

    t = time.perf_counter()
    predict_specs = {key: RunSpec("predict-classifier", {"classifier_run": str(store / clf.run_id), "cohort": str(classifier_cohort),
                                                         "reconstructed": str(store / spec.run_id / "reconstructed.parquet")},
                                  {"classifier": str(store / clf.run_id / "checkpoints" / "best.pt"),
                                   "reconstructed": str(store / spec.run_id / "reconstructed.parquet")},
                                  device=config.device, label=f"score-{spec.label}")
                     for key, spec in recon_specs.items()}
    run_grid(list(predict_specs.values()), store, executor=executor, jobs=jobs, address=address, progress=progress)
    timings["scoring_s"] = time.perf_counter() - t

    t = time.perf_counter()
    a = config.analysis
    attributes = [("race_merged" if attr == "race" and a.race_merge_small else attr) for attr in a.attributes]
    clean = pd.read_parquet(store / clf.run_id / "scored.parquet").merge(split[["image_id", "age_binary", "race_merged"]], on="image_id")
    thresholds, labels, undefined = clean_thresholds(clean, xray.labels, a.threshold, out / "thresholds_clean_val.csv")
    shift_rows, perf_rows = [], []
    notes = [f"chexpert/{label}: clean validation rows hold one class only; no threshold, label not analysed" for label in undefined]
    for (kind, level), spec in recon_specs.items():
        recon = pd.read_parquet(store / predict_specs[(kind, level)].run_id / "scored.parquet")
        recon = recon.merge(split[["image_id", "age_binary", "race_merged"]], on="image_id")
        comparison, warned = paired_shift(clean, recon, labels, attributes, thresholds, a.bootstrap, a.seed, a.level)
        notes += [f"{kind}/{level}: {w}" for w in warned]
        comparison = comparison.assign(dataset="chexpert", reconstructor=kind, level=level)
        shift_rows.append(comparison[comparison["metric"].isin(FAIRNESS_METRICS)])
        auc = comparison[comparison["metric"] == "auc"]
        perf_rows.append(auc.assign(task=auc["label"])[["dataset", "reconstructor", "level", "task", "metric", "baseline",
                                                        "reconstructed", "delta", "ci_low", "ci_high", "p_value"]])
        quality = pd.read_parquet(store / spec.run_id / "reconstructed.parquet").query("split == 'test'")
        for metric in ("psnr", "ssim"):
            perf_rows.append(pd.DataFrame([{"dataset": "chexpert", "reconstructor": kind, "level": level, "task": "image",
                                            "metric": metric, "baseline": float(quality[f"{metric}_degraded"].mean()),
                                            "reconstructed": float(quality[metric].mean()),
                                            "delta": float((quality[metric] - quality[f"{metric}_degraded"]).mean())}]))
    columns = ["dataset", "reconstructor", "level", "label", "attribute", "metric", "baseline", "reconstructed", "delta",
               "pct_change", "ci_low", "ci_high", "p_value"]
    bias_shift = adjust_grid(pd.concat(shift_rows, ignore_index=True)[columns])
    performance = pd.concat(perf_rows, ignore_index=True)
    for name, frame in (("bias_shift", bias_shift), ("performance", performance)):
        write_table(frame, out / f"{name}.csv")
        write_table(frame, out / f"{name}.parquet")
    timings["analysis_s"] = time.perf_counter() - t
    write_json(out / "study.json", {"study": "reconstruction", "config": config.model_dump(mode="json"), "data": manifest,
                                    "runs": {"classifier": clf.run_id, **{f"{k}/{lv}": s.run_id for (k, lv), s in recon_specs.items()}},
                                    "warnings": sorted(set(notes)), "timings": timings,
                                    "conventions": {"thresholds": f"{a.threshold} on clean validation images, applied to clean and "
                                                                  "reconstructed test images",
                                                    "bootstrap": f"{a.bootstrap} paired patient-level replicates",
                                                    "psnr_baseline": "the degraded input's PSNR/SSIM against the clean image"}})
    return {"bias_shift": bias_shift, "performance": performance, "timings": timings,
            "psnr_gain": performance[performance["metric"] == "psnr"].assign(gain=lambda f: f["delta"]).pipe(_mean_gain)}


def _mean_gain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["reconstructor", "level", "baseline", "reconstructed", "gain"]].reset_index(drop=True)


__all__ = ["run_study", "run_predict", "level_name"]
