"""PDF access with PyMuPDF: inspect, render pages to images, read the text layer.

The render and text functions run in worker processes (PyMuPDF holds the GIL while
rendering, so threads do not add throughput); each worker keeps recently used
documents open so a 2,000-page PDF is parsed once per worker, not once per page.
"""

from __future__ import annotations

import base64
import math
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracr.documents.layout_model import enable_layout_model  # isort: skip  (before PyMuPDF: its layout model loads only when used)
from tracr.documents.plain_markdown import plain_markdown  # isort: skip

import pymupdf  # isort: skip

from tracr.errors import ErrorClass, TracrError

__all__ = [
    "PdfError",
    "PdfInfo",
    "inspect_pdf",
    "inspect_pdfs",
    "render_page",
    "render_page_data_url",
    "render_clip_data_url",
    "page_pdf_data_url",
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


def inspect_pdfs(paths: list[str]) -> list[tuple[int, int] | str]:
    """:func:`inspect_pdf` of each path, as a render worker returns it: ``(page_count, size_bytes)``, or why it cannot be read."""
    found: list[tuple[int, int] | str] = []
    for path in paths:
        try:
            info = inspect_pdf(Path(path))
        except PdfError as exc:
            found.append(str(exc))
        else:
            found.append((info.page_count, info.size_bytes))
    return found


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


def render_matrix(
    width: float,
    height: float,
    longest_side_px: int = 1288,
    dpi: float | None = None,
    shortest_side_px: int | None = None,
    min_shortest_side_px: int | None = None,
    max_pixels: int | None = None,
    exact_px: int | None = None,
) -> tuple[float, float]:
    """Horizontal and vertical zoom for a page of ``width`` x ``height`` points (see RenderSettings)."""
    if exact_px:
        return exact_px / width, exact_px / height
    if dpi:
        zoom = dpi / 72.0
    elif shortest_side_px:
        zoom = shortest_side_px / min(width, height)
    else:
        zoom = longest_side_px / max(width, height)
    if min_shortest_side_px:
        zoom = max(zoom, min_shortest_side_px / min(width, height))
    if max_pixels and width * height * zoom * zoom > max_pixels:
        zoom = (max_pixels / (width * height)) ** 0.5
    return zoom, zoom


def render_page(
    path: str,
    page: int,
    longest_side_px: int = 1288,
    fmt: str = "png",
    jpeg_quality: int = 90,
    dpi: float | None = None,
    shortest_side_px: int | None = None,
    min_shortest_side_px: int | None = None,
    max_pixels: int | None = None,
    exact_px: int | None = None,
    rotation: int = 0,
) -> bytes:
    """Render 1-based ``page`` at the size the settings give, as PNG or JPEG, turned ``rotation`` degrees counter-clockwise.

    The page's /Rotate is honoured (the image is the page as a viewer shows it).
    """
    pdf_page = _document(path)[page - 1]
    rect = pdf_page.rect  # already in rotated orientation
    zoom_x, zoom_y = render_matrix(
        rect.width, rect.height, longest_side_px, dpi, shortest_side_px, min_shortest_side_px, max_pixels, exact_px
    )
    matrix = pymupdf.Matrix(zoom_x, zoom_y)
    if rotation % 360:
        matrix = matrix * pymupdf.Matrix(-(rotation % 360))  # PyMuPDF turns clockwise for positive degrees on screen
    pixmap = pdf_page.get_pixmap(matrix=matrix, alpha=False)
    if fmt == "jpeg":
        return pixmap.tobytes("jpeg", jpg_quality=jpeg_quality)
    return pixmap.tobytes("png")


def render_page_band(path: str, page: int, *, x0: float = 0.0, x1: float = 1.0, width_px: int = 800, max_pixels: int = 16_000_000) -> bytes:
    """PNG of the page's full height between ``x0`` and ``x1`` (fractions of its width, as a viewer shows it), ``width_px`` wide.

    For a person reading the page (the reviewer), so sized by width: a very tall page
    sized by its longest side becomes a strip a few dozen pixels wide. Shrunk only
    where the image would pass about ``max_pixels``. ``x0, x1`` narrower than ``0, 1`` magnify a part of the page.
    """
    pdf_page = _document(path)[page - 1]
    rect = pdf_page.rect  # already in rotated orientation
    x0, x1 = max(0.0, min(x0, 1.0)), max(0.0, min(x1, 1.0))
    if x1 <= x0:
        raise ValueError(f"empty band {x0}..{x1} of page {page}")
    band_width = rect.width * (x1 - x0)
    zoom = width_px / band_width
    if band_width * rect.height * zoom * zoom > max_pixels:
        zoom = (max_pixels / (band_width * rect.height)) ** 0.5
    clip = None
    if (x0, x1) != (0.0, 1.0):
        clip = pymupdf.Rect(rect.x0 + x0 * rect.width, rect.y0, rect.x0 + x1 * rect.width, rect.y1)  # in the rotated frame, like rect
    return pdf_page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=clip, alpha=False).tobytes("png")


def render_page_data_url(path: str, page: int, longest_side_px: int = 1288, fmt: str = "png", jpeg_quality: int = 90, *size: Any) -> str:
    """:func:`render_page` plus base64 encoding, done in the worker to spare the event loop."""
    return image_data_url(render_page(path, page, longest_side_px, fmt, jpeg_quality, *size), fmt)


def render_clip_data_url(
    path: str,
    page: int,
    clip: tuple[float, float, float, float],
    angle: int = 0,
    min_side_px: int = 28,
    max_aspect: float | None = None,
    longest_side_px: int = 1288,
    fmt: str = "png",
    jpeg_quality: int = 90,
    *size: Any,
) -> str:
    """Part of 1-based ``page`` as a data URL: ``clip`` is (x0, y0, x1, y1) in fractions of the page as a viewer shows it.

    The zoom is the page's by the size rules (``size`` as :func:`render_page` takes them; a crop is never squashed
    to ``exact_px``), raised where needed so the shorter side is at least ``min_side_px``. The crop is turned
    ``angle`` degrees counter-clockwise, then padded with white, centred, so its long side is at most ``max_aspect``
    times its short side (MinerU2.5's block crops: rotate, pad to 50:1, shorter side at least 28 px).
    """
    pdf_page = _document(path)[page - 1]
    rect = pdf_page.rect
    box = (
        pymupdf.Rect(
            rect.x0 + clip[0] * rect.width, rect.y0 + clip[1] * rect.height, rect.x0 + clip[2] * rect.width, rect.y0 + clip[3] * rect.height
        )
        & rect
    )
    if box.is_empty:
        raise ValueError(f"empty crop {clip} of page {page}")
    rules = (list(size) + [None] * 5)[:5]
    rules[4] = None  # exact_px: the crop keeps the page's aspect
    zoom = render_matrix(rect.width, rect.height, longest_side_px, *rules)[0]
    short, long = sorted((box.width, box.height))
    padded_short = max(short, long / max_aspect) if max_aspect else short
    zoom = max(zoom, min_side_px / padded_short)
    matrix = pymupdf.Matrix(zoom, zoom)
    if angle % 360:
        matrix = matrix * pymupdf.Matrix(-(angle % 360))
    pixmap = pdf_page.get_pixmap(matrix=matrix, clip=box, alpha=False)
    width, height = pixmap.width, pixmap.height
    if max_aspect and max(width, height) > max_aspect * min(width, height):
        pad = math.ceil(max(width, height) / max_aspect)
        width, height = (width, pad) if width > height else (pad, height)
        canvas = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, width, height), False)
        canvas.clear_with(255)
        pixmap.set_origin((width - pixmap.width) // 2, (height - pixmap.height) // 2)
        canvas.copy(pixmap, pixmap.irect)
        pixmap = canvas
    image = pixmap.tobytes("jpeg", jpg_quality=jpeg_quality) if fmt == "jpeg" else pixmap.tobytes("png")
    return image_data_url(image, fmt)


def page_pdf_data_url(path: str, page: int) -> str:
    """1-based ``page`` alone as a one-page PDF, as a ``data:application/pdf;base64,`` URL (Mistral OCR's document)."""
    single = pymupdf.open()
    try:
        single.insert_pdf(_document(path), from_page=page - 1, to_page=page - 1)
        data = single.tobytes(garbage=3, deflate=True)
    finally:
        single.close()
    return f"data:application/pdf;base64,{base64.b64encode(data).decode('ascii')}"


def page_anchor_text(path: str, page: int, max_chars: int = 6000) -> str:
    """The page's text layer in olmOCR v1's anchor format: ``Page dimensions``, then ``[x0xy0]text`` lines.

    olmOCR's own (``get_anchor_text`` with pdfreport) samples text and image boxes to a target
    length; this keeps its format and length, taking lines in reading order.
    """
    pdf_page = _document(path)[page - 1]
    rect = pdf_page.rect
    lines = [f"Page dimensions: {rect.width:.1f}x{rect.height:.1f}"]
    for image in pdf_page.get_image_info():
        x0, y0, x1, y1 = image["bbox"]
        lines.append(f"[Image {x0:.0f}x{y0:.0f} to {x1:.0f}x{y1:.0f}]")
    for block in pdf_page.get_text("dict")["blocks"]:
        for line in block.get("lines", []):
            text = "".join(span["text"] for span in line["spans"]).strip()
            if text:
                x0, y0 = line["bbox"][:2]
                lines.append(f"[{x0:.0f}x{y0:.0f}]{text}")
    return "\n".join(lines)[:max_chars]


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
        markdown = plain_markdown(pymupdf4llm.to_markdown(doc, pages=[page - 1], use_ocr=False, show_progress=False))
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
