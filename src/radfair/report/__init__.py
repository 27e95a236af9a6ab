"""radfair.report: renderings of result folders (Markdown tables now; the HTML report next)."""

from .markdown import format_ci, markdown_table

__all__ = ["format_ci", "markdown_table"]
