"""The generic manifest: any dataset as one table of image paths, patients, attributes and labels.

``radfair cohort --source manifest --root FILE`` reads a CSV (optionally ``.gz``) or parquet file with

* ``path`` (required): the image (PNG/JPEG radiograph, or a NIfTI volume), relative to the manifest's folder or
  absolute; every file must exist (a missing one is an input error naming the row);
* ``patient_id`` (required): rows of one patient never land in two splits;
* optional ``image_id`` (default: ``path``), ``study_id`` (default: ``image_id``), ``dataset`` (default: the
  manifest's file name without suffix), ``sex``, ``age`` (years), ``race``, ``view`` (frontal, lateral, other;
  default frontal), ``mask_path`` (a volume's label map, same path rule);
* ``y_<label>`` columns: 1, 0 or blank (blank -> missing, never negative);
* any other column is kept as it is (an extra attribute to audit by, e.g. ``site`` or ``scanner``).

Every rule of the release loaders applies: sex through ``harmonise_sex`` (M/F/Male/Female; unknown markers ->
missing; anything else -> missing with one warning), race through ``harmonise_race``, age through
``parse_age`` (text or an impossible age is an error), duplicate ``image_id`` and blank ``patient_id`` are
errors (``validate_cohort``). Identifiers are namespaced by ``dataset`` like every loader's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import BAD_VALUES, MISSING_FILE, MISSING_FOLDER, RadfairInputError, preview
from ..readers import read_table
from .race import harmonise_race
from .registry import Dataset, LoadRequest, register
from .schema import VIEWS, age_group, harmonise_sex, parse_age, require_columns, unknown_marker_mask

REQUIRED = ("path", "patient_id")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


def _resolve(values: pd.Series, base: Path, path: Path, column: str) -> list[str | None]:
    """Paths relative to ``base`` (or absolute) that must exist; blank stays None."""
    out = []
    for i, value in enumerate(values):
        if value is None or pd.isna(value) or not str(value).strip():
            out.append(None)
            continue
        target = Path(str(value).strip())
        target = target if target.is_absolute() else base / target
        if not target.is_file():
            raise RadfairInputError(MISSING_FILE.format(path=target, what=f"{path}: column {column!r} line {i + 2}; "
                                                        "expected a file, relative to the manifest's folder or absolute"))
        out.append(str(target))
    return out


def _labels(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = {}
    for column in [c for c in raw.columns if c.startswith("y_")]:
        value = pd.to_numeric(raw[column], errors="coerce")
        bad = raw[column][(value.isna() & ~unknown_marker_mask(raw[column])) | (value.notna() & ~value.isin((0, 1)))]
        if len(bad):
            raise RadfairInputError(BAD_VALUES.format(path=path, column=column, values=preview(bad), expected="expected 1, 0 or blank"))
        out[column] = value.astype(float)
    return pd.DataFrame(out, index=raw.index)


def load_manifest(root: str | Path, race_scheme: str = "six-groups") -> tuple[pd.DataFrame, dict]:
    """The cohort table of a manifest file (one row per manifest row) and its provenance; race harmonised under
    ``race_scheme`` (:data:`radfair.data.race.RACE_SCHEMES`). See the module docstring."""
    path = Path(root)
    if path.is_dir():
        raise RadfairInputError(MISSING_FILE.format(path=path, what="expected a manifest file (.csv, .csv.gz or .parquet), not a folder"))
    if not path.parent.is_dir():
        raise RadfairInputError(MISSING_FOLDER.format(path=path.parent, what="the manifest's folder"))
    raw = read_table(path, "a manifest table (path, patient_id, optional attributes, y_<label>)")
    require_columns(raw, REQUIRED, path)
    name = raw["dataset"].astype(str) if "dataset" in raw.columns else path.name.split(".")[0]
    files = _resolve(raw["path"], path.parent, path, "path")
    image = raw["image_id"].astype(str) if "image_id" in raw.columns else raw["path"].astype(str)
    study = raw["study_id"].astype(str) if "study_id" in raw.columns else image
    view = raw["view"] if "view" in raw.columns else pd.Series("frontal", index=raw.index)
    view = view.astype("string").str.strip().str.lower().astype(object).where(~unknown_marker_mask(view), "unknown")
    bad = view[~view.isin(VIEWS)]
    if len(bad):
        raise RadfairInputError(BAD_VALUES.format(path=path, column="view", values=preview(bad), expected=f"expected one of {list(VIEWS)}"))
    known = {"path", "patient_id", "image_id", "study_id", "dataset", "sex", "age", "race", "view", "mask_path", "insurance"}
    df = pd.DataFrame(
        {
            "image_id": name + ":" + image,
            "patient_id": (name + ":" + raw["patient_id"].astype(str)).where(~unknown_marker_mask(raw["patient_id"]), None),
            "study_id": name + ":" + study,
            "dataset": name,
            "path": files,
            "view": view,
            "sex": harmonise_sex(raw["sex"], path, "sex") if "sex" in raw.columns else None,
            "age": parse_age(raw["age"], path, "age") if "age" in raw.columns else float("nan"),
            "race": harmonise_race(raw["race"], scheme=race_scheme) if "race" in raw.columns else None,
            "insurance": raw["insurance"].astype(object).where(~unknown_marker_mask(raw["insurance"]), None) if "insurance" in raw.columns else None,
        },
        index=raw.index,
    )
    if "mask_path" in raw.columns:
        df["mask_path"] = _resolve(raw["mask_path"], path.parent, path, "mask_path")
    df["age_group"] = age_group(df["age"])
    for column in [c for c in raw.columns if c not in known and not c.startswith("y_")]:
        df[column] = raw[column].astype(object).where(~unknown_marker_mask(raw[column]), None)
    df = pd.concat([df, _labels(raw, path)], axis=1).reset_index(drop=True)
    return df, {"release": str(path), "files": [str(path)]}


def _load(request: LoadRequest) -> tuple[pd.DataFrame, dict]:
    return load_manifest(request.root, request.race_scheme)


DATASET = register(Dataset(
    name="manifest",
    description="any dataset as one CSV/parquet table: path, patient_id, [image_id, study_id, sex, age, race, view], y_<label>",
    load=_load,
    labels=None,
    attributes=("sex", "age_group", "race"),
    root_is_file=True,
))
