"""radfair.report: renderings of result folders (Markdown tables; the self-contained HTML report)."""

from .markdown import format_ci, markdown_table

__all__ = ["build_page", "detect_kind", "format_ci", "markdown_table", "render_html", "render_markdown", "write_report"]


def __getattr__(name):  # the page builder imports pandas and jinja2: load it only when asked for
    if name in ("build_page", "detect_kind"):
        from . import page

        return getattr(page, name)
    if name in ("render_html", "render_markdown", "write_report"):
        from . import render

        return getattr(render, name)
    raise AttributeError(name)
