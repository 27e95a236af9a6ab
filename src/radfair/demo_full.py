"""``radfair demo`` (what ``make demo`` runs): both studies end to end on synthetic releases, an audit and three reports.

Stages (each resumable: a second run reuses every finished run and rewrites only tables, figures and pages):

1. synthetic releases (CheXpert, MIMIC-CXR-JPG + MIMIC-IV, CXR-Foundation embeddings, UCSF-PDGM) in real formats;
2. Study 1 (embeddings vs images, ``configs/demo-emb-vs-img.yaml``) -> ``OUT/study1``;
3. ``radfair audit`` of one trained Study 1 model (the embedding MLP on the ALL cohort, seed 0) -> ``OUT/audit``;
4. Study 2 (reconstruction -> downstream fairness, ``configs/demo-reconstruction.yaml``) -> ``OUT/study2``;
5. ``radfair report`` of the three folders -> ``OUT/<folder>/report.html``.

The study configs name ``releases: demo_out/releases``; the demo points both at ``OUT/releases``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from rich.console import Console

from .errors import RadfairInputError
from .fairness import AuditConfig, audit_files
from .fairness._audit import check_config
from .io import file_sha256, output_folder, write_json

AUDIT_ATTRIBUTES = ["sex", "age_group", "race", "insurance"]
AUDIT_RUN = {"dataset": "all", "arm": "emb", "seed": 0}


def _configs(config_dir: Path, out: Path):
    from .studies.emb_vs_img.config import load_config as load_study1
    from .studies.reconstruction.config import load_config as load_study2

    paths = {"study1": config_dir / "demo-emb-vs-img.yaml", "study2": config_dir / "demo-reconstruction.yaml"}
    for path in paths.values():
        if not path.is_file():
            raise RadfairInputError(f"{path}: demo config not found; run the demo from the repository root or pass --configs DIR")
    releases = str((out / "releases").resolve())
    study1 = load_study1(paths["study1"]).model_copy(update={"releases": releases})
    study2 = load_study2(paths["study2"]).model_copy(update={"releases": releases})
    return study1, study2


def _audit_needed(scored: Path, folder: Path, config: AuditConfig) -> bool:
    record = folder / "audit.json"
    if not record.is_file():
        return True
    audit = json.loads(record.read_text())
    inputs = audit.get("inputs", {}).get("scored") or {}
    return inputs.get("sha256") != file_sha256(scored) or audit.get("config", {}).get("bootstrap") != config.bootstrap


def run_full_demo(out: str | Path = "demo_out", config_dir: str | Path = "configs", *, study1=None, study2=None,
                  bootstrap: int = 1000, console: Console | None = None, progress: bool = True) -> dict:
    """Run every stage; ``study1`` / ``study2`` override the configs read from ``config_dir`` (tests)."""
    from .studies.emb_vs_img import run_study as run_study1
    from .studies.emb_vs_img.data import ensure_releases
    from .studies.reconstruction import run_study as run_study2

    console = console or Console(stderr=True, soft_wrap=True)
    out = output_folder(out, create=False)  # every option is checked before anything is written or trained
    audit_config = AuditConfig(attributes=AUDIT_ATTRIBUTES, bootstrap=bootstrap, seed=0)
    check_config(audit_config)
    if study1 is None or study2 is None:
        study1, study2 = _configs(Path(config_dir), out)
    out = output_folder(out)
    log = lambda m: console.print(f"   {m}", markup=False, highlight=False)  # noqa: E731
    timings: dict[str, float] = {}

    def stage(name: str, title: str):
        console.print(f"[bold]{len(timings) + 1}. {title}[/]")
        return name, time.perf_counter()

    name, t = stage("releases_s", f"synthetic releases -> {study1.releases}")
    ensure_releases(study1, log)
    timings[name] = time.perf_counter() - t

    name, t = stage("study1_s", "Study 1: foundation embeddings vs images (5 seeds x 3 datasets x 2 arms)")
    run_study1(study1, out / "study1", progress=progress, log=log)
    timings[name] = time.perf_counter() - t

    name, t = stage("audit_s", "audit of a trained model (embedding MLP, ALL cohort, seed 0)")
    record = json.loads((out / "study1" / "study.json").read_text())
    run = next(r for r in record["runs"] if all(r[k] == v for k, v in AUDIT_RUN.items()))
    scored = out / "study1" / run["scored"]  # this seed's scored table (its own run, or its ensemble run's seed folder)
    if _audit_needed(scored, out / "audit", audit_config):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit_files(scored, out / "audit", audit_config)
        if caught:
            log(f"{len({str(w.message) for w in caught})} subgroup warnings (e.g. groups without positives): listed in "
                "audit.json and on the report")
    else:
        log("audit is up to date (same scored table and settings); kept")
    timings[name] = time.perf_counter() - t

    name, t = stage("study2_s", "Study 2: reconstruction -> downstream fairness (X-ray and MRI)")
    run_study2(study2, out / "study2", progress=progress, log=log)
    timings[name] = time.perf_counter() - t

    name, t = stage("reports_s", "reports")
    pages = {folder: _report(out / folder) for folder in ("audit", "study1", "study2")}
    timings[name] = time.perf_counter() - t
    timings["total_s"] = sum(timings.values())
    write_json(out / "demo_timings.json", timings)
    for folder, page in pages.items():
        console.print(f"   {folder:7s} report: {page}")
    console.print("done in " + ", ".join(f"{k[:-2]} {v:.0f}s" for k, v in timings.items()))
    return {"timings": timings, "pages": pages}


def _report(folder: Path) -> Path:
    from .report import write_report

    return write_report(folder)[0]


__all__ = ["run_full_demo"]
