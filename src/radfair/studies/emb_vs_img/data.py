"""Study 1 data: one cohort and one saved patient-level split per dataset, shared by every arm and seed.

* MIMIC and CheXpert are split separately (patient-level, ``split.fractions``, ``split.seed``); ALL is
  their union, so every patient sits in the same split in every dataset (anchor bug 1: both arms are
  trained, thresholded and tested on exactly the same rows).
* Rows without an embedding are dropped from **both** arms (``missing_embeddings: drop``, counts
  reported) or the study stops (``error``); never from one arm only. A dataset without CXR-Foundation
  embeddings (NIH ChestX-ray14, a manifest) gets its store from ``radfair embed`` (any frozen local encoder),
  named in ``embeddings``; a study whose arms all read images needs no store.
* ``OUT/data/manifest.json`` records the settings that made the files; a rerun with the same settings
  reuses them, a rerun with other settings rebuilds them (and so changes every run id downstream).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...data import registry
from ...data.cohort import build_cohort
from ...data.splits import assign_splits, check_patient_level
from ...data.synthetic import generate
from ...data.synthetic.generate import GENERATOR_VERSION
from ...errors import RadfairInputError, preview
from ...io import write_json, write_table
from ...training.inputs import embedding_cache_root, store_vectors
from .config import EmbVsImgConfig


def _data_settings(config: EmbVsImgConfig) -> dict:
    return {"releases": config.releases, **({"roots": config.roots} if config.roots else {}), "embeddings": config.embeddings, "datasets": config.datasets,
            "uncertain": config.uncertain, "missing_embeddings": config.missing_embeddings,
            "split": config.split.model_dump(mode="json"),
            "synthetic": synthetic_settings(config), **({} if _needs_store(config) else {"embedding_arms": False})}


def _needs_store(config: EmbVsImgConfig) -> bool:
    return any(arm.on_embeddings for arm in config.arms.values())


def synthetic_settings(config) -> dict | None:
    """The config's ``synthetic`` block plus the generator version (a split of other data is never reused)."""
    return {**config.synthetic.model_dump(), "generator_version": GENERATOR_VERSION} if config.synthetic else None


def ensure_releases(config, log=print) -> None:
    """Generate the config's synthetic releases unless they exist; existing ones must match its ``synthetic`` block
    (two configs sharing a folder with different settings would otherwise silently use whichever ran first)."""
    releases = Path(config.releases)
    s = config.synthetic
    if not s:
        return
    if not (releases.is_dir() and any(releases.iterdir())):
        log(f"writing synthetic releases ({s.patients} patients, {s.image_size} px) to {releases}")
        generate(releases, patients=s.patients, seed=s.seed, image_size=s.image_size, mri_patients=s.mri_patients,
                 nih_patients=s.nih_patients)
        return
    truth_path = releases / "ground_truth.json"
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        counts = truth.get("patients", {})
        found = {"patients": counts.get("chexpert", 0) + counts.get("mimic", 0), "mri_patients": counts.get("ucsf-pdgm", 0),
                 # releases written before the NIH release existed record no count: nothing to compare
                 "nih_patients": counts.get("nih-cxr14", s.nih_patients), "seed": truth.get("seed"), "image_size": truth.get("image_size"),
                 "generator_version": truth.get("generator_version", 1)}
        wanted = {"patients": s.patients, "mri_patients": s.mri_patients, "nih_patients": s.nih_patients, "seed": s.seed,
                  "image_size": s.image_size, "generator_version": GENERATOR_VERSION}
        differ = {k: (found[k], wanted[k]) for k in wanted if found[k] != wanted[k]}
        if differ:
            raise RadfairInputError(f"{truth_path}: the synthetic releases there were generated with "
                                    + ", ".join(f"{k}={a}" for k, (a, _) in differ.items()) + "; the config asks for "
                                    + ", ".join(f"{k}={b}" for k, (_, b) in differ.items())
                                    + "; use another releases folder or delete this one")


def _keep_embedded(cohort: pd.DataFrame, source: str, store: str, missing: str, log, cache: Path) -> tuple[pd.DataFrame, int, int]:
    """The rows that have an embedding in ``store``, how many were dropped, and the store's vector width. The vectors
    read here fill the study's embedding cache (``cache``), so the runs read the store no more."""
    vectors, found = store_vectors(cohort, store, cache)
    dropped = int((~found).sum())
    if dropped:
        message = f"{store}: {dropped} of {len(cohort)} {source} images have no embedding (e.g. {preview(cohort['image_id'][~found], 2)})"
        if missing == "error" or not found.any():
            raise RadfairInputError(message + "; expected one per image (without a CXR-Foundation store: `radfair embed "
                                    "--cohort COHORT --out DIR` and `embeddings: DIR`), or missing_embeddings: drop")
        log(message + "; dropped from both arms")
    return cohort[found].reset_index(drop=True), dropped, int(vectors.shape[1])


def prepare_data(config: EmbVsImgConfig, out: Path, log=print) -> dict:
    """Write ``out/data/split_<dataset>.parquet`` for every dataset; return the manifest."""
    folder = out / "data"
    manifest_path = folder / "manifest.json"
    settings = _data_settings(config)
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest["settings"] == settings and all(Path(p).is_file() for p in manifest["splits"].values()):
            return manifest
    ensure_releases(config, log)
    store = config.embeddings or config.releases
    needed = sorted({s for d in config.datasets for s in (registry.get(d).parts or (d,))})
    parts, dropped, widths = {}, {}, set()
    for source in needed:
        cohort, _ = build_cohort(source, config.root_of(source), uncertain=config.uncertain)
        if _needs_store(config):
            cache = embedding_cache_root(folder / f"split_{source}.parquet")  # the runs' cohorts share it
            cohort, dropped[source], width = _keep_embedded(cohort, source, store, config.missing_embeddings, log, cache)
            widths.add(width)
        cohort["split"] = assign_splits(cohort, config.split.fractions, config.split.seed)
        check_patient_level(cohort, source)
        parts[source] = cohort
    if len(widths) > 1:
        raise RadfairInputError(f"{store}: the datasets' embeddings differ in width {sorted(widths)}; expected one width")
    splits = {}
    for dataset in config.datasets:
        members = registry.get(dataset).parts or (dataset,)
        table = pd.concat([parts[s] for s in members], ignore_index=True) if len(members) > 1 else parts[dataset]
        path = folder / f"split_{dataset}.parquet"
        write_table(table, path, {"split": {**config.split.model_dump(mode="json"), "unit": "patient",
                                            **({"union": list(members)} if len(members) > 1 else {})}})
        splits[dataset] = str(path)
    counts = {d: pd.read_parquet(p).groupby("split").agg(images=("image_id", "size"), patients=("patient_id", "nunique")).to_dict()
              for d, p in splits.items()}
    manifest = {"settings": settings, "splits": splits, "dropped_without_embedding": dropped, "counts": counts,
                **({"embedding_width": widths.pop()} if widths else {})}
    write_json(manifest_path, manifest)
    return manifest
