"""Race harmonisation to White, Black, Asian, Hispanic, Native, Other (the papers' six groups).

Rules, applied in this order to one free-text value (case-insensitive):

1. Unknown, declined, refused, "unable to obtain", blank -> missing (never another group).
2. Hispanic/Latino anywhere in the race text, or the separate ethnicity field says Hispanic/Latino
   -> Hispanic (as in CheXclusion: ethnicity takes precedence over race).
3. The first matching prefix in ``RACE_PREFIXES`` below.
4. Any other non-empty value -> Other (e.g. "MULTIPLE RACE/ETHNICITY", "PORTUGUESE").

"Native" pools American Indian/Alaska Native and Native Hawaiian/Other Pacific Islander, the only
two indigenous categories the releases use; this is a documented choice, not the papers' (they
do not say).
"""

from __future__ import annotations

import pandas as pd

from .schema import UNKNOWN_PHRASES as MISSING_MARKERS  # one list of unknown markers for every loader

HISPANIC_MARKERS = ("hispanic", "latino", "latina")
NON_HISPANIC_MARKERS = ("non-hispanic", "non hispanic", "not hispanic", "non-latino", "non latino")

#: Prefix of the lower-cased race text -> harmonised group (checked in order).
RACE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("white", "White"),
    ("caucasian", "White"),
    ("black", "Black"),
    ("african american", "Black"),
    ("asian", "Asian"),
    ("american indian", "Native"),
    ("alaska native", "Native"),
    ("native american", "Native"),
    ("native hawaiian", "Native"),
    ("pacific islander", "Native"),
    ("south american", "Hispanic"),
    ("other", "Other"),
)


def _is_hispanic(text: str) -> bool:
    return any(m in text for m in HISPANIC_MARKERS) and not any(m in text for m in NON_HISPANIC_MARKERS)


def harmonise_one(race: object, ethnicity: object = None) -> str | None:
    """Map one race value (and optional ethnicity value) to a group, or None when unknown."""
    text = "" if race is None or (isinstance(race, float) and race != race) else str(race).strip().lower()
    eth = "" if ethnicity is None or (isinstance(ethnicity, float) and ethnicity != ethnicity) else str(ethnicity).lower()
    if eth and _is_hispanic(eth):
        return "Hispanic"
    if not text or any(m in text for m in MISSING_MARKERS):
        return None
    if _is_hispanic(text):
        return "Hispanic"
    for prefix, group in RACE_PREFIXES:
        if text.startswith(prefix):
            return group
    return "Other"


def harmonise_race(race: pd.Series, ethnicity: pd.Series | None = None) -> pd.Series:
    """Vector form of :func:`harmonise_one` (maps each distinct pair once)."""
    eth_values = [None] * len(race) if ethnicity is None else list(ethnicity)
    pairs = list(zip(race.tolist(), eth_values, strict=True))
    lookup: dict = {}
    groups = []
    for pair in pairs:
        key = tuple(None if (isinstance(v, float) and v != v) else v for v in pair)
        if key not in lookup:
            lookup[key] = harmonise_one(*key)
        groups.append(lookup[key])
    return pd.Series(groups, index=race.index, dtype=object)
