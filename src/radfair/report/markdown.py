"""Plain Markdown tables (GitHub style), with no extra dependency."""

from __future__ import annotations

import math

import pandas as pd


def format_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    """``0.812 [0.801, 0.823]``; ``n/a`` for NaN, the point alone when the interval is undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if low is None or math.isnan(low) or high is None or math.isnan(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_table(df: pd.DataFrame) -> str:
    """Render every cell with ``str``; pipes inside cells are escaped."""
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"
