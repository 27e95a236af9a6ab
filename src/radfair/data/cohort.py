"""Build a canonical cohort from a release (or the CheXpert+MIMIC union "all") and save it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import BAD_OPTION, EMPTY_AFTER_FILTER, RadfairInputError
from ..io import output_file, write_table
from .chexpert import load_chexpert
from .mimic import load_mimic
from .schema import UNCERTAIN_POLICIES, patient_sex, summarise, validate_cohort
from .ucsf_pdgm import load_ucsf_pdgm

SOURCES = ("chexpert", "mimic", "all", "ucsf-pdgm")
VIEW_FILTERS = ("frontal", "all")


def build_cohort(
    source: str,
    root: str | Path,
    root_mimic_iv: str | Path | None = None,
    uncertain: str = "zeros",
    views: str = "frontal",
) -> tuple[pd.DataFrame, dict]:
    """Load ``source`` below ``root``, apply the view filter, validate; return (table, metadata)."""
    if source not in SOURCES:
        raise RadfairInputError(BAD_OPTION.format(option="--source", value=source, expected=list(SOURCES)))
    if uncertain not in UNCERTAIN_POLICIES:
        raise RadfairInputError(BAD_OPTION.format(option="--uncertain", value=uncertain, expected=list(UNCERTAIN_POLICIES)))
    if views not in VIEW_FILTERS:
        raise RadfairInputError(BAD_OPTION.format(option="--views", value=views, expected=list(VIEW_FILTERS)))
    provenance = {}
    frames = []
    if source in ("chexpert", "all"):
        df, provenance["chexpert"] = load_chexpert(root, uncertain)
        frames.append(df)
    if source in ("mimic", "all"):
        df, provenance["mimic"] = load_mimic(root, root_mimic_iv, uncertain)
        frames.append(df)
    if source == "ucsf-pdgm":
        df, provenance["ucsf-pdgm"] = load_ucsf_pdgm(root)
        frames.append(df)
    cohort = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    cohort = patient_sex(cohort, path=root)  # before the view filter: a conflict on any image counts
    if views == "frontal" and source != "ucsf-pdgm":
        cohort = cohort[cohort["view"] == "frontal"].reset_index(drop=True)
        if cohort.empty:
            raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=root, step="keeping frontal views"))
    validate_cohort(cohort, path=root)
    metadata = {
        "radfair_version": __version__,
        "source": source,
        "uncertain_policy": uncertain,
        "blank_policy": "blank (not mentioned) -> 0",
        "views": views,
        "provenance": provenance,
        "summary": summarise(cohort),
    }
    return cohort, metadata


def save_cohort(cohort: pd.DataFrame, metadata: dict, out: str | Path) -> None:
    output_file(out)
    write_table(cohort, out, metadata)
