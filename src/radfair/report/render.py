"""Render a :class:`~.page.Page` as one self-contained HTML file or as Markdown (Jinja2 templates shipped as package data)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..errors import BAD_OPTION, RadfairInputError
from ..io import output_file, write_text
from .markdown import markdown_table
from .page import Page, build_page
from .tables import SIGNIFICANCE_NOTE, Table

FORMATS = ("html", "md")
#: Findings shown before "more findings" (HTML; the rest is one click away, and all of it is printed).
SHOWN = 15


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("radfair.report", "templates"),
                              autoescape=jinja2.select_autoescape(["html.j2"]), keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


def _md_table(table: Table) -> str:
    import pandas as pd

    frame = pd.DataFrame([[("**" + c.text + "**") if c.strong and c.text else c.text for c in row] for row in table.rows],
                         columns=table.header)
    return markdown_table(frame).rstrip("\n")


def render_html(page: Page) -> str:
    return _environment().get_template("report.html.j2").render(page=page, significance_note=SIGNIFICANCE_NOTE, shown=SHOWN)


def render_markdown(page: Page, out: Path | None = None) -> str:
    """Markdown with figures as links relative to ``out``'s folder (the result folder when ``out`` is None)."""
    base = Path(out).resolve().parent if out is not None else Path(page.folder)
    figures = [replace(f, data_uri="", link=os.path.relpath(Path(page.folder) / f.path, base).replace(os.sep, "/"))
               for f in page.top_figures + page.figures]  # Markdown: the overview figures lead the one figure list
    view = replace(page, figures=figures, top_figures=[])
    return _environment().get_template("report.md.j2").render(page=view, significance_note=SIGNIFICANCE_NOTE, md_table=_md_table)


def write_report(folder: str | Path, out: str | Path | None = None, fmt: str = "html") -> tuple[Path, Page]:
    """Build the page of ``folder`` and write it atomically to ``out`` (default ``folder/report.<fmt>``)."""
    if fmt not in FORMATS:
        raise RadfairInputError(BAD_OPTION.format(option="--format", value=fmt, expected="html or md"))
    page = build_page(folder)
    out = Path(out) if out is not None else Path(folder) / f"report.{fmt}"
    output_file(out)
    write_text(out, render_html(page) if fmt == "html" else render_markdown(page, out))
    return out, page
