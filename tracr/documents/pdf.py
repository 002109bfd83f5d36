"""PDF access with PyMuPDF: inspect, render pages to images, read the text layer.

The render and text functions run in worker processes (PyMuPDF holds the GIL while
rendering, so threads do not add throughput); each worker keeps recently used
documents open so a 2,000-page PDF is parsed once per worker, not once per page.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from tracr.documents.layout_model import enable_layout_model  # isort: skip  (before PyMuPDF: its layout model loads only when used)

import pymupdf  # isort: skip

from tracr.errors import ErrorClass, TracrError

__all__ = [
    "PdfError",
    "PdfInfo",
    "inspect_pdf",
    "render_page",
    "render_page_data_url",
    "page_text_markdown",
    "timed_page_text_markdown",
    "worker_count",
    "image_data_url",
]

#: Open documents by path, with the (size, mtime) they were opened at: a file replaced while a job runs is opened afresh.
_OPEN_DOCS: OrderedDict[str, tuple[tuple[int, int], pymupdf.Document]] = OrderedDict()
_MAX_OPEN_DOCS = 8
#: Above this many vector drawings, pymupdf4llm's layout pass takes minutes (seen: 59k drawings, 150 s).
MAX_DRAWINGS_FOR_LAYOUT = 20_000


class PdfError(TracrError, RuntimeError):
    """A PDF cannot be processed (broken, encrypted, empty); fails that PDF only."""

    default_class = ErrorClass.PDF


@dataclass(frozen=True)
class PdfInfo:
    path: Path
    page_count: int
    size_bytes: int


def inspect_pdf(path: Path) -> PdfInfo:
    """Open a PDF once to check it is readable and count its pages.

    Raises :class:`PdfError` with a specific reason for broken, encrypted and empty files.
    """
    path = Path(path)
    try:
        doc = pymupdf.open(path)
    except Exception as exc:  # PyMuPDF raises several types for damaged files
        raise PdfError(f"cannot open PDF {path.name}: {exc}") from None
    try:
        if doc.needs_pass:
            raise PdfError(f"PDF {path.name} is encrypted and needs a password")
        if not doc.is_pdf:
            raise PdfError(f"{path.name} is not a PDF")
        if doc.page_count == 0:
            raise PdfError(f"PDF {path.name} has no pages")
        return PdfInfo(path=path, page_count=doc.page_count, size_bytes=path.stat().st_size)
    finally:
        doc.close()


def _document(path: str) -> pymupdf.Document:
    stat = os.stat(path)
    version = (stat.st_size, stat.st_mtime_ns)
    cached = _OPEN_DOCS.get(path)
    if cached is not None and cached[0] == version:
        _OPEN_DOCS.move_to_end(path)
        return cached[1]
    if cached is not None:
        _OPEN_DOCS.pop(path)[1].close()  # the file was replaced: its old document is not read again
    doc = pymupdf.open(path)
    _OPEN_DOCS[path] = (version, doc)
    while len(_OPEN_DOCS) > _MAX_OPEN_DOCS:
        _OPEN_DOCS.popitem(last=False)[1][1].close()
    return doc


def render_page(path: str, page: int, longest_side_px: int = 1288, fmt: str = "png", jpeg_quality: int = 90) -> bytes:
    """Render 1-based ``page`` so its longest side is ``longest_side_px``, as PNG or JPEG.

    The page's /Rotate is honoured (the image is the page as a viewer shows it).
    """
    pdf_page = _document(path)[page - 1]
    rect = pdf_page.rect  # already in rotated orientation
    zoom = longest_side_px / max(rect.width, rect.height)
    pixmap = pdf_page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    if fmt == "jpeg":
        return pixmap.tobytes("jpeg", jpg_quality=jpeg_quality)
    return pixmap.tobytes("png")


def render_page_data_url(path: str, page: int, longest_side_px: int = 1288, fmt: str = "png", jpeg_quality: int = 90) -> str:
    """:func:`render_page` plus base64 encoding, done in the worker to spare the event loop."""
    return image_data_url(render_page(path, page, longest_side_px, fmt, jpeg_quality), fmt)


def timed_page_text_markdown(path: str, page: int) -> tuple[str, float]:
    """:func:`page_text_markdown` and the seconds it took in the worker (not the wait for a free worker)."""
    started = time.perf_counter()
    text = page_text_markdown(path, page)
    return text, time.perf_counter() - started


def page_text_markdown(path: str, page: int) -> str:
    """The page's own text layer as Markdown (no OCR): the zero-cost baseline model.

    pymupdf4llm's layout analysis gives real headings and tables, but it returns
    nothing (or one table cell) for rotated pages and takes minutes on pages with
    tens of thousands of vector drawings (maps, schematics). Those pages get the
    plain text layer instead — in content-stream order for rotated pages (sorting
    by position would read their sideways-stored lines across), sorted by
    position otherwise — so the baseline is never empty where text exists and
    never stalls a run.
    """
    enable_layout_model()
    import pymupdf4llm

    doc = _document(path)
    pdf_page = doc[page - 1]
    if layout_pass_suits(pdf_page):
        markdown = pymupdf4llm.to_markdown(doc, pages=[page - 1], use_ocr=False, show_progress=False)
        if markdown.strip():
            return markdown
    return _tidy_text(pdf_page.get_text("text", sort=pdf_page.rotation == 0))


def layout_pass_suits(pdf_page: pymupdf.Page) -> bool:
    """Whether pymupdf4llm's layout pass can handle this page (upright, not drawing-heavy)."""
    return pdf_page.rotation == 0 and len(pdf_page.get_cdrawings()) <= MAX_DRAWINGS_FOR_LAYOUT


def _tidy_text(text: str) -> str:
    """Collapse the column padding ``sort=True`` adds, and runs of blank lines."""
    lines = [re.sub(r"[ \t]{2,}", "  ", line).rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def image_data_url(image: bytes, fmt: str) -> str:
    """``data:`` URL for an OpenAI ``image_url`` content part."""
    mime = "image/jpeg" if fmt == "jpeg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def worker_ready() -> int:
    """No-op run in each pool worker at start-up (importing this module loads PyMuPDF)."""
    return os.getpid()


def worker_count() -> int:
    """Render workers: one per core, since rendering is CPU-bound."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
