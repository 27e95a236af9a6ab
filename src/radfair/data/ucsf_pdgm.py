"""UCSF-PDGM loader (Calabrese et al. 2022): 501 pre-operative glioma MRI exams of 495 patients.

Layout read::

    <release>/UCSF-PDGM-metadata_v5.csv     ID, Sex, Age at MRI, WHO CNS Grade, Final pathologic diagnosis (WHO 2021), ...
    <release>/UCSF-PDGM-v5/UCSF-PDGM-0004_nifti/UCSF-PDGM-0004_FLAIR.nii.gz
                                           /UCSF-PDGM-0004_tumor_segmentation.nii.gz
    <release>/UCSF-PDGM-v5/UCSF-PDGM-0433_FU007d_nifti/UCSF-PDGM-0433_FU007d_FLAIR.nii.gz   (a follow-up exam)

**Metadata version.** Every ``UCSF-PDGM-metadata_v<N>.csv`` in the release folder is a candidate
(TCIA has shipped v2 ... v5); the highest ``N`` is read, with a warning naming the versions ignored
when there are several. The file read is listed in the provenance and printed by ``radfair cohort``.

**IDs.** The metadata uses 3-digit IDs (``UCSF-PDGM-004``) while folders use 4 digits
(``UCSF-PDGM-0004``); both are normalised to the 4-digit form. Volumes are found anywhere below the
release folder. Since v3, six follow-up exams carry IDs like ``UCSF-PDGM-0433_FU007d`` (folder and
metadata): a follow-up belongs to its patient (``patient_id`` ``ucsf-pdgm:UCSF-PDGM-0433``), so it
can never land in another split than the baseline exam.

**Follow-up rule** (``followups``): ``"drop"`` (default) keeps one exam per patient, the baseline
(the ID without ``_FU``), or, for a patient listed only with follow-ups, the one with the fewest days;
the exams dropped are counted in one warning. ``"keep"`` keeps every exam as its own row
(``image_id`` = the exam ID) under the patient's ``patient_id``. Releases before v3 listed the
follow-up under a new patient number; radfair cannot tell those apart.

Labels (study 2, appendix): ``y_high_grade`` = WHO grade 4 vs 2-3; ``y_glioblastoma`` = final
diagnosis is glioblastoma vs not. One row per exam kept (the image is the FLAIR volume).

Errors: an ID that is not ``UCSF-PDGM-<number>[_FU<days>d]``, a WHO grade other than 2, 3 or 4, an
impossible age, or a kept exam without a FLAIR volume is a RadfairInputError naming the file.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import BAD_OPTION, BAD_VALUES, MISSING_FILE, RadfairInputError, RadfairWarning, preview
from ..readers import read_csv
from .discover import find_release
from .registry import Dataset, LoadRequest, register
from .schema import age_group, harmonise_sex, parse_age, require_columns

#: Metadata file names of every release version; the highest version number is read.
METADATA_PATTERN = "UCSF-PDGM-metadata_v*.csv"
DIAGNOSIS = "Final pathologic diagnosis (WHO 2021)"
COLUMNS = ("ID", "Sex", "Age at MRI", "WHO CNS Grade", DIAGNOSIS)
FOLLOWUP_POLICIES = ("drop", "keep")
_ID = re.compile(r"UCSF-PDGM-(\d+)(_FU(\d+)d)?")


def normalise_id(raw: str) -> str:
    """``UCSF-PDGM-004`` -> ``UCSF-PDGM-0004``; ``UCSF-PDGM-0433_FU007d`` keeps its follow-up suffix."""
    match = _ID.fullmatch(str(raw).strip())
    if not match:
        raise ValueError(raw)
    return f"UCSF-PDGM-{int(match.group(1)):04d}" + (match.group(2) or "")


def patient_of(exam_id: str) -> str:
    """The patient an exam belongs to: the normalised ID without its ``_FU<days>d`` suffix."""
    return exam_id.split("_FU", 1)[0]


def followup_days(exam_id: str) -> int:
    """0 for a baseline exam, else the days in ``_FU<days>d``."""
    match = _ID.fullmatch(exam_id)
    return int(match.group(3)) if match and match.group(3) else 0


def find_metadata(release: Path) -> Path:
    """The ``UCSF-PDGM-metadata_v<N>.csv`` with the highest N (warns when older versions sit beside it)."""
    versions = {}
    for path in release.glob(METADATA_PATTERN):
        match = re.fullmatch(r"UCSF-PDGM-metadata_v(\d+)\.csv", path.name)
        if match and path.is_file():
            versions[int(match.group(1))] = path
    if not versions:
        raise RadfairInputError(MISSING_FILE.format(path=release / "UCSF-PDGM-metadata_v5.csv",
                                                    what="the UCSF-PDGM metadata CSV, UCSF-PDGM-metadata_v<N>.csv"))
    newest = versions[max(versions)]
    if len(versions) > 1:
        older = ", ".join(versions[v].name for v in sorted(versions)[:-1])
        warnings.warn(f"{release}: several UCSF-PDGM metadata versions; read the newest, {newest.name} (ignored {older})",
                      RadfairWarning, stacklevel=3)
    return newest


def index_volumes(release: Path) -> dict[tuple[str, str], Path]:
    """(exam, 'FLAIR'|'tumor_segmentation') -> file, from one walk of the release folder."""
    found = {}
    pattern = re.compile(r"(UCSF-PDGM-\d+(?:_FU\d+d)?)_(FLAIR|tumor_segmentation)\.nii(\.gz)?$")
    for path in release.rglob("UCSF-PDGM-*.nii*"):
        match = pattern.search(path.name)
        if match:
            found[(normalise_id(match.group(1)), match.group(2))] = path
    return found


def load_ucsf_pdgm(root: str | Path, followups: str = "drop") -> tuple[pd.DataFrame, dict]:
    """The UCSF-PDGM cohort table (one row per exam kept) and its provenance (release, metadata file read,
    volumes found, follow-ups dropped). See the module docstring for the metadata and follow-up rules."""
    if followups not in FOLLOWUP_POLICIES:
        raise RadfairInputError(BAD_OPTION.format(option="followups", value=followups, expected=list(FOLLOWUP_POLICIES)))
    release = find_release(root, "ucsf-pdgm")
    meta_path = find_metadata(release)
    meta = read_csv(meta_path, "the UCSF-PDGM metadata CSV")
    require_columns(meta, COLUMNS, meta_path)
    try:
        ids = meta["ID"].map(normalise_id)
    except ValueError as exc:
        raise RadfairInputError(
            BAD_VALUES.format(path=meta_path, column="ID", values=preview([exc.args[0]]),
                              expected="expected UCSF-PDGM-<number>, or UCSF-PDGM-<number>_FU<days>d for a follow-up exam")
        ) from None
    patients = ids.map(patient_of)
    dropped = 0
    if followups == "drop":
        order = pd.DataFrame({"patient": patients, "days": ids.map(followup_days)}).sort_values(["patient", "days"], kind="stable")
        first = order.groupby("patient", sort=False).head(1).index
        is_followup = ids.str.contains("_FU", regex=False)
        keep = ids.index.isin(first) | ~is_followup  # baseline rows are never dropped (duplicates stay an error)
        dropped = int((~keep).sum())
        if dropped:
            warnings.warn(f"{meta_path}: {dropped} follow-up exam(s) {preview(ids[~keep])} dropped; one exam per patient "
                          "is kept (the baseline, else the earliest follow-up)", RadfairWarning, stacklevel=2)
        meta, ids, patients = meta[keep].reset_index(drop=True), ids[keep].reset_index(drop=True), patients[keep].reset_index(drop=True)
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
            "patient_id": "ucsf-pdgm:" + patients,
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
    return df, {"release": str(release), "files": [str(meta_path)], "volumes": len(volumes),
                "followups": followups, "followups_dropped": dropped}


def _load(request: LoadRequest) -> tuple[pd.DataFrame, dict]:
    return load_ucsf_pdgm(request.root)


DATASET = register(Dataset(
    name="ucsf-pdgm",
    description="UCSF-PDGM glioma MRI (FLAIR volumes, tumour masks, WHO grade, diagnosis)",
    load=_load,
    releases={"ucsf-pdgm": (METADATA_PATTERN,)},
    labels={"high_grade": "WHO CNS Grade", "glioblastoma": DIAGNOSIS},
    modality="mri",
    synthetic="ucsf-pdgm",
))
