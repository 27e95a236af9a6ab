"""``radfair demo``: the end-to-end walk-through on synthetic data, in real release formats.

1. ``synth``: CheXpert, MIMIC-CXR-JPG + MIMIC-IV, CXR-Foundation embeddings and UCSF-PDGM releases.
2. ``cohort`` + ``split`` for chexpert, mimic, all and ucsf-pdgm (patient-level 80/10/10).
3. A linear probe on the synthetic foundation embeddings of the ALL cohort (a stand-in model
   until Study 1 lands) -> a scored table -> ``audit`` with a patient-level bootstrap.
4. ``degrade``: low-dose X-ray (physical) and radial MRI on a few images, with PSNR/SSIM.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from .data.cohort import build_cohort, save_cohort
from .data.embeddings import load_cohort_embeddings
from .data.splits import split_cohort_file
from .data.synthetic import generate
from .errors import BAD_OPTION, RadfairInputError
from .fairness import AuditConfig, audit_files
from .fairness._audit import check_config, summary_line
from .io import output_folder


def _probe_scores(table: pd.DataFrame, vectors: np.ndarray, labels: list[str], seed: int) -> pd.DataFrame:
    """Per-label logistic regression trained on the train split; scores for every row."""
    from sklearn.linear_model import LogisticRegression

    train = (table["split"] == "train").to_numpy()
    scored = table.copy()
    for label in labels:
        y = table[f"y_{label}"].to_numpy()
        fit_rows = train & ~np.isnan(y)
        model = LogisticRegression(C=0.05, max_iter=300, random_state=seed)
        model.fit(vectors[fit_rows], y[fit_rows].astype(int))
        scored[f"p_{label}"] = model.predict_proba(vectors)[:, 1]
    return scored


def run_demo(out: str | Path, patients: int = 2000, seed: int = 0, bootstrap: int = 500, console: Console | None = None) -> dict:
    console = console or Console(stderr=True, soft_wrap=True)
    out = output_folder(out, create=False)  # every option is checked before anything is written
    if patients < 20:
        raise RadfairInputError(BAD_OPTION.format(option="--patients", value=patients, expected="at least 20"))
    check_config(AuditConfig(attributes=["sex"], bootstrap=bootstrap, seed=seed))
    timings = {}
    start = time.perf_counter()
    truth = generate(out / "releases", patients=patients, seed=seed, overwrite=True)
    timings["synth_s"] = time.perf_counter() - start
    console.print(f"[bold]1. synthetic releases[/]: {truth['images']} radiographs, {truth['patients']} patients "
                  f"in {timings['synth_s']:.1f}s -> {out / 'releases'}")
    console.print("   planted: " + ", ".join(truth["mechanisms"]))

    console.print("[bold]2. cohorts and patient-level splits[/]")
    start = time.perf_counter()
    for source in ("chexpert", "mimic", "all", "ucsf-pdgm"):
        cohort, meta = build_cohort(source, out / "releases")
        save_cohort(cohort, meta, out / f"cohort_{source}.parquet")
        table = split_cohort_file(out / f"cohort_{source}.parquet", out / f"split_{source}.parquet", seed=seed)
        s = meta["summary"]
        shares = ", ".join(f"{k} {v:.0%}" for k, v in list(s.get("race_share", s.get("sex_share", {})).items())[:3])
        prev = ", ".join(f"{k} {v:.0%}" for k, v in list(s["prevalence"].items())[:3])
        counts = table.groupby("split")["patient_id"].nunique().to_dict()
        console.print(f"   {source:9s}: {s['rows']:5d} images, {s['patients']:4d} patients; {shares}; {prev}; patients per split {counts}")
    timings["cohorts_s"] = time.perf_counter() - start

    console.print("[bold]3. linear probe on synthetic CXR-Foundation embeddings (ALL) -> audit[/]")
    start = time.perf_counter()
    table = pd.read_parquet(out / "split_all.parquet")
    vectors, found = load_cohort_embeddings(table, out / "releases")
    if not found.all():
        console.print(f"   {int((~found).sum())} of {len(found)} images have no embedding; left out of the probe")
    table, vectors = table[found].reset_index(drop=True), vectors[found]
    labels = [c[2:] for c in table.columns if c.startswith("y_")]
    scored = _probe_scores(table, vectors, labels, seed)
    scored.to_parquet(out / "scored_probe_all.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = audit_files(out / "scored_probe_all.parquet", out / "audit_probe_all",
                             AuditConfig(attributes=["sex", "age_group", "race"], bootstrap=bootstrap, seed=seed))
    if caught:
        console.print(f"   {len({str(w.message) for w in caught})} subgroup warnings (e.g. groups without positives), listed in audit.json")
    timings["probe_audit_s"] = time.perf_counter() - start
    for row in tables["summary"].itertuples():
        console.print(f"   {summary_line(row)}", markup=False, highlight=False)
    perf = tables["performance"]
    console.print(f"   mean AUROC {perf['auc'].mean():.3f} over {len(perf)} labels; outputs in {out / 'audit_probe_all'}")

    console.print("[bold]4. degradation[/] (first 32 CheXpert images, first 4 MRI volumes)")
    from .degradation.run import degrade_mri, degrade_xray

    start = time.perf_counter()
    xr = degrade_xray(out / "cohort_chexpert.parquet", out / "degraded_xray", [1e5, 1e4, 3e3], size=64, limit=32, seed=seed)
    mr = degrade_mri(out / "cohort_ucsf-pdgm.parquet", out / "degraded_mri", [4, 8, 16], limit=4, seed=seed)
    timings["degrade_s"] = time.perf_counter() - start
    for name, table in (("x-ray", xr), ("mri", mr)):
        for level, g in table.groupby("level", sort=False):
            console.print(f"   {name} {level}: PSNR {g.psnr.mean():.2f} dB, SSIM {g.ssim.mean():.3f}")
    (out / "demo_timings.json").write_text(json.dumps(timings, indent=2))
    console.print(f"done: {', '.join(f'{k} {v:.1f}' for k, v in timings.items())}")
    return timings
