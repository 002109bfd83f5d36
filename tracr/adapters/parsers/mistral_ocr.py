"""Used by Mistral OCR (``mistral-ocr-2503``, ``mistral-ocr-2505``, ``mistral-ocr-2512``, ``mistral-ocr-latest``).

Mistral OCR is not a chat model: ``POST /v1/ocr`` takes a document and returns JSON with one object per
page (``index``, ``markdown``, ``images[]``, and in the newer API ``tables[]``, ``header``, ``footer``,
``hyperlinks``, ``dimensions``). olmOCR-Bench's ``run_mistral.py`` takes ``pages[0].markdown`` unchanged;
:func:`parse_response` does the same except that image references become a plain placeholder.
Field names come from Mistral's OpenAPI schema (``OCRRequest``, ``OCRPageObject``, ``OCRImageObject``,
``OCRTableObject``) and the "Document AI - OCR Processor" page of docs.mistral.ai.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = ["IMAGE_PLACEHOLDER", "parse_response", "request_body"]

#: What an image reference becomes (the same placeholder docling-core writes).
IMAGE_PLACEHOLDER = "![image](image)"  # plain Markdown: the reviewer never shows comments
#: A Markdown image, ``![img-0.jpeg](img-0.jpeg)`` in Mistral's pages, or one with a data URL.
_IMAGE_RE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".avif", ".webp", ".gif", ".tif", ".tiff", ".bmp")


def request_body(model: str, document_url: str, *, include_header_footer: bool) -> dict[str, Any]:
    """The ``POST /v1/ocr`` body for one document or image.

    ``document`` is ``{"type": "image_url", "image_url": url}`` for an image (a ``data:image/`` URL or an
    image file name) and ``{"type": "document_url", "document_url": url}`` otherwise. Images are not sent
    back (``include_image_base64: False``). With ``include_header_footer`` the body asks for headers and
    footers in their own fields (``extract_header``/``extract_footer``, default false, added with
    mistral-ocr-2512 in December 2025), so :func:`parse_response` can drop or keep them; without it the
    options are left out and Mistral keeps headers and footers in the page Markdown, as for
    ``mistral-ocr-2503`` in olmOCR-Bench. Whether older models accept the two options is UNCONFIRMED.
    """
    body: dict[str, Any] = {"model": model, "document": _document(document_url), "include_image_base64": False}
    if include_header_footer:
        body["extract_header"] = True
        body["extract_footer"] = True
    return body


def _document(url: str) -> dict[str, str]:
    path = url.split("?", 1)[0].lower()
    if url.startswith("data:image/") or path.endswith(_IMAGE_SUFFIXES):
        return {"type": "image_url", "image_url": url}
    return {"type": "document_url", "document_url": url}


def parse_response(body: Mapping[str, Any] | str, page_index: int = 0, keep_furniture: bool = False) -> ParsedReply:
    """One page of an OCR response → its Markdown, unchanged but for image references.

    The page is the one whose ``index`` is ``page_index`` (its position in ``pages`` when no page has an
    ``index``). Separate tables (``table_format`` markdown/html) are put back where the page links to them
    by id. ``header``/``footer`` fields, present only when the request asked for them, are dropped unless
    ``keep_furniture``, which puts them before and after the body. ``meta``: ``page_index``, ``images``
    (references replaced), ``tables`` (tables put back).
    """
    page = _page(_load(body), page_index)
    markdown = page.get("markdown")
    if not isinstance(markdown, str):
        raise ReplyFormatError("page markdown missing")
    markdown, tables = _inline_tables(markdown, page.get("tables"))
    markdown, images = _IMAGE_RE.subn(IMAGE_PLACEHOLDER, markdown)
    header, footer = _text_field(page, "header"), _text_field(page, "footer")
    dropped: tuple[str, ...] = ()
    if keep_furniture:
        markdown = "\n\n".join(part for part in (header, markdown.strip(), footer) if part)
    else:
        dropped = tuple(kind for kind, text in (("page_header", header), ("page_footer", footer)) if text)
    return ParsedReply(markdown=markdown.strip(), meta={"page_index": page_index, "images": images, "tables": tables}, dropped=dropped)


def _load(body: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise ReplyFormatError("not JSON") from exc
    if not isinstance(body, Mapping):
        raise ReplyFormatError("not a JSON object")
    return body


def _page(body: Mapping[str, Any], page_index: int) -> Mapping[str, Any]:
    pages = body.get("pages")
    if not isinstance(pages, list) or not all(isinstance(p, Mapping) for p in pages):
        raise ReplyFormatError("pages missing")
    if any("index" in p for p in pages):
        found = [p for p in pages if p.get("index") == page_index]
        if found:
            return found[0]
    elif 0 <= page_index < len(pages):
        return pages[page_index]
    raise ReplyFormatError("page missing")


def _inline_tables(markdown: str, tables: object) -> tuple[str, int]:
    """Put each separate table back where the page links to it (``[tbl-0.html](tbl-0.html)``; the link form is UNCONFIRMED)."""
    if not isinstance(tables, list):
        return markdown, 0
    count = 0
    for table in tables:
        if not isinstance(table, Mapping) or not isinstance(table.get("id"), str) or not isinstance(table.get("content"), str):
            continue
        link = re.compile(r"\[[^\]\n]*\]\(" + re.escape(table["id"]) + r"\)")
        markdown, n = link.subn(table["content"].replace("\\", "\\\\"), markdown)
        count += n
    return markdown, count


def _text_field(page: Mapping[str, Any], name: str) -> str:
    value = page.get(name)
    return value.strip() if isinstance(value, str) else ""
