"""Writing the shared report: the HTML file alone, or the Markdown file with its images in ``<stem>_files/`` beside it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tracr.outputs.files import write_text_atomic
from tracr.reporting.content import ReportContent
from tracr.reporting.html import render_html
from tracr.reporting.markdown import render_markdown

__all__ = ["write_html_report", "write_markdown_report"]


def write_html_report(path: Path, content: ReportContent) -> Path:
    """One self-contained file, replaced atomically; returns its absolute path."""
    path = Path(path).resolve()
    write_text_atomic(path, render_html(content))
    return path


def write_markdown_report(path: Path, content: ReportContent) -> Path:
    """The Markdown file and its page images (``<stem>_files/page-<n>.jpg``); returns the file's absolute path."""
    path = Path(path).resolve()
    images = path.parent / f"{path.stem}_files"
    write_text_atomic(path, render_markdown(content, images_dir=images, link_prefix=quote(images.name) + "/"))
    return path
