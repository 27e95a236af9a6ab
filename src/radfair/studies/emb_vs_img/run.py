"""``radfair study emb-vs-img``: the embeddings paper's whole experiment as runs of the run store.

datasets x arms (emb: MLP on foundation embeddings; img: DenseNet-121 on images) x seeds, every run of a
dataset on the same saved split (:mod:`.data`). An embeddings arm trains its seeds together, one
``train-classifier-ensemble`` run per dataset (``ensemble: false`` in the arm: one run per seed, as the image arm). Finished runs are skipped, so a rerun only recomputes the
tables and figures (seconds). Outputs in ``OUT/``: ``auc.csv`` + ``table3.md``, ``fairness_summary.csv`` +
``table4.md``, ``disparities.csv``, ``gaps.csv``, ``arm_comparison.csv`` (paired emb − img tests), ``fig1_<dataset>_<arm>_<attribute>.png``, ``cost.csv``,
``study.json`` (config, conventions, data manifest, run ids, warnings, timings).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ...data.embeddings import EMBEDDING_DIM
from ...execution import RunSpec, RunStore, read_record, run_grid
from ...io import write_json, write_table, write_text
from ...models import build_classifier
from ...models.cost import count_flops
from ...training.checkpoint import check_device
from ...training.classify import (
    TRAIN_CLASSIFIER,
    TRAIN_CLASSIFIER_ENSEMBLE,
    EnsembleRunConfig,
    member_name,
    resolve_config,
)
from ..protocol import deviations
from .config import EmbVsImgConfig, load_config
from .data import prepare_data
from .evaluate import adjust_comparison, conventions, evaluate_dataset
from .figures import figure1
from .tables import DATASET_NAMES, table1, table1_frame, table2, table2_frame, table3, table4

PAPER_RATIOS = {"flops": 1700.0, "wall_clock": 50.0}


@dataclass
class PlannedRun:
    """One (dataset, arm, seed) of the study and the run that trains it: a ``train-classifier`` run of its own, or (an
    arm whose seeds train together) the dataset's ``train-classifier-ensemble`` run, whose outputs for this seed are
    named ``<output>-seed<k>`` (``member``)."""

    dataset: str
    arm: str
    seed: int
    spec: RunSpec
    member: str | None = None

    def output(self, store: Path, name: str) -> Path:
        """This seed's output ``name`` (``scored``, ``history``, ``metrics``, ``best_checkpoint``) in the run store."""
        return RunStore(store).output(self.spec, f"{name}-{self.member}" if self.member else name)


def _labels(config: EmbVsImgConfig, split_path: str) -> list[str]:
    columns = [c[2:] for c in pd.read_parquet(split_path).columns if c.startswith("y_")]
    return [label for label in (config.labels or columns) if label in columns]


def plan_runs(config: EmbVsImgConfig, manifest: dict, cpus: int) -> list[PlannedRun]:
    """One :class:`PlannedRun` per (dataset, arm, seed); the seeds of an arm that trains them together share one spec."""
    planned = []
    store = config.embeddings or config.releases
    for dataset in config.datasets:
        split = manifest["splits"][dataset]
        labels = _labels(config, split)
        for arm, arm_config in config.arms.items():
            settings = arm_config.model_dump(mode="json", exclude={"ensemble"})
            common = dict(cohort=split, input="embeddings" if arm_config.on_embeddings else "images", root=store, labels=labels,
                          missing_embeddings="error", **settings)
            if arm_config.trains_together:
                run_config = resolve_config(EnsembleRunConfig, seeds=list(config.seeds), **common)
                spec = TRAIN_CLASSIFIER_ENSEMBLE.spec(run_config, {"cohort": run_config.cohort}, cpus=cpus, device=config.device,
                                                      label=f"{dataset}-{arm}-seeds{'-'.join(map(str, config.seeds))}")
                planned += [PlannedRun(dataset, arm, seed, spec, member_name(seed)) for seed in config.seeds]
                continue
            for seed in config.seeds:
                run_config = resolve_config(seed=seed, **common)
                spec = TRAIN_CLASSIFIER.spec(run_config, {"cohort": run_config.cohort}, cpus=cpus, device=config.device,
                                             label=f"{dataset}-{arm}-seed{seed}")
                planned.append(PlannedRun(dataset, arm, seed, spec))
    return planned


def unique_specs(planned: list[PlannedRun]) -> list[RunSpec]:
    """The runs to execute: each spec once, in plan order (an ensemble run serves several planned seeds)."""
    return list({p.spec.run_id: p.spec for p in planned}.values())


def _by(planned: list[PlannedRun], *fields: str) -> list[tuple[tuple, list[PlannedRun]]]:
    """Planned runs grouped by ``fields``, groups and members in plan order."""
    groups: dict[tuple, list[PlannedRun]] = {}
    for p in planned:
        groups.setdefault(tuple(getattr(p, f) for f in fields), []).append(p)
    return list(groups.items())


def _cost(config: EmbVsImgConfig, planned: list[PlannedRun], store: Path, width: int = EMBEDDING_DIM) -> pd.DataFrame:
    """Counted FLOPs/MACs per arm (``width``: the embedding store's vector width) and measured speed per (arm, dataset),
    with emb/img ratios. Seeds trained together count each seed's share of the ensemble's time: ``seconds_per_run``
    is the ensemble run's seconds over its seeds and ``train_samples_per_s`` counts every seed's samples."""
    counted = {}
    n_labels = len(planned[0].spec.config["labels"])
    for arm, arm_config in config.arms.items():
        torch.manual_seed(0)
        model = build_classifier(arm_config.model, n_labels, in_features=width, hidden=arm_config.hidden, dropout=arm_config.dropout)
        size = arm_config.image_size
        example = torch.randn(2, width) if arm_config.model in ("mlp", "linear") else torch.randn(2, 1, size, size)
        counted[arm] = count_flops(model, example)
        if arm_config.model == "densenet121" and size != 224:
            counted[f"{arm}@224"] = count_flops(model, torch.randn(2, 1, 224, 224))
    rows = []
    for (dataset, arm), runs in _by(planned, "dataset", "arm"):
        histories = [pd.read_csv(p.output(store, "history")) for p in runs]
        # an ensemble run trains every seed: each seed's share of its wall time (histories: each seed's share of an epoch)
        seconds = [read_record(store / p.spec.run_id)["seconds"] / sum(q.spec.run_id == p.spec.run_id for q in runs) for p in runs]
        rows.append({"dataset": dataset, "arm": arm, "model": config.arms[arm].model, "image_size": config.arms[arm].image_size,
                     **counted[arm],
                     "train_samples_per_s": statistics.median(h["samples_per_s"].median() for h in histories),
                     "seconds_per_epoch": statistics.median(h["train_seconds"].median() for h in histories),
                     "epochs_per_run": statistics.mean(len(h) for h in histories),
                     "seconds_per_run": statistics.mean(seconds), "n_runs": len(histories)})
    table = pd.DataFrame(rows)
    if {"emb", "img"} <= set(config.arms):
        for dataset in table["dataset"].unique():
            emb = table[(table["dataset"] == dataset) & (table["arm"] == "emb")].iloc[0]
            img = table[(table["dataset"] == dataset) & (table["arm"] == "img")].iloc[0]
            ratio = {"dataset": dataset, "arm": "img/emb ratio", "model": "",
                     "train_flops": img["train_flops"] / emb["train_flops"], "forward_macs": img["forward_macs"] / emb["forward_macs"],
                     "train_samples_per_s": emb["train_samples_per_s"] / img["train_samples_per_s"],
                     "seconds_per_run": img["seconds_per_run"] / emb["seconds_per_run"],
                     "paper_flops_ratio": PAPER_RATIOS["flops"], "paper_wall_clock_ratio": PAPER_RATIOS["wall_clock"]}
            if "img@224" in counted:
                ratio["train_flops_at_224"] = counted["img@224"]["train_flops"] / counted["emb"]["train_flops"]
                ratio["forward_macs_at_224"] = counted["img@224"]["forward_macs"] / counted["emb"]["forward_macs"]
            table = pd.concat([table, pd.DataFrame([ratio])], ignore_index=True)
    return table


def write_data_tables(config: EmbVsImgConfig, manifest: dict, out: Path) -> None:
    """The paper's Table 1 (subgroup shares) and Table 2 (split sizes) of the study's own splits."""
    splits = {dataset: pd.read_parquet(manifest["splits"][dataset]) for dataset in config.datasets}
    analysed = {d: df.drop(columns=[a for a in config.attributes if a not in config.attributes_of(d)], errors="ignore")
                for d, df in splits.items()}  # an attribute not analysed for a dataset is blank there, as in the paper
    write_table(table1_frame(analysed, config.attributes), out / "table1.csv")
    write_text(out / "table1.md", f"# Table 1 — datasets and subgroups ({config.name})\n\n" + table1(analysed, config.attributes))
    write_table(table2_frame(splits), out / "table2.csv")
    write_text(out / "table2.md", f"# Table 2 — training, validation and test splits ({config.name})\n\n" + table2(splits))


def run_study(config: EmbVsImgConfig | str | Path, out: str | Path, *, executor: str = "local", jobs: int | None = None,
              address: str | None = None, cpus_per_run: int = 0, progress: bool = True, log=print) -> dict:
    """Run (or finish) the study and write every output; returns the in-memory tables and timings."""
    config = load_config(config) if not isinstance(config, EmbVsImgConfig) else config.resolved()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or config.jobs
    check_device(config.device)
    timings = {}
    start = time.perf_counter()
    manifest = prepare_data(config, out, log)
    write_data_tables(config, manifest, out)
    timings["data_s"] = time.perf_counter() - start
    cpus = cpus_per_run or (0 if executor == "local" and jobs == 1 else max(1, (os.cpu_count() or 1) // jobs))
    planned = plan_runs(config, manifest, cpus)
    start = time.perf_counter()
    outcomes = run_grid(unique_specs(planned), out / "runs", executor=executor, jobs=jobs, address=address, progress=progress)
    timings["training_s"] = time.perf_counter() - start
    timings["runs_trained"] = sum(o.status == "done" for o in outcomes)
    timings["runs_skipped"] = sum(o.status == "skipped" for o in outcomes)
    status = {o.run_id: o.status for o in outcomes}
    start = time.perf_counter()
    tables = evaluate_study(config, planned, out)
    timings["evaluation_s"] = time.perf_counter() - start
    start = time.perf_counter()
    tables["cost"] = _cost(config, planned, out / "runs", manifest.get("embedding_width", EMBEDDING_DIM))
    write_table(tables["cost"], out / "cost.csv")
    timings["cost_s"] = time.perf_counter() - start
    write_json(out / "study.json", {
        "study": "emb-vs-img", "config": config.model_dump(mode="json"),
        "deviations": deviations("emb-vs-img", config.model_dump(mode="json")),
        "conventions": conventions(config.averaging, config.counting, config.bootstrap, config.level), "data": manifest,
        "runs": [{"dataset": p.dataset, "arm": p.arm, "seed": p.seed, "run_id": p.spec.run_id, "kind": p.spec.kind,
                  "status": status[p.spec.run_id], "scored": str(p.output(out / "runs", "scored").relative_to(out))} for p in planned],
        "warnings": tables.pop("notes"), "timings": timings,
        "multiple_testing": _multiple_testing(tables.get("arm_comparison"))})
    tables["timings"] = timings
    return tables


def _multiple_testing(comparison: pd.DataFrame | None) -> dict | None:
    """Family sizes and significant counts of the arm comparison, per metric."""
    if comparison is None:
        return None
    return {metric: {"size": int(rows["p_value"].notna().sum()), "significant_holm": int((rows["p_holm"] < 0.05).sum()),
                     "significant_bh": int((rows["p_bh"] < 0.05).sum()), "p_value_method": "bootstrap-normal"}
            for metric, rows in comparison.groupby("metric", sort=False)}


def evaluate_study(config: EmbVsImgConfig, planned: list[PlannedRun], out: Path) -> dict:
    """Every dataset's runs under shared patient resamples (:func:`.evaluate.evaluate_dataset`), the paired arm
    comparison with Holm/BH within each metric, tables and figures."""
    store = out / "runs"
    parts: dict[str, list] = {"auc": [], "disparities": [], "gaps": [], "summary": [], "comparison": [], "notes": []}
    for (dataset,), runs in _by(planned, "dataset"):
        scored = {(r.arm, r.seed): pd.read_parquet(r.output(store, "scored")) for r in runs}
        paths = {(r.arm, r.seed): f"{dataset}/{r.arm}/seed{r.seed} ({r.output(store, 'scored').relative_to(out)})" for r in runs}
        result = evaluate_dataset(scored, dataset, config.attributes_of(dataset), threshold=config.threshold, summary_exclude=config.summary_exclude,
                                  bootstrap=config.bootstrap, seed=config.bootstrap_seed, level=config.level,
                                  averaging=config.averaging, counting=config.counting, paths=paths,
                                  threshold_in_bootstrap=config.threshold_in_bootstrap)
        for key in parts:
            parts[key].append(result[key]) if key != "notes" else parts[key].extend(result[key])
    tables = {k: pd.concat(v, ignore_index=True) for k, v in parts.items() if k != "notes"}
    tables["notes"] = sorted(set(parts["notes"]))
    if len(tables["comparison"]):
        tables["arm_comparison"] = adjust_comparison(tables.pop("comparison"))
        write_table(tables["arm_comparison"], out / "arm_comparison.csv")
        write_table(tables["arm_comparison"], out / "arm_comparison.parquet")
    else:  # one arm: nothing to compare; never leave an earlier run's comparison beside these tables
        tables.pop("comparison")
        tables["arm_comparison"] = None
        for suffix in ("csv", "parquet"):
            (out / f"arm_comparison.{suffix}").unlink(missing_ok=True)
    arms = list(config.arms)
    for name, frame in (("auc", tables["auc"]), ("fairness_summary", tables["summary"]), ("disparities", tables["disparities"]),
                        ("gaps", tables["gaps"])):
        write_table(frame, out / f"{name}.csv")
        write_table(frame, out / f"{name}.parquet")
    write_text(out / "table3.md", f"# Table 3 — AUROC ({config.name})\n\n" + table3(tables["auc"], arms, tables["arm_comparison"]))
    write_text(out / "table4.md", f"# Table 4 — TPR-disparity summary ({config.name})\n\n"
               + table4(tables["summary"], arms, tables["arm_comparison"], config.averaging, config.counting))
    written = set()
    for (dataset, arm, attribute), disp in tables["disparities"].groupby(["dataset", "model", "attribute"], sort=False):
        gaps = tables["gaps"][(tables["gaps"]["dataset"] == dataset) & (tables["gaps"]["model"] == arm)
                              & (tables["gaps"]["attribute"] == attribute)]
        name = f"fig1_{dataset}_{arm}_{attribute}.png"
        figure1(disp, gaps, f"{DATASET_NAMES.get(dataset, dataset)} · {arm} ({config.arms[arm].model}) · {attribute}", out / name)
        written.add(name)
    for stale in out.glob("fig1_*.png"):
        if stale.name not in written:
            stale.unlink()
    return tables


__all__ = ["run_study", "plan_runs", "evaluate_study", "load_config"]
