"""Used by nanonets Nanonets-OCR-s and Nanonets-OCR2 (3B): Markdown with a few tags of the model's own.

Nanonets publishes no converter; its prompt (quoted in allenai/olmocr
``olmocr/bench/runners/run_nanonetsocr_2.py`` and docling's ``NANONETS_OCR2`` specs) asks for
``<page_number>…</page_number>``, ``<watermark>…</watermark>``, image descriptions in
``<img>…</img>``, HTML tables, LaTeX and ☐/☑ check boxes; the model card adds ``<signature>``.
olmOCR's v1 runner (``run_nanonetsocr.py``) deletes only ``<page_number>\\d+</page_number>``; its
OCR2 runner keeps the raw reply.

tracr's rules: page numbers and watermarks are furniture, dropped whole by default (any page
number, not only digits) and unwrapped to their text with ``keep_furniture=True``; an
``<img>desc</img>`` becomes ``![desc](image)`` (no live HTML); a signature becomes its text;
tables, LaTeX and check-box glyphs are kept as they are. Unpaired tags left by a truncated
reply are removed, their text kept. ``meta`` lists what the page-number and watermark tags
said, so nothing is lost when they are dropped.
"""

from __future__ import annotations

import re

from tracr.adapters.replies import ParsedReply

__all__ = ["FURNITURE_TAGS", "parse"]

#: Tag → furniture kind.
FURNITURE_TAGS = {"page_number": "page_number", "watermark": "watermark"}

_FURNITURE = re.compile(r"<(page_number|watermark)>(.*?)</\1>", re.DOTALL)
_IMG = re.compile(r"<img>(.*?)</img>", re.DOTALL)
_SIGNATURE = re.compile(r"<signature>(.*?)</signature>", re.DOTALL)
_STRAY = re.compile(r"</?(?:page_number|watermark|signature|img)>")
_WHITESPACE = re.compile(r"\s+")
_BRACKETS = re.compile(r"([\[\]])")
_EMPTY_LINE_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")


def _image(match: re.Match[str]) -> str:
    """``![desc](image)``: the description on one line, brackets escaped so the link stays one link."""
    description = _BRACKETS.sub(r"\\\1", _WHITESPACE.sub(" ", match.group(1)).strip())
    return f"![{description}](image)"


def _furniture(text: str, keep: bool) -> tuple[str, tuple[str, ...], dict[str, list[str]]]:
    """Page numbers and watermarks removed (or unwrapped); the kinds dropped, once each, and what each tag said."""
    dropped: list[str] = []
    said: dict[str, list[str]] = {"page_number": [], "watermark": []}

    def replace(match: re.Match[str]) -> str:
        tag, content = match.group(1), match.group(2)
        said[tag].append(content.strip())
        if keep:
            return content
        kind = FURNITURE_TAGS[tag]
        if kind not in dropped:
            dropped.append(kind)
        return ""

    return _FURNITURE.sub(replace, text), tuple(dropped), said


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """Nanonets-OCR reply → Markdown; never fails. ``meta``: ``page_numbers`` and ``watermarks``, the tags' texts."""
    text, dropped, said = _furniture(reply, keep_furniture)
    text = _IMG.sub(_image, text)
    text = _SIGNATURE.sub(lambda m: m.group(1), text)
    text = _STRAY.sub("", text)
    text = _EMPTY_LINE_RUNS.sub("\n\n", text).strip()
    return ParsedReply(markdown=text, meta={"page_numbers": said["page_number"], "watermarks": said["watermark"]}, dropped=dropped)
