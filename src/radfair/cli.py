"""The ``radfair`` command line: every command is a thin wrapper over a Python function.

Bad input (RadfairInputError) prints ``error: <one line>`` to stderr and exits with code 2.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .errors import RadfairInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Audit the fairness of medical-imaging AI.")
degrade_app = typer.Typer(no_args_is_help=True, help="Simulate low-dose X-ray or undersampled MRI acquisitions.")
app.add_typer(degrade_app, name="degrade")
console = Console(stderr=True, soft_wrap=True)


def handles_input_errors(func):
    """Turn RadfairInputError into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RadfairInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None

    return wrapper


def _csv_list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command()
@handles_input_errors
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write every synthetic release into.")],
    patients: Annotated[int, typer.Option(help="Chest X-ray patients (split between CheXpert and MIMIC as in Table 1).")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same data (CSV, images and labels byte-identical).")] = 0,
    image_size: Annotated[int, typer.Option(help="Radiograph size in pixels (multiple of 8).")] = 64,
    mri_patients: Annotated[int, typer.Option(help="UCSF-PDGM patients (MRI volumes).")] = 40,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
):
    """Write synthetic CheXpert, MIMIC-CXR-JPG + MIMIC-IV, embeddings and UCSF-PDGM releases."""
    from .data.synthetic import generate

    start = time.perf_counter()
    with console.status("generating synthetic releases"):
        truth = generate(out, patients=patients, seed=seed, image_size=image_size, mri_patients=mri_patients, overwrite=overwrite)
    console.print(f"wrote {truth['images']} radiographs, {mri_patients} MRI volumes to {out} in {time.perf_counter() - start:.1f}s")


@app.command()
@handles_input_errors
def cohort(
    source: Annotated[str, typer.Option(help="chexpert, mimic, all (CheXpert + MIMIC) or ucsf-pdgm.")],
    root: Annotated[Path, typer.Option(help="Release folder or any folder above it.")],
    out: Annotated[Path, typer.Option(help="Output cohort table (.parquet or .csv).")],
    root_mimic_iv: Annotated[Path | None, typer.Option(help="MIMIC-IV folder, if not below --root.")] = None,
    uncertain: Annotated[str, typer.Option(help="Uncertain (-1) labels become: zeros, ones or ignore (NaN).")] = "zeros",
    views: Annotated[str, typer.Option(help="frontal (default) or all.")] = "frontal",
):
    """Build the canonical cohort table (one row per image) from a dataset release."""
    from .data.cohort import build_cohort, save_cohort

    table, meta = build_cohort(source, root, root_mimic_iv, uncertain, views)
    save_cohort(table, meta, out)
    for name, prov in meta["provenance"].items():
        console.print(f"{name}: read release at {prov['release']}")
    _print_summary(meta["summary"], out)


def _print_summary(summary: dict, out: Path) -> None:
    console.print(f"wrote {out}: {summary['rows']} images, {summary['patients']} patients")
    for key, shares in summary.items():
        if key.endswith("_share"):
            console.print(f"  {key[:-6]}: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    if summary.get("prevalence"):
        console.print("  prevalence: " + ", ".join(f"{k} {v:.1%}" for k, v in summary["prevalence"].items()))


@app.command()
@handles_input_errors
def split(
    cohort: Annotated[Path, typer.Option(help="Cohort table from `radfair cohort`.")],
    out: Annotated[Path, typer.Option(help="Output table with a `split` column (train/val/test).")],
    fractions: Annotated[str, typer.Option(help="train,val,test fractions of patients.")] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option(help="Seed of the patient ordering.")] = 0,
    stratify: Annotated[str | None, typer.Option(help="Comma-separated labels to stratify patients on.")] = None,
):
    """Assign patient-level train/val/test splits and save them for every later stage."""
    from .data.splits import parse_fractions, split_cohort_file

    table = split_cohort_file(cohort, out, parse_fractions(fractions), seed, _csv_list(stratify))
    counts = table.groupby("split").agg(images=("image_id", "size"), patients=("patient_id", "nunique"))
    console.print(f"wrote {out}: " + "; ".join(f"{s} {r.images} images / {r.patients} patients" for s, r in counts.iterrows()))


@app.command()
@handles_input_errors
def audit(
    scored: Annotated[Path, typer.Argument(help="Scored table (.parquet or .csv): patient_id, split, attributes, y_<label>, p_<label>.")],
    out: Annotated[Path, typer.Option(help="Output folder for the CSV/parquet tables and audit.json.")],
    attributes: Annotated[str, typer.Option(help="Comma-separated attributes; intersections as sex*race.")] = "sex,age_group,race",
    labels: Annotated[str | None, typer.Option(help="Comma-separated labels (default: every y_/p_ pair).")] = None,
    threshold: Annotated[str, typer.Option(help="f1, balanced, youden (chosen on val), a number, or a CSV of label,threshold.")] = "f1",
    threshold_on_test: Annotated[bool, typer.Option(help="Choose thresholds on the test split (biased; prints a warning).")] = False,
    bootstrap: Annotated[int, typer.Option(help="Patient-level bootstrap replicates (0 = none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    min_group_size: Annotated[int, typer.Option(help="Flag groups with fewer positives than this.")] = 10,
    compare: Annotated[Path | None, typer.Option(help="A second scored table of the same patients: paired comparison B - A.")] = None,
    no_auc: Annotated[bool, typer.Option("--no-auc", help="Skip AUROC (faster).")] = False,
):
    """Audit a scored table: thresholds, subgroup rates, TPR disparities, gaps, equalized odds, CIs."""
    import warnings

    from .fairness import AuditConfig, audit_files

    config = AuditConfig(attributes=_csv_list(attributes) or [], labels=_csv_list(labels), threshold=threshold,
                         threshold_on_test=threshold_on_test, bootstrap=bootstrap, seed=seed,
                         min_group_size=min_group_size, auc=not no_auc)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, console.status("auditing"):
        warnings.simplefilter("always")
        tables = audit_files(scored, out, config, compare)
    for message in sorted({str(w.message) for w in caught}):
        console.print(f"[yellow]warning:[/] {message}")
    console.print(f"audited {tables['audit']['test_rows']} test images of {tables['audit']['test_patients']} patients "
                  f"with {bootstrap} patient-level replicates in {time.perf_counter() - start:.1f}s -> {out}")
    summary = tables["summary"]
    for row in summary.itertuples():
        console.print(f"  {row.attribute}: average gap {row.average_gap:.3f} (bias-corrected {row.average_gap_bc:.3f}; "
                      f"95% max-t interval for the true gap [{row.ci_low:.3f}, {row.ci_high:.3f}]); "
                      f"unfavourable {row.unfavorable}; favourable {row.favorable}")


def _floats(text: str, option: str) -> list[float]:
    from .errors import BAD_OPTION

    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise RadfairInputError(BAD_OPTION.format(option=option, value=text, expected="comma-separated numbers")) from None


@degrade_app.command("xray")
@handles_input_errors
def degrade_xray_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort table with image_id and path.")],
    out: Annotated[Path, typer.Option(help="Output folder (resumable).")],
    photons: Annotated[str, typer.Option(help="Comma-separated photon counts N0.")] = "100000,10000,3000",
    mode: Annotated[str, typer.Option(help="physical (Beer-Lambert, bow-tie, Poisson+Gaussian) or paper (reference recipe).")] = "physical",
    size: Annotated[int, typer.Option(help="Working size in pixels (square).")] = 256,
    batch: Annotated[int, typer.Option(help="Images per batch (and per resumable chunk).")] = 16,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N images.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
):
    """Simulate low-dose chest X-rays; writes paired clean/degraded PNGs and per-image PSNR/SSIM."""
    from .degradation.run import degrade_xray

    table = degrade_xray(cohort, out, _floats(photons, "--photons"), mode, size, batch, seed, limit, device)
    for level, g in table.groupby("level", sort=False):
        console.print(f"  {level}: {len(g)} images, PSNR {g.psnr.mean():.2f} dB, SSIM {g.ssim.mean():.3f}")


@degrade_app.command("mri")
@handles_input_errors
def degrade_mri_cmd(
    cohort: Annotated[Path, typer.Option(help="UCSF-PDGM cohort table (FLAIR paths).")],
    out: Annotated[Path, typer.Option(help="Output folder (resumable).")],
    acceleration: Annotated[str, typer.Option(help="Comma-separated acceleration factors R.")] = "4,8,16",
    mask: Annotated[str, typer.Option(help="golden_angle (standard) or paper (reference half-rays).")] = "golden_angle",
    n_rays: Annotated[int | None, typer.Option(help="Rays for --mask paper (default 480/R; the paper used 60 for R=8).")] = None,
    seed: Annotated[int, typer.Option(help="Seed (used by randomised masks).")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N volumes.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
):
    """Simulate radially undersampled MRI (zero-filled); writes NIfTI volumes and PSNR/SSIM."""
    from .degradation.run import degrade_mri

    table = degrade_mri(cohort, out, _floats(acceleration, "--acceleration"), mask, n_rays, seed, limit, device)
    for level, g in table.groupby("level", sort=False):
        console.print(f"  {level}: {len(g)} volumes, sampled {g.sampled_fraction.mean():.1%}, "
                      f"PSNR {g.psnr.mean():.2f} dB, SSIM {g.ssim.mean():.3f}")


@app.command()
@handles_input_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path("demo_out"),
    patients: Annotated[int, typer.Option(help="Synthetic chest X-ray patients.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for every step.")] = 0,
    bootstrap: Annotated[int, typer.Option(help="Audit bootstrap replicates.")] = 500,
):
    """End-to-end demo on synthetic data: releases -> cohorts -> splits -> probe -> audit -> degrade."""
    from .demo import run_demo

    run_demo(out, patients, seed, bootstrap, console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
