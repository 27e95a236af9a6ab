"""Tables of a report page: data frames and written Markdown pipe tables, as cells with sort keys.

Every cell keeps the text shown and a sort key (a number where the cell starts with one), so the page
can sort any column. A value column with an interval (``x`` + ``x_ci_low``/``x_ci_high`` or the single
``ci_low``/``ci_high`` pair) becomes one cell ``x [low, high]``; effect columns (differences whose null
is 0) are marked ``*`` when the interval excludes 0, and p-values below 0.05 are marked ``†``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MINUS = "\u2212"
#: Differences whose "no effect" value is 0: a ``*`` marks an interval that excludes 0.
EFFECT_COLUMNS = ("tpr_disparity", "disparity_mean", "disparity", "delta", "gap", "gap_bc", "average_gap", "eodd_worst",
                  "eodd_mean", "eop", "dp_difference", "calibration_gap", "citl")
P_COLUMNS = ("p_value", "p_holm", "p_bh")
SIGNIFICANCE_NOTE = ("* the 95% interval excludes 0; † p < 0.05 (in a p_holm or p_bh column: after that correction). "
                     "Click a column header to sort.")


def num(value, digits: int = 3, signed: bool = False) -> str:
    """A number with a true minus sign; ``n/a`` for NaN/None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) and not signed:
        return str(value)
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", MINUS)


def interval(value, low, high, digits: int = 3, signed: bool = False) -> str:
    """``−0.120 [−0.180, −0.060]``; the point alone when the interval is undefined."""
    if _nan(low) or _nan(high):
        return num(value, digits, signed)
    return f"{num(value, digits, signed)} [{num(low, digits)}, {num(high, digits)}]"


def excludes_zero(low, high) -> bool:
    return not (_nan(low) or _nan(high)) and (low > 0 or high < 0)


def _nan(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


@dataclass
class Cell:
    text: str
    sort: float | str | None = None
    strong: bool = False


@dataclass
class Table:
    title: str
    caption: str
    source: str
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    truncated: int = 0
    extra: list[int] = field(default_factory=list)  # column indices hidden until "show all columns" (wide tables)

    @property
    def anchor(self) -> str:
        return "t-" + re.sub(r"[^a-z0-9]+", "-", self.source.lower()).strip("-")


def _sort_key(text: str) -> float | str:
    match = re.match(r"\s*\**\s*([\u2212+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?)", text)
    if match:
        return float(match.group(1).replace(MINUS, "-"))
    return text.lower()


#: A table wider than this many column units (an interval cell counts 2) opens with its key columns only (a button
#: shows the rest), so that it reads at 1,400 px without scrolling sideways.
MAX_DEFAULT_COLUMNS = 10


def frame_table(df: pd.DataFrame, title: str, caption: str, source: str, max_rows: int = 2000, digits: int = 3,
                key_columns: tuple[str, ...] | None = None) -> Table:
    """A data frame as a page table: interval columns merged, effects and p-values marked.

    ``key_columns``: the columns a wide table shows first (default: the first :data:`MAX_DEFAULT_COLUMNS`); the
    others are in the table, behind a "show all columns" button.
    """
    columns = list(df.columns)
    merged: dict[str, tuple[str, str]] = {}
    for c in columns:
        if f"{c}_ci_low" in columns and f"{c}_ci_high" in columns:
            merged[c] = (f"{c}_ci_low", f"{c}_ci_high")
    if "ci_low" in columns and "ci_high" in columns:
        owner = next((c for c in columns if c in EFFECT_COLUMNS and c not in merged),
                     next((c for c in columns[:columns.index("ci_low")][::-1]
                           if c not in merged and pd.api.types.is_float_dtype(df[c])), None))
        if owner is not None:
            merged[owner] = ("ci_low", "ci_high")
    hidden = {c for pair in merged.values() for c in pair}
    shown = [c for c in columns if c not in hidden]
    rows = []
    for record in df.head(max_rows).to_dict("records"):
        row = []
        for c in shown:
            v = record[c]
            if c in merged:
                low, high = record[merged[c][0]], record[merged[c][1]]
                mark = c in EFFECT_COLUMNS and excludes_zero(low, high)
                row.append(Cell(interval(v, low, high, digits) + (" *" if mark else ""), None if _nan(v) else float(v), mark))
            elif c in P_COLUMNS and not _nan(v):
                mark = float(v) < 0.05
                row.append(Cell(f"{float(v):.3g}" + (" †" if mark else ""), float(v), mark))
            elif isinstance(v, bool):
                row.append(Cell("yes" if v else "", int(v)))
            elif isinstance(v, int | float) and not isinstance(v, bool):
                if _nan(v):
                    row.append(Cell("n/a", None))
                elif float(v).is_integer() and pd.api.types.is_integer_dtype(df[c]):
                    row.append(Cell(str(int(v)), float(v)))
                else:
                    row.append(Cell(num(float(v), digits), float(v)))
            else:
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                row.append(Cell(text, _sort_key(text)))
        rows.append(row)
    header = [f"{c} [95% CI]" if c in merged else c for c in shown]
    extra = []
    weight = {c: 2 if c in merged else 1 for c in shown}  # an interval cell is about twice as wide
    if sum(weight.values()) > MAX_DEFAULT_COLUMNS:
        keys, used = [], 0
        for c in [c for c in (key_columns or shown) if c in shown]:
            if used + weight[c] <= MAX_DEFAULT_COLUMNS or not keys:
                keys.append(c)
                used += weight[c]
        extra = [i for i, c in enumerate(shown) if c not in keys]
    return Table(title, caption, source, header, rows, truncated=max(0, len(df) - max_rows), extra=extra)


def parse_markdown_tables(text: str, source: str) -> list[Table]:
    """Every pipe table of a written ``.md`` file; the last ``#`` heading is its title, other text its notes."""
    tables: list[Table] = []
    title, block, notes = Path(source).stem, [], []

    def flush():
        nonlocal block
        if len(block) >= 2:
            header = _pipe_cells(block[0])
            rows = [[_md_cell(c) for c in _pipe_cells(line)] for line in block[2:]]
            tables.append(Table(title, "", source, [_strip_md(h) for h in header], rows))
        block = []

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            block.append(stripped)
            continue
        flush()
        if stripped.startswith("#"):
            title = stripped.lstrip("#").strip()
        elif stripped:
            (tables[-1].notes if tables else notes).append(stripped)
    flush()
    if tables and notes:
        tables[0].notes = notes + tables[0].notes
    return tables


def _pipe_cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _strip_md(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"\1", text).replace("`", "")


def _md_cell(text: str) -> Cell:
    strong = bool(re.fullmatch(r"\*\*.+\*\*", text.strip()))
    plain = _strip_md(text)
    return Cell(plain, _sort_key(plain), strong)
