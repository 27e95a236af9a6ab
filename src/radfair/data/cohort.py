"""Build a canonical cohort from any registered dataset (``registry.py``; the CheXpert+MIMIC union "all") and save it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import BAD_OPTION, EMPTY_AFTER_FILTER, RadfairInputError
from ..io import output_file, write_table
from . import registry
from .race import race_scheme as race_scheme_named
from .registry import Dataset, LoadRequest, register
from .schema import LABELS, UNCERTAIN_POLICIES, patient_sex, summarise, validate_cohort

VIEW_FILTERS = ("frontal", "all")

#: The CheXpert + MIMIC union of Study 1 ("ALL"): loaded part by part, one table.
ALL = register(Dataset(
    name="all",
    description="CheXpert + MIMIC-CXR-JPG/MIMIC-IV union (Study 1's ALL), both below --root",
    load=None,
    parts=("chexpert", "mimic"),
    labels=dict(LABELS),
    attributes=("sex", "age_group", "race"),
))


def sources() -> list[str]:
    """Every ``--source`` name ``build_cohort`` accepts: the registered datasets."""
    return registry.names()


def build_cohort(
    source: str,
    root: str | Path,
    root_mimic_iv: str | Path | None = None,
    uncertain: str = "zeros",
    views: str = "frontal",
    race_scheme: str = "six-groups",
) -> tuple[pd.DataFrame, dict]:
    """Load the registered dataset ``source`` below ``root`` (a file for the manifest), apply the view filter
    (radiographs only), validate; return (table, metadata). The dataset's parts (``all``) are concatenated.
    ``race_scheme`` (:data:`radfair.data.race.RACE_SCHEMES`): how race is grouped (Study 1's six groups by default;
    ``table5``: the reconstruction paper's Table 5), recorded in the metadata."""
    dataset = registry.get(source)
    scheme = race_scheme_named(race_scheme, "--race-scheme")
    if uncertain not in UNCERTAIN_POLICIES:
        raise RadfairInputError(BAD_OPTION.format(option="--uncertain", value=uncertain, expected=list(UNCERTAIN_POLICIES)))
    if views not in VIEW_FILTERS:
        raise RadfairInputError(BAD_OPTION.format(option="--views", value=views, expected=list(VIEW_FILTERS)))
    # absolute, so the paths in the cohort stay valid from any working directory
    request = LoadRequest(Path(root).absolute(), Path(root_mimic_iv).absolute() if root_mimic_iv else None, uncertain, scheme.name)
    provenance = {}
    frames = []
    for part in [registry.get(p) for p in dataset.parts] or [dataset]:
        df, provenance[part.name] = part.load(request)
        frames.append(df)
    cohort = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    cohort = patient_sex(cohort, path=root)  # before the view filter: a conflict on any image counts
    if views == "frontal" and dataset.modality == "xray":
        cohort = cohort[cohort["view"] == "frontal"].reset_index(drop=True)
        if cohort.empty:
            raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=root, step="keeping frontal views"))
    validate_cohort(cohort, path=root, races=scheme.groups)
    metadata = {
        "radfair_version": __version__,
        "source": source,
        "uncertain_policy": uncertain,
        "blank_policy": "blank (not mentioned) -> 0",
        "views": views,
        "race_scheme": scheme.name,
        # the declared rule, if the release carried what it needs (NIH without its split lists: patient)
        "split_rule": dataset.split_rule if dataset.split_rule != "official" or "official_split" in cohort.columns else "patient",
        "provenance": provenance,
        "summary": summarise(cohort),
    }
    return cohort, metadata


def save_cohort(cohort: pd.DataFrame, metadata: dict, out: str | Path) -> None:
    output_file(out)
    write_table(cohort, out, metadata)
