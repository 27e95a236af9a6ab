"""NIH ChestX-ray14 loader (Wang et al. 2017; 112,120 frontal radiographs of 30,805 patients, 14 findings).

Layout read (the release as NIH ships it, https://nihcc.app.box.com/v/ChestXray-NIHCC)::

    <release>/Data_Entry_2017_v2020.csv     Image Index, Finding Labels, Follow-up #, Patient ID, Patient Age,
                                            Patient Gender, View Position, OriginalImage[Width, Height], ...
    <release>/train_val_list.txt, test_list.txt   the official patient-level split (image names, one a line)
    <release>/images_001/images/00000001_000.png ... images_012/images/...
    <release>/BBox_List_2017.csv            (ignored)

**Data_Entry file.** ``Data_Entry_2017_v2020.csv`` (the 2020 revision) is preferred over the original
``Data_Entry_2017.csv``; either may be gzip-compressed (``.csv.gz``). The header writes two 2-valued fields
as ``OriginalImage[Width,Height]`` and ``OriginalImagePixelSpacing[x,y]``, so it names 9 columns (11 with a
trailing comma in the 2017 file) while rows hold 11 or 12 fields: only the seven named columns before them are
read, by position. Older copies of the 2017 file carry impossible ages (148 to 414 years): the loaders' age
rule makes that an input error (the v2020 file corrects them).

**Images** are found anywhere below the release folder by file name (``images_0NN/images/`` as released, or
one flat folder). A row whose image is absent (only some of the twelve archives downloaded) is dropped with
one warning giving the count; no image at all is an error.

**Labels.** ``Finding Labels`` is ``|``-separated; names that coincide with CheXpert's map to the canonical
labels (``Effusion`` -> ``pleural_effusion``, Atelectasis, Cardiomegaly, Consolidation, Edema, Pneumonia,
Pneumothorax, ``No Finding``), the others keep their own (``infiltration``, ``mass``, ``nodule``,
``emphysema``, ``fibrosis``, ``pleural_thickening``, ``hernia``). Every ``y_`` cell is 1.0 or 0.0 (the labels
are text-mined, with no uncertain value). A name outside the 15 is an input error.

**IDs.** ``patient_id`` = ``nih-cxr14:<Patient ID, 8 digits>``; each image is its own study
(``Follow-up #`` numbers the patient's visits). ``official_split`` is ``train`` (train_val_list.txt),
``test`` (test_list.txt) or missing (in neither, or the lists absent); ``radfair split --rule official`` uses it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from ..errors import BAD_VALUES, MISSING_FILE, RadfairInputError, RadfairWarning, preview
from ..readers import read_csv
from .discover import find_file, find_release
from .registry import Dataset, LoadRequest, register
from .schema import age_group, harmonise_sex, parse_age, require_columns

DATA_ENTRY_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017_v2020.csv.gz", "Data_Entry_2017.csv", "Data_Entry_2017.csv.gz")
#: The named columns read (by position, before the split ``OriginalImage[...]`` fields).
COLUMNS = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender", "View Position")
SPLIT_LISTS = {"train": "train_val_list.txt", "test": "test_list.txt"}
#: Canonical label -> name in ``Finding Labels`` (CheXpert's names where they coincide).
LABELS: dict[str, str] = {
    "atelectasis": "Atelectasis",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
    "edema": "Edema",
    "pleural_effusion": "Effusion",
    "pneumonia": "Pneumonia",
    "pneumothorax": "Pneumothorax",
    "infiltration": "Infiltration",
    "mass": "Mass",
    "nodule": "Nodule",
    "emphysema": "Emphysema",
    "fibrosis": "Fibrosis",
    "pleural_thickening": "Pleural_Thickening",
    "hernia": "Hernia",
    "no_finding": "No Finding",
}
VIEWS = {"PA": "frontal", "AP": "frontal"}


def read_data_entry(path: Path) -> pd.DataFrame:
    """The seven named columns of a Data_Entry file, as text (see the module docstring for the header)."""
    header = list(read_csv(path, "the NIH ChestX-ray14 Data_Entry CSV", nrows=1, index_col=False).columns)
    require_columns(pd.DataFrame(columns=header), COLUMNS, path)
    positions = [header.index(c) for c in COLUMNS]
    table = read_csv(path, "the NIH ChestX-ray14 Data_Entry CSV", header=None, skiprows=1, usecols=positions, dtype=str,
                     keep_default_na=False)
    return table.set_axis(list(COLUMNS), axis=1)


def finding_labels(values: pd.Series, path) -> pd.DataFrame:
    """``Finding Labels`` (``A|B``) -> one 1.0/0.0 column per canonical label (``y_<name>``)."""
    names = values.astype(str).str.strip().str.split("|")
    known = set(LABELS.values())
    bad = names[names.map(lambda parts: any(p.strip() not in known for p in parts))]
    if len(bad):
        raise RadfairInputError(BAD_VALUES.format(path=path, column="Finding Labels", values=preview(values[bad.index]),
                                                  expected=f"expected '|'-separated names from {sorted(known)}"))
    sets = names.map(lambda parts: {p.strip() for p in parts})
    return pd.DataFrame({f"y_{k}": sets.map(lambda s, v=v: float(v in s)) for k, v in LABELS.items()}, index=values.index)


def official_split(release: Path, images: pd.Series) -> pd.Series | None:
    """``train``/``test`` from the official lists (None when neither list is in the release)."""
    lists = {part: release / name for part, name in SPLIT_LISTS.items() if (release / name).is_file()}
    if not lists:
        return None
    part_of = {}
    for part, path in lists.items():
        part_of.update({line.strip(): part for line in path.read_text().splitlines() if line.strip()})
    return images.map(part_of).astype(object).where(images.isin(part_of), None)


def load_nih_cxr14(root: str | Path) -> tuple[pd.DataFrame, dict]:
    """The NIH ChestX-ray14 cohort table (one row per image found) and its provenance (release, Data_Entry file,
    images found and dropped). Shapes, labels and rules: see the module docstring."""
    release = find_release(root, "nih-cxr14")
    entry_path = find_file((release,), DATA_ENTRY_NAMES, "the NIH ChestX-ray14 Data_Entry CSV")
    raw = read_data_entry(entry_path)
    try:
        age = parse_age(raw["Patient Age"], entry_path, "Patient Age")
    except RadfairInputError as exc:
        raise RadfairInputError(f"{exc} (Data_Entry_2017_v2020.csv corrects the impossible ages of the 2017 file)") from None
    views = raw["View Position"].str.strip().str.upper()
    bad = raw["View Position"][~views.isin(VIEWS)]
    if len(bad):
        raise RadfairInputError(BAD_VALUES.format(path=entry_path, column="View Position", values=preview(bad), expected="expected PA or AP"))
    patient = pd.to_numeric(raw["Patient ID"], errors="coerce")
    bad = raw["Patient ID"][patient.isna() | (patient % 1 != 0)]
    if len(bad):
        raise RadfairInputError(BAD_VALUES.format(path=entry_path, column="Patient ID", values=preview(bad), expected="expected whole numbers"))
    labels = finding_labels(raw["Finding Labels"], entry_path)
    files = {p.name: p for p in release.rglob("*.png")}
    name = raw["Image Index"].str.strip()
    found = name.isin(files)
    if not found.any():
        raise RadfairInputError(MISSING_FILE.format(path=release / "images_001" / "images" / name.iloc[0],
                                                    what=f"NIH ChestX-ray14 images; none of the {len(raw)} listed was found below {release}"))
    if not found.all():
        warnings.warn(f"{entry_path}: {int((~found).sum())} of {len(raw)} image(s) {preview(name[~found])} not found below {release} "
                      "(archives not downloaded?); their rows are dropped", RadfairWarning, stacklevel=2)
    pid = "nih-cxr14:" + patient.astype("Int64").astype(str).str.zfill(8)
    df = pd.DataFrame(
        {
            "image_id": "nih-cxr14:" + name,
            "patient_id": pid,
            "study_id": "nih-cxr14:" + name.str.removesuffix(".png"),
            "dataset": "nih-cxr14",
            "path": [str(files[n]) if n in files else None for n in name],
            "view": views.map(VIEWS),
            "view_position": views,
            "sex": harmonise_sex(raw["Patient Gender"], entry_path, "Patient Gender"),
            "age": age,
            "race": None,
            "insurance": None,
            "follow_up": pd.to_numeric(raw["Follow-up #"], errors="coerce"),
        }
    )
    df["age_group"] = age_group(df["age"])
    split = official_split(release, name)
    if split is not None:
        df["official_split"] = split
    df = pd.concat([df, labels], axis=1)[found.to_numpy()].reset_index(drop=True)
    provenance = {"release": str(release), "files": [str(entry_path)] + [str(release / n) for n in SPLIT_LISTS.values() if (release / n).is_file()],
                  "images_found": int(found.sum()), "rows_dropped_no_image": int((~found).sum())}
    return df, provenance


def _load(request: LoadRequest) -> tuple[pd.DataFrame, dict]:
    return load_nih_cxr14(request.root)


DATASET = register(Dataset(
    name="nih-cxr14",
    description="NIH ChestX-ray14: Data_Entry_2017(_v2020).csv, images_0NN/images/*.png, official train_val/test lists",
    load=_load,
    releases={"nih-cxr14": DATA_ENTRY_NAMES},
    labels=LABELS,
    attributes=("sex", "age_group"),
    split_rule="official",
    synthetic="nih-cxr14",
))
