"""Race harmonisation by named scheme: free-text race (and ethnicity) values to a study's groups.

Schemes (:data:`RACE_SCHEMES`):

* ``six-groups`` (Study 1, the embeddings paper, CheXclusion's groups): White, Black, Asian, Hispanic, Native,
  Other. Hispanic/Latino anywhere in the race text, or in the separate ethnicity field, comes first (as in
  CheXclusion: ethnicity takes precedence over race). "Native" pools American Indian/Alaska Native and Native
  Hawaiian/Other Pacific Islander, the only two indigenous categories the releases use (a documented choice, not
  the papers'). Its merged variant pools Native into Other.
* ``table5`` (Study 2, the reconstruction paper's Table 5): AI/AN, Asian, Black, NH/PI, Other, White, from the race
  text alone (ethnicity is not a group there: "White, Hispanic" is White, "Other, Hispanic" is Other). Its merged
  variant pools AI/AN and NH/PI into Other (the paper's Figures 18-19).

Rules, applied in this order to one value (case-insensitive):

1. Unknown, declined, refused, "unable to obtain", blank -> missing (never another group).
2. ``six-groups`` only: Hispanic/Latino in the race text or the ethnicity -> Hispanic.
3. The first matching prefix of the scheme's ``prefixes``.
4. Any other non-empty value -> Other (e.g. "MULTIPLE RACE/ETHNICITY", "PORTUGUESE"; under ``table5`` also
   "HISPANIC/LATINO - PUERTO RICAN").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..errors import BAD_OPTION, RadfairInputError
from .schema import RACES
from .schema import UNKNOWN_PHRASES as MISSING_MARKERS  # one list of unknown markers for every loader

HISPANIC_MARKERS = ("hispanic", "latino", "latina")
NON_HISPANIC_MARKERS = ("non-hispanic", "non hispanic", "not hispanic", "non-latino", "non latino")

#: Prefix of the lower-cased race text -> harmonised group (checked in order), ``six-groups``.
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

#: The same prefixes for ``table5``: the two indigenous categories kept apart, no Hispanic group.
TABLE5_PREFIXES: tuple[tuple[str, str], ...] = (
    ("white", "White"),
    ("caucasian", "White"),
    ("black", "Black"),
    ("african american", "Black"),
    ("asian", "Asian"),
    ("american indian", "AI/AN"),
    ("alaska native", "AI/AN"),
    ("native american", "AI/AN"),
    ("native hawaiian", "NH/PI"),
    ("pacific islander", "NH/PI"),
    ("other", "Other"),
)


@dataclass(frozen=True)
class RaceScheme:
    """A named race grouping: its groups (display order), the prefix rules, whether Hispanic ethnicity is a group
    (checked first) and its merged variant (group -> the group it joins; the ``race_merged`` attribute)."""

    name: str
    groups: tuple[str, ...]
    prefixes: tuple[tuple[str, str], ...]
    hispanic: bool
    merged: dict[str, str] = field(default_factory=dict)


RACE_SCHEMES: dict[str, RaceScheme] = {
    "six-groups": RaceScheme("six-groups", RACES, RACE_PREFIXES, hispanic=True, merged={"Native": "Other"}),
    "table5": RaceScheme("table5", ("AI/AN", "Asian", "Black", "NH/PI", "Other", "White"), TABLE5_PREFIXES, hispanic=False,
                         merged={"AI/AN": "Other", "NH/PI": "Other"}),
}
DEFAULT_SCHEME = "six-groups"


def race_scheme(name: str, option: str = "race_scheme") -> RaceScheme:
    """The scheme called ``name``; :class:`RadfairInputError` naming ``option`` for an unknown name."""
    if name not in RACE_SCHEMES:
        raise RadfairInputError(BAD_OPTION.format(option=option, value=name, expected=list(RACE_SCHEMES)))
    return RACE_SCHEMES[name]


def _is_hispanic(text: str) -> bool:
    return any(m in text for m in HISPANIC_MARKERS) and not any(m in text for m in NON_HISPANIC_MARKERS)


def harmonise_one(race: object, ethnicity: object = None, scheme: str = DEFAULT_SCHEME) -> str | None:
    """Map one race value (and optional ethnicity value) to a group of ``scheme``, or None when unknown."""
    rules = race_scheme(scheme)
    text = "" if race is None or (isinstance(race, float) and race != race) else str(race).strip().lower()
    eth = "" if ethnicity is None or (isinstance(ethnicity, float) and ethnicity != ethnicity) else str(ethnicity).lower()
    if rules.hispanic and eth and _is_hispanic(eth):
        return "Hispanic"
    if not text or any(m in text for m in MISSING_MARKERS):
        return None
    if rules.hispanic and _is_hispanic(text):
        return "Hispanic"
    for prefix, group in rules.prefixes:
        if text.startswith(prefix):
            return group
    return "Other"


def harmonise_race(race: pd.Series, ethnicity: pd.Series | None = None, scheme: str = DEFAULT_SCHEME) -> pd.Series:
    """Vector form of :func:`harmonise_one` (maps each distinct pair once)."""
    race_scheme(scheme)
    eth_values = [None] * len(race) if ethnicity is None else list(ethnicity)
    pairs = list(zip(race.tolist(), eth_values, strict=True))
    lookup: dict = {}
    groups = []
    for pair in pairs:
        key = tuple(None if (isinstance(v, float) and v != v) else v for v in pair)
        if key not in lookup:
            lookup[key] = harmonise_one(*key, scheme=scheme)
        groups.append(lookup[key])
    return pd.Series(groups, index=race.index, dtype=object)


def merged_race(race: pd.Series, scheme: str = DEFAULT_SCHEME) -> pd.Series:
    """The scheme's merged variant of harmonised groups (``table5``: AI/AN and NH/PI into Other; missing stays missing)."""
    merged = race.astype(object).replace(race_scheme(scheme).merged)
    return merged.where(race.notna(), None)
