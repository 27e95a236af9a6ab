"""UCSF-PDGM loader (Calabrese et al. 2022): 501 pre-operative glioma MRI volumes.

Layout read::

    <release>/UCSF-PDGM-metadata_v2.csv     ID, Sex, Age at MRI, WHO CNS Grade, Final pathologic diagnosis (WHO 2021), ...
    <release>/UCSF-PDGM-v3/UCSF-PDGM-0004_nifti/UCSF-PDGM-0004_FLAIR.nii.gz
                                           /UCSF-PDGM-0004_tumor_segmentation.nii.gz

The metadata uses 3-digit IDs (``UCSF-PDGM-004``) while folders use 4 digits (``UCSF-PDGM-0004``);
both are normalised to the 4-digit form. Volumes are found anywhere below the release folder.

Labels (study 2, appendix): ``y_high_grade`` = WHO grade 4 vs 2-3; ``y_glioblastoma`` = final
diagnosis is glioblastoma vs not. One row per patient (the image is the FLAIR volume).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import BAD_VALUES, MISSING_FILE, RadfairInputError, preview
from ..readers import read_csv
from .discover import find_release
from .schema import age_group, harmonise_sex, parse_age, require_columns

METADATA = "UCSF-PDGM-metadata_v2.csv"
DIAGNOSIS = "Final pathologic diagnosis (WHO 2021)"
COLUMNS = ("ID", "Sex", "Age at MRI", "WHO CNS Grade", DIAGNOSIS)


def normalise_id(raw: str) -> str:
    match = re.fullmatch(r"UCSF-PDGM-(\d+)", str(raw).strip())
    if not match:
        raise ValueError(raw)
    return f"UCSF-PDGM-{int(match.group(1)):04d}"


def index_volumes(release: Path) -> dict[tuple[str, str], Path]:
    """(patient, 'FLAIR'|'tumor_segmentation') -> file, from one walk of the release folder."""
    found = {}
    pattern = re.compile(r"(UCSF-PDGM-\d+)_(FLAIR|tumor_segmentation)\.nii(\.gz)?$")
    for path in release.rglob("UCSF-PDGM-*.nii*"):
        match = pattern.search(path.name)
        if match:
            found[(normalise_id(match.group(1)), match.group(2))] = path
    return found


def load_ucsf_pdgm(root: str | Path) -> tuple[pd.DataFrame, dict]:
    release = find_release(root, "ucsf-pdgm")
    meta_path = release / METADATA
    meta = read_csv(meta_path, "the UCSF-PDGM metadata CSV")
    require_columns(meta, COLUMNS, meta_path)
    try:
        ids = meta["ID"].map(normalise_id)
    except ValueError as exc:
        raise RadfairInputError(
            BAD_VALUES.format(path=meta_path, column="ID", values=preview([exc.args[0]]), expected="expected UCSF-PDGM-<number>")
        ) from None
    grade = pd.to_numeric(meta["WHO CNS Grade"], errors="coerce")
    bad = meta["WHO CNS Grade"][~grade.isin((2, 3, 4))]
    if len(bad):
        raise RadfairInputError(
            BAD_VALUES.format(path=meta_path, column="WHO CNS Grade", values=preview(bad), expected="expected 2, 3 or 4")
        )
    volumes = index_volumes(release)
    missing = [i for i in ids if (i, "FLAIR") not in volumes]
    if missing:
        raise RadfairInputError(
            MISSING_FILE.format(path=release / f"{missing[0]}_nifti" / f"{missing[0]}_FLAIR.nii.gz", what=f"FLAIR volume; {len(missing)} missing")
        )
    diagnosis = meta[DIAGNOSIS].astype(str)
    df = pd.DataFrame(
        {
            "image_id": "ucsf-pdgm:" + ids,
            "patient_id": "ucsf-pdgm:" + ids,
            "study_id": "ucsf-pdgm:" + ids,
            "dataset": "ucsf-pdgm",
            "path": [str(volumes[(i, "FLAIR")]) for i in ids],
            "mask_path": [str(volumes[(i, "tumor_segmentation")]) if (i, "tumor_segmentation") in volumes else None for i in ids],
            "view": "other",
            "sex": harmonise_sex(meta["Sex"], meta_path, "Sex"),
            "age": parse_age(meta["Age at MRI"], meta_path, "Age at MRI"),
            "race": None,
            "insurance": None,
            "who_grade": grade.astype(int),
            "tumor_type": diagnosis,
            "y_high_grade": (grade == 4).astype(float),
            "y_glioblastoma": diagnosis.str.lower().str.contains("glioblastoma").astype(float),
        }
    )
    df["age_group"] = age_group(df["age"])
    df.loc[df["age"].isna(), ["age_group"]] = None
    return df, {"release": str(release), "files": [str(meta_path)], "volumes": len(volumes)}
