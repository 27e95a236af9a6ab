"""A toy dataset declared in one module, as a plug-in would: a release folder holding ``toy-labels.csv``
(file, subject, sex, age, finding) and PNGs. Importing the module registers it."""

from __future__ import annotations

import pandas as pd

from radfair.data.discover import find_release
from radfair.data.registry import Dataset, LoadRequest, register
from radfair.data.schema import age_group, harmonise_sex, parse_age, require_columns
from radfair.readers import read_csv


def load_toy(request: LoadRequest) -> tuple[pd.DataFrame, dict]:
    release = find_release(request.root, "toy-cxr")
    path = release / "toy-labels.csv"
    raw = read_csv(path, "the toy label CSV")
    require_columns(raw, ("file", "subject", "sex", "age", "finding"), path)
    df = pd.DataFrame({
        "image_id": "toy-cxr:" + raw["file"], "patient_id": "toy-cxr:" + raw["subject"].astype(str),
        "study_id": "toy-cxr:" + raw["file"], "dataset": "toy-cxr", "path": [str(release / f) for f in raw["file"]],
        "view": "frontal", "sex": harmonise_sex(raw["sex"], path, "sex"), "age": parse_age(raw["age"], path, "age"),
        "race": None, "insurance": None, "y_toy_finding": raw["finding"].astype(float),
    })
    df["age_group"] = age_group(df["age"])
    return df, {"release": str(release), "files": [str(path)]}


DATASET = register(Dataset(name="toy-cxr", description="a toy release for the registry test", load=load_toy,
                           releases={"toy-cxr": ("toy-labels.csv",)}, labels={"toy_finding": "finding"}), replace=True)


def write_toy_release(folder, patients: int = 12) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(patients):
        for k in range(2):
            name = f"s{i}_{k}.png"
            Image.fromarray(np.full((8, 8), 10 * i, dtype=np.uint8)).save(folder / name)
            rows.append({"file": name, "subject": i, "sex": "MF"[i % 2], "age": 30 + i, "finding": (i + k) % 2})
    pd.DataFrame(rows).to_csv(folder / "toy-labels.csv", index=False)
