"""Encoding sensitive attributes (including intersections such as ``sex*race``) as group codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.schema import AGE_GROUPS, INSURANCES, RACES, SEXES

CANONICAL_ORDER = {"sex": SEXES, "age_group": AGE_GROUPS, "race": RACES, "insurance": INSURANCES}


def attribute_values(df: pd.DataFrame, attribute: str) -> pd.Series:
    """The attribute column; ``a*b`` joins the parts with ``*`` (missing if any part is missing)."""
    parts = attribute.split("*")
    if len(parts) == 1:
        return df[attribute].astype(object).where(df[attribute].notna(), None)
    cols = [df[p].astype(object) for p in parts]
    joined = cols[0].astype(str)
    for c in cols[1:]:
        joined = joined + "*" + c.astype(str)
    missing = np.logical_or.reduce([c.isna().to_numpy() for c in cols])
    return joined.where(~missing, None)


def encode_groups(values: pd.Series, attribute: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 = missing) and the group names, in canonical order where one exists."""
    present = pd.unique(values.dropna())
    order = CANONICAL_ORDER.get(attribute)
    if order is not None:
        names = [g for g in order if g in set(present)] + sorted(set(present) - set(order), key=str)
    else:
        names = sorted(present, key=str)
    lookup = {g: i for i, g in enumerate(names)}
    codes = values.map(lookup).fillna(-1).to_numpy(dtype=np.int64)
    return codes, [str(n) for n in names]
