"""The ``radfair`` command line: every command is a thin wrapper over a Python function.

Bad input (RadfairInputError) prints ``error: <one line>`` to stderr and exits with code 2.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .errors import BAD_OPTION, RadfairInputError, RadfairWarning

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Audit the fairness of medical-imaging AI.")
degrade_app = typer.Typer(no_args_is_help=True, help="Simulate low-dose X-ray or undersampled MRI acquisitions.")
app.add_typer(degrade_app, name="degrade")
study_app = typer.Typer(no_args_is_help=True, help="Run a paper's whole experiment from a YAML config (resumable).")
app.add_typer(study_app, name="study")
runs_app = typer.Typer(no_args_is_help=True, help="Inspect and tidy a run store (folders of runs named by their config hash).")
app.add_typer(runs_app, name="runs")
console = Console(stderr=True, soft_wrap=True)


def handles_input_errors(func):
    """Turn RadfairInputError into one line on stderr and exit code 2 (no traceback).

    An EOFError (a truncated file some decoder did not wrap) is reported the same way, never as
    click's "Aborted.". Warnings about the input are printed, summarised, after a successful run.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RadfairWarning)
                result = func(*args, **kwargs)
        except RadfairInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        except EOFError as exc:
            print(f"error: an input file ended unexpectedly (truncated?): {exc}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        print_warnings([str(w.message) for w in caught if issubclass(w.category, RadfairWarning)])
        for w in caught:  # anything else goes to Python's usual handler, as before
            if not issubclass(w.category, RadfairWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return result

    return wrapper


#: More warnings of one kind than this are printed as one line with a count.
WARNINGS_SHOWN = 3


def print_warnings(messages: list[str], full_list: str | None = None) -> None:
    """Print each distinct warning, or one line per kind (the text after the first ': ') with a count."""
    messages = sorted(set(messages))
    kinds: dict[str, list[str]] = {}
    for message in messages:
        kinds.setdefault(message.split(": ", 1)[-1], []).append(message)
    for kind, group in kinds.items():
        if len(group) <= WARNINGS_SHOWN:
            for message in group:
                console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)
        else:
            where = f" (full list in {full_list})" if full_list else ""
            console.print(f"[yellow]warning:[/] {len(group)} x {escape(kind)}{escape(where)}; e.g. {escape(group[0])}", highlight=False)


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
    nih_patients: Annotated[int, typer.Option(help="NIH ChestX-ray14-format patients (0: no NIH release).")] = 100,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
):
    """Write synthetic CheXpert, MIMIC-CXR-JPG + MIMIC-IV, embeddings, UCSF-PDGM and NIH ChestX-ray14 releases."""
    from .data.synthetic import generate

    start = time.perf_counter()
    with console.status("generating synthetic releases"):
        truth = generate(out, patients=patients, seed=seed, image_size=image_size, mri_patients=mri_patients, overwrite=overwrite,
                         nih_patients=nih_patients)
    console.print(f"wrote {truth['images']} radiographs, {mri_patients} MRI volumes to {out} in {time.perf_counter() - start:.1f}s")


@app.command()
@handles_input_errors
def cohort(
    source: Annotated[str, typer.Option(help="A registered dataset: chexpert, mimic, all (CheXpert + MIMIC), ucsf-pdgm, "
                                        "nih-cxr14, manifest, or a plug-in's (`radfair datasets` lists them).")],
    root: Annotated[Path, typer.Option(help="Release folder or any folder above it (the manifest: its CSV/parquet file).")],
    out: Annotated[Path, typer.Option(help="Output cohort table (.parquet or .csv).")],
    root_mimic_iv: Annotated[Path | None, typer.Option(help="MIMIC-IV folder, if not below --root.")] = None,
    uncertain: Annotated[str, typer.Option(help="Uncertain (-1) labels become: zeros, ones or ignore (NaN).")] = "zeros",
    views: Annotated[str, typer.Option(help="frontal (default) or all.")] = "frontal",
    race_scheme: Annotated[str, typer.Option(help="How race is grouped: six-groups (Study 1: White, Black, Asian, Hispanic, "
                                             "Native, Other) or table5 (the reconstruction paper: AI/AN, Asian, Black, "
                                             "NH/PI, Other, White).")] = "six-groups",
):
    """Build the canonical cohort table (one row per image) from a dataset release."""
    from .data.cohort import build_cohort, save_cohort

    table, meta = build_cohort(source, root, root_mimic_iv, uncertain, views, race_scheme)
    save_cohort(table, meta, out)
    for name, prov in meta["provenance"].items():
        console.print(f"{name}: read release at {prov['release']}"
                      + (f" (MIMIC-IV tables in {prov['mimic_iv_tables']})" if "mimic_iv_tables" in prov else "")
                      + (f" (metadata {Path(prov['files'][0]).name})" if name == "ucsf-pdgm" else ""))
    _print_summary(meta["summary"], out)


@app.command()
def datasets():
    """List the registered datasets: name, modality, default split rule, labels, attributes, release markers."""
    from .data import registry

    for name, d in registry.datasets().items():
        what = f"union of {', '.join(d.parts)}" if d.parts else ", ".join(m for ms in d.releases.values() for m in ms) or "a table file"
        labels = ", ".join(d.label_names()) or "y_<label> columns of the table"
        console.print(f"[bold]{name}[/bold] ({d.modality}; split rule {d.split_rule}): {escape(d.description)}\n"
                      f"  recognised by: {escape(what)}\n  labels: {labels}\n  attributes: {', '.join(d.attributes)}")


def _pct(share: float) -> str:
    """A share as a percentage that never rounds a small, nonzero share to 0% or a partial one to 100%."""
    if 0 < share < 0.001:
        return "<0.1%"
    if 0.999 < share < 1:
        return ">99.9%"
    return f"{share:.1%}"


def _print_summary(summary: dict, out: Path) -> None:
    console.print(f"wrote {out}: {summary['rows']} images, {summary['patients']} patients")
    for attr in ("sex", "age_group", "race", "insurance"):
        shares, missing = summary.get(f"{attr}_share"), summary.get(f"{attr}_missing", 0.0)
        if shares is None and not missing:
            continue
        known = ", ".join(f"{k} {_pct(v)}" for k, v in (shares or {}).items())
        if not missing:
            console.print(f"  {attr}: {known}")
        elif shares is None:
            console.print(f"  {attr}: missing on every image")
        else:
            console.print(f"  {attr}: {known} of the {_pct(1 - missing)} with a value; missing {_pct(missing)}")
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
    rule: Annotated[str | None, typer.Option(help="patient (seeded fractions) or official (the release's own split, e.g. "
                                             "NIH's test_list.txt; val carved from its train patients). Default: the dataset's rule.")] = None,
):
    """Assign patient-level train/val/test splits and save them for every later stage."""
    from .data.splits import parse_fractions, split_cohort_file

    table = split_cohort_file(cohort, out, parse_fractions(fractions), seed, _csv_list(stratify), rule)
    counts = table.groupby("split").agg(images=("image_id", "size"), patients=("patient_id", "nunique"))
    console.print(f"wrote {out}: " + "; ".join(f"{s} {r.images} images / {r.patients} patients" for s, r in counts.iterrows()))


@app.command()
@handles_input_errors
def audit(
    scored: Annotated[Path, typer.Argument(help="Scored table (.parquet or .csv): patient_id, split, attributes, y_<label>, p_<label>.")],
    out: Annotated[Path, typer.Option(help="Output folder for the CSV/parquet tables and audit.json.")],
    attributes: Annotated[str, typer.Option(help="Comma-separated attributes; intersections as sex*race.")] = "sex,age_group,race",
    labels: Annotated[str | None, typer.Option(help="Comma-separated labels (default: every y_/p_ pair).")] = None,
    threshold: Annotated[str, typer.Option(help="f1, balanced, youden (chosen on val), fpr:X / tpr:X (the operating point at a target FPR or sensitivity; on val, or on the whole table without a split column), a number, or a CSV of label,threshold.")] = "f1",
    threshold_on_test: Annotated[bool, typer.Option(help="Choose thresholds on the test split (biased; prints a warning).")] = False,
    bootstrap: Annotated[int, typer.Option(help="Patient-level bootstrap replicates (0 = none).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    min_group_size: Annotated[int, typer.Option(help="Flag groups with fewer positives than this.")] = 10,
    compare: Annotated[Path | None, typer.Option(help="A second scored table of the same patients: paired comparison B - A.")] = None,
    no_auc: Annotated[bool, typer.Option("--no-auc", help="Leave AUROC out of the outputs (it costs almost no time: it comes from the same sorted sweep as the rates).")] = False,
    columns: Annotated[str | None, typer.Option(help="The file's own column names: canonical=own pairs, e.g. \"y_pleural_effusion=Pleural Effusion,p_pleural_effusion=Logit - Pleural Effusion,patient_id=subject\".")] = None,
    scores: Annotated[str, typer.Option(help="probabilities (in [0, 1]) or logits (the logistic sigmoid is applied).")] = "probabilities",
    uncertain: Annotated[str | None, typer.Option(help="Uncertain (-1) labels: zeros, ones or ignore (as radfair cohort).")] = None,
    parity_ratio: Annotated[float, typer.Option(help="Ratio forms (min/max over groups) below this fail parity (four-fifths rule: 0.8).")] = 0.8,
    threshold_in_bootstrap: Annotated[bool, typer.Option(help="Re-choose the thresholds on resampled validation patients in every replicate, so intervals carry threshold uncertainty (default: thresholds fixed).")] = False,
    p_value: Annotated[str, typer.Option("--p-value", help="p-values of --compare: bootstrap-normal (no floor; the default) or bootstrap-count (floor 1/(B+1)).")] = "bootstrap-normal",
):
    """Audit a scored table: thresholds, subgroup rates, TPR disparities, gaps, equalized odds, CIs."""
    from .fairness import AuditConfig, audit_files
    from .fairness._audit import summary_line
    from .fairness._inputs import parse_columns

    config = AuditConfig(attributes=_csv_list(attributes) or [], labels=_csv_list(labels), threshold=threshold,
                         threshold_on_test=threshold_on_test, bootstrap=bootstrap, seed=seed,
                         min_group_size=min_group_size, auc=not no_auc, p_value=p_value,
                         threshold_in_bootstrap=threshold_in_bootstrap, scores=scores, uncertain=uncertain,
                         columns=parse_columns(columns), parity_ratio=parity_ratio)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, console.status("auditing"):
        warnings.simplefilter("always")
        tables = audit_files(scored, out, config, compare)
    print_warnings([str(w.message) for w in caught], full_list=str(out / "audit.json"))
    for note in tables["audit"].get("input_rules", []):
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"thresholds: {tables['audit']['threshold_source']}", markup=False, highlight=False)
    console.print(f"audited {tables['audit']['test_rows']} test images of {tables['audit']['test_patients']} patients "
                  f"with {bootstrap} patient-level replicates in {time.perf_counter() - start:.1f}s -> {out}")
    summary = tables["summary"]
    for row in summary.itertuples():
        console.print(f"  {summary_line(row)}", markup=False, highlight=False)


def _floats(text: str, option: str) -> list[float]:
    from .errors import BAD_OPTION

    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise RadfairInputError(BAD_OPTION.format(option=option, value=text, expected="comma-separated numbers")) from None


def _quality(g) -> str:
    """Mean PSNR/SSIM over finite values, saying how many were not finite (NaN/inf) and left out."""
    import numpy as np

    finite = np.isfinite(g.psnr) & np.isfinite(g.ssim)
    text = f"PSNR {g.psnr[finite].mean():.2f} dB, SSIM {g.ssim[finite].mean():.3f}"
    return text if finite.all() else text + f" (means over {int(finite.sum())}; {int((~finite).sum())} not finite, left out)"


@degrade_app.command("xray")
@handles_input_errors
def degrade_xray_cmd(
    cohort: Annotated[Path, typer.Option(help="Cohort table with image_id and path.")],
    out: Annotated[Path, typer.Option(help="Output folder (resumable; records its settings in manifest.json).")],
    photons: Annotated[str, typer.Option(help="Comma-separated photon counts N0.")] = "100000,10000,3000",
    mode: Annotated[str, typer.Option(help="physical (Beer-Lambert, bow-tie, Poisson+Gaussian) or paper (reference recipe).")] = "physical",
    size: Annotated[int, typer.Option(help="Working size in pixels (square).")] = 256,
    batch: Annotated[int, typer.Option(help="Images per batch (and per resumable chunk).")] = 16,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N images.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace an --out folder made with other settings or another cohort.")] = False,
):
    """Simulate low-dose chest X-rays; writes paired clean/degraded PNGs and per-image PSNR/SSIM."""
    from .degradation.run import degrade_xray

    table = degrade_xray(cohort, out, _floats(photons, "--photons"), mode, size, batch, seed, limit, device, overwrite)
    for level, g in table.groupby("level", sort=False):
        console.print(f"  {level}: {len(g)} images, {_quality(g)}")


@degrade_app.command("mri")
@handles_input_errors
def degrade_mri_cmd(
    cohort: Annotated[Path, typer.Option(help="UCSF-PDGM cohort table (FLAIR paths).")],
    out: Annotated[Path, typer.Option(help="Output folder (resumable; records its settings in manifest.json).")],
    acceleration: Annotated[str, typer.Option(help="Comma-separated acceleration factors R.")] = "4,8,16",
    mask: Annotated[str, typer.Option(help="golden_angle (standard) or paper (reference half-rays).")] = "golden_angle",
    n_rays: Annotated[int | None, typer.Option(help="Rays for --mask paper (default 480/R; the paper used 60 for R=8).")] = None,
    seed: Annotated[int, typer.Option(help="Seed (used by randomised masks).")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N volumes.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace an --out folder made with other settings or another cohort.")] = False,
):
    """Simulate radially undersampled MRI (zero-filled); writes NIfTI volumes and PSNR/SSIM."""
    from .degradation.run import degrade_mri

    table = degrade_mri(cohort, out, _floats(acceleration, "--acceleration"), mask, n_rays, seed, limit, device, overwrite)
    for level, g in table.groupby("level", sort=False):
        console.print(f"  {level}: {len(g)} volumes, sampled {g.sampled_fraction.mean():.1%}, "
                      f"{_quality(g)}")


@app.command()
@handles_input_errors
def train(
    cohort: Annotated[Path, typer.Option(help="Split cohort table (from `radfair split`).")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, run.json, run.log, scored.parquet (resumable).")],
    input: Annotated[str, typer.Option("--input", help="embeddings or images.")] = "embeddings",
    model: Annotated[str, typer.Option(help="mlp (1376-768-256-L head), linear (probe) or densenet121 (MONAI, same head).")] = "mlp",
    root: Annotated[Path | None, typer.Option(help="Folder holding the embedding store (CXR-Foundation TFRecords / train.npz).")] = None,
    labels: Annotated[str | None, typer.Option(help="Comma-separated labels (default: every y_ column).")] = None,
    image_size: Annotated[int, typer.Option(help="Images are decoded once and resized to this square size.")] = 224,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 20,
    patience: Annotated[int, typer.Option(help="Early stopping: epochs without a better validation loss.")] = 5,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 48,
    lr: Annotated[float, typer.Option(help="Adam learning rate (cosine decay to 0).")] = 1e-4,
    weight_decay: Annotated[float, typer.Option(help="Adam weight decay.")] = 1e-5,
    seed: Annotated[int, typer.Option(help="Seed of weights, batch order and dropout.")] = 0,
    weights: Annotated[Path | None, typer.Option(help="Start from a local checkpoint (state dict); nothing is downloaded.")] = None,
    missing_embeddings: Annotated[str, typer.Option(help="error (default) or drop: rows without an embedding.")] = "error",
    checkpoint_minutes: Annotated[float, typer.Option(help="Also checkpoint inside an epoch every N minutes (0 = epoch ends only).")] = 10.0,
    device: Annotated[str, typer.Option(help="cpu or cuda (bf16 autocast and channels-last on CUDA).")] = "cpu",
    threads: Annotated[int, typer.Option(help="Intra-op CPU threads (0 = torch default).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a run folder made with other settings.")] = False,
):
    """Train a classifier on embeddings or images; writes checkpoints and scored.parquet (val + test rows)."""
    from .training.classify import train as train_run

    outcome = train_run(out, cohort=cohort, labels=_csv_list(labels), device=device, cpus=threads, overwrite=overwrite,
                        input=input, model=model, root=str(root) if root else None, image_size=image_size,
                        batch_size=batch_size, seed=seed, weights=str(weights) if weights else None,
                        missing_embeddings=missing_embeddings,
                        optim={"lr": lr, "weight_decay": weight_decay},
                        loop={"epochs": epochs, "patience": patience, "checkpoint_minutes": checkpoint_minutes})
    _print_run(outcome)


def _print_run(outcome) -> None:
    import json as _json

    from .execution import run_output

    run_dir = Path(outcome.run_dir)
    metrics = _json.loads(run_output(run_dir, "metrics").read_text())
    verb = "already done, skipped" if outcome.status == "skipped" else f"trained in {outcome.seconds:.1f}s"
    console.print(f"run {outcome.run_id} {verb}: best epoch {metrics['best_epoch']} of {metrics['epochs_run']} -> {run_output(run_dir, 'scored')}")
    aucs = {k: v for k, v in metrics["auc"]["test"].items() if v is not None}
    if aucs:
        console.print("  test AUROC: " + ", ".join(f"{k} {v:.3f}" for k, v in aucs.items()))


@app.command()
@handles_input_errors
def embed(
    encoder: Annotated[Path, typer.Option(help="Frozen encoder: a TorchScript file, or a state dict with --arch.")],
    cohort: Annotated[Path, typer.Option(help="Cohort table whose images are embedded.")],
    out: Annotated[Path, typer.Option(help="Embedding store folder (CXR-Foundation layout), usable as --root / `embeddings:`.")],
    arch: Annotated[str | None, typer.Option(help="MONAI architecture of a state dict: densenet121, resnet18 or resnet50.")] = None,
    image_size: Annotated[int, typer.Option(help="Images are resized to this square size.")] = 224,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 64,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
):
    """Embed a cohort's images with any local frozen encoder, written in the CXR-Foundation store format."""
    from .training.embed import embed_cohort

    manifest = embed_cohort(encoder, cohort, out, arch=arch, image_size=image_size, batch_size=batch_size, device=device,
                            overwrite=overwrite)
    rows = manifest["rows"]
    console.print(f"wrote {sum(rows.values())} embeddings of width {manifest['width']} to {out} "
                  f"(chexpert {rows['chexpert']}, mimic {rows['mimic']}, other {rows['other']})")


@app.command()
@handles_input_errors
def predict(
    run: Annotated[Path, typer.Option(help="Run folder written by `radfair train`.")],
    cohort: Annotated[Path, typer.Option(help="Any cohort table to score (labels optional).")],
    out: Annotated[Path, typer.Option(help="Output scored table (.parquet or .csv).")],
    root: Annotated[Path | None, typer.Option(help="Embedding store folder, if not the one the run was trained with.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seed: Annotated[int | None, typer.Option(help="The seed to score with, for a run that trained several seeds together (train-classifier-ensemble).")] = None,
):
    """Score every row of a cohort with a trained run's best checkpoint."""
    from .training.classify import predict_cohort

    table = predict_cohort(run, cohort, out, root=str(root) if root else None, device=device, seed=seed)
    console.print(f"scored {len(table)} rows -> {out}")


def _plan(study: str, config: Path, out: Path, plan: bool, device: str | None) -> None:
    from .errors import BAD_OPTION, RadfairInputError
    from .studies.plan import summary, write_plan

    if not plan:
        raise RadfairInputError(BAD_OPTION.format(option="--device", value=device, expected="used with --plan only (the config sets the run's device)"))
    if device not in (None, "cpu") and not str(device).startswith("cuda"):
        raise RadfairInputError(BAD_OPTION.format(option="--device", value=device, expected="cpu or cuda"))
    if study == "emb-vs-img":
        from .studies.emb_vs_img.config import load_config
    else:
        from .studies.reconstruction.config import load_config
    result = write_plan(study, load_config(config), out, device)
    for line in summary(result):
        console.print(line, markup=False, highlight=False)
    console.print(f"-> {out / 'plan.json'}", markup=False, highlight=False)


@study_app.command("emb-vs-img")
@handles_input_errors
def study_emb_vs_img(
    config: Annotated[Path, typer.Option(help="Study YAML (see configs/paper-emb-vs-img.yaml, configs/demo-emb-vs-img.yaml).")],
    out: Annotated[Path, typer.Option(help="Study folder: data/, runs/, tables, figures, study.json.")],
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    jobs: Annotated[int | None, typer.Option(help="Local executor: runs in parallel processes (default: the config's jobs).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (auto, HOST:PORT); none starts a local one.")] = None,
    cpus_per_run: Annotated[int, typer.Option(help="CPU threads per run (0 = all for sequential runs, else cores / jobs).")] = 0,
    plan: Annotated[bool, typer.Option("--plan", help="Write OUT/plan.json (runs, deviations, estimate) and print a summary; run nothing, read no image (release metadata only, to count images, when it is on disk).")] = False,
    device: Annotated[str | None, typer.Option(help="With --plan: plan for this device (cpu, cuda) instead of the config's; needs no GPU.")] = None,
):
    """Embeddings vs images (Study 1): datasets x {emb, img} x seeds, Tables 3-4, Figure 1, compute cost."""
    import warnings

    if plan or device:
        return _plan("emb-vs-img", config, out, plan, device)

    from .studies.emb_vs_img import run_study

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tables = run_study(config, out, executor=executor, jobs=jobs, address=address, cpus_per_run=cpus_per_run,
                           log=lambda m: console.print(m, markup=False, highlight=False))
    t = tables["timings"]
    console.print(f"study emb-vs-img: {t['runs_trained']} runs trained, {t['runs_skipped']} reused, "
                  f"{time.perf_counter() - start:.1f}s -> {out} (table3.md, table4.md, fig1_*.png, cost.csv)")
    for row in tables["summary"].itertuples():
        console.print(f"  {row.attribute:9s} {row.dataset:8s} {row.model}: average gap {row.average_gap:.3f} "
                      f"[{row.ci_low:.3f}, {row.ci_high:.3f}]; unfavourable {row.unfavorable}")


@study_app.command("reconstruction")
@handles_input_errors
def study_reconstruction(
    config: Annotated[Path, typer.Option(help="Study YAML (see configs/paper-reconstruction.yaml, configs/demo-reconstruction.yaml).")],
    out: Annotated[Path, typer.Option(help="Study folder: data/, degraded_xray/, runs/, bias_shift.csv, performance.csv, study.json.")],
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    jobs: Annotated[int | None, typer.Option(help="Local executor: runs in parallel processes (default: the config's jobs).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (auto, HOST:PORT); none starts a local one.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Write OUT/plan.json (runs, deviations, estimate) and print a summary; run nothing, read no image (release metadata only, to count images, when it is on disk).")] = False,
    device: Annotated[str | None, typer.Option(help="With --plan: plan for this device (cpu, cuda) instead of the config's; needs no GPU.")] = None,
):
    """Reconstruction -> downstream fairness (Study 2, X-ray part): reconstructors x dose levels, paired shift."""
    import warnings

    if plan or device:
        return _plan("reconstruction", config, out, plan, device)

    from .studies.reconstruction import run_study

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = run_study(config, out, executor=executor, jobs=jobs, address=address,
                           log=lambda m: console.print(m, markup=False, highlight=False))
    console.print(f"study reconstruction: {time.perf_counter() - start:.1f}s -> {out} (bias_shift.csv, performance.csv)")
    for row in result["psnr_gain"].itertuples():
        console.print(f"  {row.dataset:9s} {row.reconstructor:8s} {row.level}: PSNR {row.baseline:.2f} dB degraded -> {row.reconstructed:.2f} dB reconstructed")
    shift = result["bias_shift"]
    significant = shift[(shift["p_holm"] < 0.05) & shift["metric"].isin(["eodd_worst", "eop"])]
    console.print(f"  {len(significant)} of {int(shift['metric'].isin(['eodd_worst', 'eop']).sum())} EODD/EOP shifts significant after Holm")


@runs_app.command("list")
@handles_input_errors
def runs_list(store: Annotated[Path, typer.Argument(help="Run store folder (or one run folder).")]):
    """One line per run: id, label, kind, status, attempts, seconds, device, folder (tab-separated)."""
    from .execution.store import RunStore, summary_row

    columns = ("run_id", "label", "kind", "status", "attempts", "seconds", "device", "path")
    records = RunStore(store).records()
    print("\t".join(columns))
    for run_dir, record in records:
        row = summary_row(run_dir, record)
        print("\t".join(str(row[k]) for k in columns))


@runs_app.command("show")
@handles_input_errors
def runs_show(run: Annotated[Path, typer.Argument(help="A run folder.")]):
    """Print a run's run.json (config, status, attempts, versions, outputs with sha256)."""
    from .execution.store import read_record

    record = read_record(run)
    if record is None:
        raise RadfairInputError(f"{run}: no run.json; expected a run folder")
    print(json.dumps(record, indent=2))


@runs_app.command("clean")
@handles_input_errors
def runs_clean(
    store: Annotated[Path, typer.Argument(help="Run store folder.")],
    keep_failed: Annotated[bool, typer.Option(help="Keep failed runs (their logs) and remove only unfinished ones.")] = False,
    dry_run: Annotated[bool, typer.Option(help="List what would be removed.")] = False,
    caches: Annotated[bool, typer.Option(help="Also remove the study's image cache (image-cache/ beside the store) and embedding "
                                              "cache (data/embedding-cache/); both are rebuilt on demand.")] = False,
):
    """Remove runs that are not done and not running now (done runs are never touched), unfinished image-cache
    shards, and with --caches the whole image cache and the study's embedding cache."""
    from .execution.store import RunStore
    from .training.inputs import clean_image_cache

    removed = RunStore(store).clean(include_failed=not keep_failed, dry_run=dry_run)
    console.print(("would remove" if dry_run else "removed") + f" {len(removed)} run(s)" + "".join(f"\n  {p}" for p in removed))
    cache_root = Path(store).resolve().parent / "image-cache" if Path(store).name == "runs" else Path(store) / "image-cache"
    files, size = clean_image_cache(cache_root, everything=caches, dry_run=dry_run)
    if files:
        console.print(("would remove" if dry_run else "removed") + f" {len(files)} image-cache file(s), {size / 1e6:.1f} MB "
                      f"({'the whole cache' if caches else 'unfinished shards'}) in {cache_root}")
    embeddings = cache_root.parent / "data" / "embedding-cache"
    if caches and embeddings.is_dir():
        _, size = clean_image_cache(embeddings, everything=True, dry_run=dry_run)  # any cache folder: removed whole
        console.print(("would remove" if dry_run else "removed") + f" the embedding cache, {size / 1e6:.1f} MB, in {embeddings}")


@app.command()
@handles_input_errors
def report(
    folder: Annotated[Path, typer.Argument(help="Result folder of `radfair audit` or `radfair study emb-vs-img|reconstruction`.")],
    out: Annotated[Path | None, typer.Option(help="Output file (default: FOLDER/report.html, or report.md with --format md).")] = None,
    format: Annotated[str, typer.Option("--format", help="html (one self-contained file) or md (figures as relative links).")] = "html",
):
    """Write one report page of a result folder: findings, tables, figures, methods, warnings, provenance."""
    from .report.render import write_report

    path, page = write_report(folder, out, format)
    console.print(f"report ({page.kind}): {len(page.findings)} finding(s), {len(page.tables)} table(s), "
                  f"{len(page.figures)} figure(s), {len(page.warnings)} warning(s) -> {path}")


@app.command()
@handles_input_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path("demo_out"),
    configs: Annotated[Path, typer.Option(help="Folder holding demo-emb-vs-img.yaml and demo-reconstruction.yaml.")] = Path("configs"),
    quick: Annotated[bool, typer.Option(help="Only the 30-second tour: releases, cohorts, a linear probe, its audit, degradation.")] = False,
    patients: Annotated[int, typer.Option(help="--quick: synthetic chest X-ray patients.")] = 2000,
    seed: Annotated[int, typer.Option(help="--quick: seed for every step.")] = 0,
    bootstrap: Annotated[int, typer.Option(help="Audit bootstrap replicates.")] = 1000,
):
    """End-to-end demo on synthetic releases: Study 1, an audit of a trained model, Study 2 and their three reports
    (resumable: a second run reuses every finished run). ``--quick``: the short tour only."""
    if not quick and (patients, seed) != (2000, 0):
        raise RadfairInputError(BAD_OPTION.format(option="--patients/--seed", value=[patients, seed],
                                                  expected="these apply to --quick only (the full demo reads the study configs)"))
    if quick:
        from .demo import run_demo

        run_demo(out, patients, seed, bootstrap, console)
        return
    from .demo_full import run_full_demo

    run_full_demo(out, configs, bootstrap=bootstrap, console=console)


def main() -> None:
    """The ``radfair`` console script."""
    try:
        app()
    finally:
        # what is still alive is the OS's to free: the interpreter's final collections over pandas', numba's and
        # matplotlib's objects took about 0.25 s of every command (measured on the audit benchmark), freeing nothing
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()
