"""Writers for each release's on-disk format (CheXpert, MIMIC-CXR-JPG + MIMIC-IV, embeddings).

Each writer receives the simulated image table (one row per image, produced by ``generate``) and
writes files exactly as the public release lays them out, so the real loaders read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..embeddings import write_mimic_embedding
from ..schema import LABELS

#: gzip without a timestamp in its header, so the same seed gives byte-identical files
GZIP = {"method": "gzip", "mtime": 0}

#: How each harmonised group is written in the raw files (several spellings, to exercise the mapping).
MIMIC_RACE_TEXT = {
    "White": ("WHITE", "WHITE - OTHER EUROPEAN", "WHITE - RUSSIAN"),
    "Black": ("BLACK/AFRICAN AMERICAN", "BLACK/CAPE VERDEAN"),
    "Asian": ("ASIAN", "ASIAN - CHINESE"),
    "Hispanic": ("HISPANIC/LATINO - PUERTO RICAN", "HISPANIC OR LATINO"),
    "Native": ("AMERICAN INDIAN/ALASKA NATIVE", "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER"),
    "Other": ("OTHER", "MULTIPLE RACE/ETHNICITY"),
    None: ("UNKNOWN", "UNABLE TO OBTAIN", "PATIENT DECLINED TO ANSWER"),
}
CHEXPERT_RACE_TEXT = {
    "White": (("White", "Non-Hispanic/Non-Latino"), ("White, non-Hispanic", "Non-Hispanic/Non-Latino")),
    "Black": (("Black or African American", "Non-Hispanic/Non-Latino"), ("Black, non-Hispanic", "Not Hispanic")),
    "Asian": (("Asian", "Non-Hispanic/Non-Latino"), ("Asian, non-Hispanic", "Non-Hispanic/Non-Latino")),
    "Hispanic": (("Other", "Hispanic/Latino"), ("White, Hispanic", "Hispanic/Latino")),
    "Native": (("Native Hawaiian or Other Pacific Islander", "Non-Hispanic/Non-Latino"), ("American Indian or Alaska Native", "Unknown")),
    "Other": (("Other", "Non-Hispanic/Non-Latino"), ("Other, non-Hispanic", "Unknown")),
    None: (("Unknown", "Unknown"), ("Patient Refused", "Patient Refused")),
}
INSURANCE_TEXT = {"Medicare": ("Medicare",), "Medicaid": ("Medicaid",), "Other": ("Other", "Private")}


def _group(value):
    """A group name, or None for missing (pandas turns None into NaN along the way)."""
    return None if pd.isna(value) else value


def _pick(rng: np.random.Generator, options: tuple):
    return options[rng.integers(len(options))]


def write_images(paths: list[Path], pixels: np.ndarray) -> None:
    for path, img in zip(paths, pixels, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, quality=95)


def label_cells(recorded: pd.DataFrame) -> pd.DataFrame:
    """Recorded labels (1, 0, -1, NaN) -> CSV columns with the release's names."""
    return pd.DataFrame({LABELS[k]: recorded[k].to_numpy() for k in LABELS}, index=recorded.index)


def write_chexpert(root: Path, images: pd.DataFrame, rng: np.random.Generator) -> None:
    """``CheXpert-v1.0/{train,valid}.csv``, JPEGs, and ``CHEXPERT DEMO.xlsx`` below ``root``."""
    base = pd.DataFrame(
        {
            "Path": images["rel_path"].to_numpy(),
            "Sex": images["sex"].fillna("Unknown").to_numpy(),
            "Age": images["age"].astype(int).to_numpy(),
            "Frontal/Lateral": np.where(images["view_position"] == "LL", "Lateral", "Frontal"),
            "AP/PA": np.where(images["view_position"] == "LL", None, images["view_position"]),
        },
        index=images.index,
    )
    table = pd.concat([base, label_cells(images[[f"rec_{k}" for k in LABELS]].set_axis(list(LABELS), axis=1))], axis=1)
    release = root / "CheXpert-v1.0"
    release.mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid"):
        table[images["part"] == part].to_csv(release / f"{part}.csv", index=False)
    patients = images.drop_duplicates("patient")
    rows = []
    for patient, race, sex, age in zip(patients["patient"], patients["race"], patients["sex"], patients["age"], strict=True):
        primary, ethnicity = _pick(rng, CHEXPERT_RACE_TEXT[_group(race)])
        rows.append({"PATIENT": patient, "GENDER": sex, "AGE_AT_CXR": int(age), "PRIMARY_RACE": primary, "ETHNICITY": ethnicity})
    pd.DataFrame(rows).to_excel(root / "CHEXPERT DEMO.xlsx", index=False)


def write_mimic(cxr_root: Path, iv_root: Path, images: pd.DataFrame, patients: pd.DataFrame, rng: np.random.Generator) -> None:
    """MIMIC-CXR-JPG 2.0.0 CSVs (gzip) + MIMIC-IV hosp/patients and admissions."""
    cxr_root.mkdir(parents=True, exist_ok=True)
    position = images["view_position"].replace({"LL": "LATERAL"})
    meta = pd.DataFrame(
        {
            "dicom_id": images["dicom_id"],
            "subject_id": images["subject_id"],
            "study_id": images["study_id"],
            "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
            "ViewPosition": position,
            "Rows": images["size"],
            "Columns": images["size"],
            "StudyDate": images["study_date"].dt.strftime("%Y%m%d").astype(int),
            "StudyTime": 120000.0,
        }
    )
    meta.to_csv(cxr_root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False, compression=GZIP)
    studies = images.drop_duplicates("study_id")
    labels = pd.concat(
        [studies[["subject_id", "study_id"]], label_cells(studies[[f"rec_{k}" for k in LABELS]].set_axis(list(LABELS), axis=1))], axis=1
    )
    labels.to_csv(cxr_root / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False, compression=GZIP)
    split = images[["dicom_id", "study_id", "subject_id"]].assign(split=images["official_split"])
    split.to_csv(cxr_root / "mimic-cxr-2.0.0-split.csv.gz", index=False, compression=GZIP)

    hosp = iv_root / "hosp"
    hosp.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "subject_id": patients["subject_id"],
            "gender": patients["sex"].map({"Male": "M", "Female": "F"}),
            "anchor_age": patients["age0"],
            "anchor_year": patients["anchor_year"],
            "anchor_year_group": "2014 - 2016",
            "dod": None,
        }
    ).to_csv(hosp / "patients.csv.gz", index=False, compression=GZIP)
    rows = []
    hadm = 20000000
    for pat in patients.itertuples():
        first = pd.Timestamp(year=int(pat.anchor_year), month=1, day=1)
        for k in range(int(pat.n_admissions)):
            admit = first + pd.Timedelta(days=int(k * 200 + rng.integers(0, 150)))
            # race text: mostly the patient's group, sometimes unknown (exercises the patient-mode rule)
            race = _pick(rng, MIMIC_RACE_TEXT[None] if rng.random() < 0.1 else MIMIC_RACE_TEXT[_group(pat.race)])
            age_then = pat.age0 + (admit.year - pat.anchor_year)
            insurance = "Medicare" if (pat.insurance == "Medicaid" and age_then >= 65) else pat.insurance
            hadm += 1 + int(rng.integers(1, 50))
            rows.append(
                {
                    "subject_id": pat.subject_id,
                    "hadm_id": hadm,
                    "admittime": admit.strftime("%Y-%m-%d %H:%M:%S"),
                    "dischtime": (admit + pd.Timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"),
                    "admission_type": "EW EMER.",
                    "insurance": _pick(rng, INSURANCE_TEXT[insurance]),
                    "race": race,
                }
            )
    pd.DataFrame(rows).to_csv(hosp / "admissions.csv.gz", index=False, compression=GZIP)


def write_mimic_embeddings(root: Path, images: pd.DataFrame, vectors: np.ndarray) -> None:
    for rel, dicom_id, vector in zip(images["rel_path"], images["dicom_id"], vectors, strict=True):
        write_mimic_embedding(root / Path(rel).with_suffix(".tfrecord"), dicom_id, vector)


def write_chexpert_embeddings(path: Path, images: pd.DataFrame, vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mapping = dict(zip(images["rel_path"], vectors, strict=True))
    np.savez(path, mapping=np.array(mapping, dtype=object))


#: NIH ChestX-ray14 names of the simulated findings (the others, e.g. fractures and devices, are not in its 14).
NIH_FINDINGS = {"atelectasis": "Atelectasis", "cardiomegaly": "Cardiomegaly", "consolidation": "Consolidation", "edema": "Edema",
                "pleural_effusion": "Effusion", "pneumonia": "Pneumonia", "pneumothorax": "Pneumothorax",
                "lung_opacity": "Infiltration", "lung_lesion": "Nodule"}
#: The released header: two 2-valued fields are named inside brackets, so the header has 9 names for 11 fields.
NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
              "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


def write_nih_cxr14(root: Path, images: pd.DataFrame) -> None:
    """``Data_Entry_2017_v2020.csv`` (the real header), ``train_val_list.txt``, ``test_list.txt`` below ``root``
    (images are written by the caller to ``images_001/images/``). Recorded positives become ``Finding Labels``
    (uncertain and blank are absent: NIH's labels have no uncertain value); none -> ``No Finding``."""
    recorded = images[[f"rec_{k}" for k in NIH_FINDINGS]].to_numpy(dtype=float) == 1
    names = np.array(list(NIH_FINDINGS.values()))
    findings = ["|".join(names[row]) or "No Finding" for row in recorded]
    lines = [NIH_HEADER]
    for (_, r), labels in zip(images.iterrows(), findings, strict=True):
        sex = "M" if r["sex"] == "Male" else "F"
        lines.append(f"{r['image_name']},{labels},{r['k']},{r['patient_no']},{int(r['age'])},{sex},{r['view_position']},"
                     f"2500,2048,0.143,0.143")
    root.mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    for part, name in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        (root / name).write_text("".join(f"{n}\n" for n in images.loc[images["part"] == part, "image_name"]))
