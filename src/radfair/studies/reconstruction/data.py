"""Study 2 data: one saved split per dataset with the reconstruction/classifier division, and derived attributes.

* patient-level train/val/test (70/10/20), then the train patients split again (70/30) into
  ``recon_split = reconstruction | classifier`` (paper §3): reconstructors never see the classifier's
  training patients and vice versa; val and test are shared;
* ``split.shared_training`` parts: every train patient trains both tasks (``recon_split = both``; the paper's
  UCSF-PDGM);
* ``age_binary``: the paper's dichotomy at the dataset median, named with it: ``analysis.age_split =
  patient-median`` compares each patient's (first) age with the median over patients, ``<=62`` / ``>62``;
  ``image-median`` the median over images, ``>=63`` / ``<63``;
* ``race``: grouped under ``analysis.race_scheme`` (the paper's Table 5 groups: AI/AN, Asian, Black, NH/PI,
  Other, White); ``race_merged``: the scheme's merged variant (AI/AN and NH/PI within Other, the appendix's
  Figures 18-19), kept beside ``race``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...data.cohort import build_cohort
from ...data.race import merged_race
from ...data.splits import assign_splits, check_patient_level, patient_key
from ...io import write_json, write_table
from ..emb_vs_img.data import ensure_releases, synthetic_settings
from .config import ReconstructionConfig


def add_age_binary(cohort: pd.DataFrame, rule: str = "patient-median") -> pd.DataFrame:
    if rule == "image-median":
        median = float(np.nanmedian(cohort["age"].to_numpy(float)))
        cut = f"{median:g}"
        binary = pd.Series(np.where(cohort["age"] >= median, f">={cut}", f"<{cut}"), index=cohort.index, dtype=object)
        cohort["age_binary"] = binary.where(cohort["age"].notna(), None)
        return cohort
    first = cohort.dropna(subset=["age"]).drop_duplicates("patient_id").set_index("patient_id")["age"].astype(float)
    median = float(np.median(first)) if len(first) else np.nan
    cut = f"{median:g}"
    age = cohort["patient_id"].map(first)
    binary = pd.Series(np.where(age <= median, f"<={cut}", f">{cut}"), index=cohort.index, dtype=object)
    cohort["age_binary"] = binary.where(age.notna(), None)
    return cohort


def add_race_merged(cohort: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """``race_merged``: ``race`` with the groups ``scheme`` merges moved into the group they join (missing stays missing)."""
    cohort["race_merged"] = merged_race(cohort["race"], scheme)
    return cohort


def prepare_split(config: ReconstructionConfig, out: Path, dataset: str, source: str, log=print) -> dict:
    """Write ``out/data/<dataset>_split.parquet`` (``dataset`` = xray | mri); reuse it when the settings are
    unchanged. Returns the manifest."""
    folder = out / "data"
    manifest_path = folder / f"{dataset}_manifest.json"
    root = config.root_of(dataset)
    settings = {"releases": config.releases, **({"root": root} if root != config.releases else {}), "source": source, "split": config.split.model_dump(mode="json"),
                "race_scheme": config.analysis.race_scheme,
                "age_split": config.analysis.age_split, "synthetic": synthetic_settings(config)}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest["settings"] == settings and Path(manifest["split"]).is_file():
            return manifest
    ensure_releases(config, log)
    cohort, _ = build_cohort(source, root, race_scheme=config.analysis.race_scheme)
    cohort["split"] = assign_splits(cohort, config.split.fractions, config.split.seed)
    check_patient_level(cohort, source)
    key = pd.Series(patient_key(cohort["patient_id"], config.split.seed + 1), index=cohort.index)
    train = cohort["split"] == "train"
    train_patients = cohort.loc[train].drop_duplicates("patient_id").assign(key=key[train]).sort_values("key")["patient_id"]
    recon_patients = set(train_patients.iloc[: int(round(config.split.reconstruction_share * len(train_patients)))])
    if dataset in config.split.shared_training:
        cohort["recon_split"] = np.where(train, "both", "shared")
    else:
        cohort["recon_split"] = np.where(~train, "shared", np.where(cohort["patient_id"].isin(recon_patients), "reconstruction", "classifier"))
    cohort = add_race_merged(add_age_binary(cohort, config.analysis.age_split), config.analysis.race_scheme)
    path = folder / f"{dataset}_split.parquet"
    write_table(cohort, path, {"split": {**config.split.model_dump(mode="json"), "unit": "patient"}})
    counts = cohort.groupby(["split", "recon_split"])["patient_id"].nunique().reset_index().to_dict("records")
    manifest = {"settings": settings, "split": str(path), "patients": counts}
    write_json(manifest_path, manifest)
    return manifest
