"""Markdown without the HTML that OCR output carries, so every model's page reads as the same kind of text.

Models and the text-layer baseline mark the same things differently: a footnote mark is
``<sup>1</sup>`` from one, ``¹`` from another; a table is ``<table>`` HTML from one, a pipe
table from another; pymupdf4llm wraps the text it finds inside pictures in
``<!-- Start of picture text -->`` comments and breaks its lines with ``<br>``. Shown as they
are, such marks tell a blind reviewer which model wrote a page, and read as broken output.
:func:`plain_markdown` rewrites them as plain Markdown, the same way whoever wrote them:

* HTML comments are dropped;
* ``<sup>``/``<sub>`` become Unicode super- and subscripts where every letter has one
  (``<sup>1,2</sup>`` → ``¹,²``), else their plain text;
* ``<b>``/``<strong>`` become ``**…**``, ``<i>``/``<em>`` ``*…*``, ``<s>``/``<del>`` ``~~…~~``,
  ``<code>`` a code span; ``<u>``, ``<mark>``, ``<span>``, ``<font>`` and the like keep only their text;
* HTML tables become pipe tables (spanned cells left empty);
* ``<br>`` is a space inside a pipe-table row and a line break elsewhere; ``<p>``/``<div>`` break paragraphs;
* in text that had any of these, runs of blank lines become one.

Other tags (``<img>``, ``<script>``, …) are left alone: this is about sameness, not safety
(the reviewer's :mod:`tracr.review.safe_markdown` neutralises what is left). Fenced code
blocks that open at column 0 are left verbatim. Pure and idempotent.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tracr.documents.fences import map_outside_fences

__all__ = ["plain_markdown", "superscript", "subscript"]

# Tempered (no second opener inside), so text full of unclosed openers is still read in linear time.
_COMMENT = re.compile(r"<!--(?:(?!<!--).)*?-->", re.DOTALL)
_INLINE_TAGS = "sup|sub|b|strong|i|em|cite|var|dfn|s|del|strike|code|kbd|samp|tt|u|ins|mark|span|font|small|big|abbr|q"
#: An inline element with nothing tag-like inside: replaced innermost first, so nesting unwinds.
_INLINE_PAIR = re.compile(rf"<({_INLINE_TAGS})(?:\s[^<>]*)?>([^<]*)</\1\s*>", re.IGNORECASE)
#: Tags that only style text: an unmatched one is dropped (its text stays).
_STRAY_STYLE = re.compile(r"</?(?:u|ins|mark|span|font|small|big|abbr|center)(?:\s[^<>]*)?/?>", re.IGNORECASE)
_BLOCK = re.compile(r"</?(?:p|div)(?:\s[^<>]*)?/?>", re.IGNORECASE)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TABLE = re.compile(r"<table\b[^>]*>(?:(?!<table\b).)*?</table\s*>", re.IGNORECASE | re.DOTALL)
_TABLE_ROW_LINE = re.compile(r"^\s*\|")
_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_WRAPS = {"b": "**", "strong": "**", "i": "*", "em": "*", "cite": "*", "var": "*", "dfn": "*", "s": "~~", "del": "~~", "strike": "~~"}
_CODE_TAGS = {"code", "kbd", "samp", "tt"}
_MAX_SPAN = 50

_SUPERSCRIPTS = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVW",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ",
        strict=True,
    )
)
_SUBSCRIPTS = dict(zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))
#: Characters that stay as they are inside a super- or subscript ("1,2" → "¹,²").
_SCRIPT_NEUTRAL = set(" ,.;*†‡")


def _script(text: str, table: dict[str, str]) -> str:
    stripped = text.strip()
    if stripped and all(c in table or c in _SCRIPT_NEUTRAL for c in stripped):
        return "".join(table.get(c, c) for c in stripped)
    return stripped


def superscript(text: str) -> str:
    """``text`` in Unicode superscript letters where each has one, else unchanged (trimmed)."""
    return _script(text, _SUPERSCRIPTS)


def subscript(text: str) -> str:
    """``text`` in Unicode subscript letters where each has one, else unchanged (trimmed)."""
    return _script(text, _SUBSCRIPTS)


def _wrap(text: str, mark: str) -> str:
    """``mark`` around the words, outside the spaces (``** x **`` is not bold in Markdown)."""
    core = text.strip()
    if not core:
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{mark}{core}{mark}{trail}"


def _inline(match: re.Match[str]) -> str:
    tag, text = match.group(1).lower(), match.group(2)
    if tag == "sup":
        return superscript(text)
    if tag == "sub":
        return subscript(text)
    if tag in _WRAPS:
        return _wrap(text, _WRAPS[tag])
    if tag in _CODE_TAGS and "`" not in text:
        return _wrap(text, "`")
    return text


class _TableReader(HTMLParser):
    """Rows of cells ``(text, colspan, rowspan, is_header)`` of one HTML table; nested tables' text joins their cell."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int, bool]]] = []
        self.caption: list[str] = []
        self._cell: list[str] | None = None
        self._cell_attrs: tuple[int, int, bool] = (1, 1, False)
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._close_cell()
            self.rows.append([])
        elif tag in ("td", "th"):
            self._close_cell()
            if not self.rows:
                self.rows.append([])
            named = dict(attrs)
            self._cell = []
            self._cell_attrs = (_span(named.get("colspan")), _span(named.get("rowspan")), tag == "th")
        elif tag == "caption":
            self._in_caption = True
        elif tag in ("br", "p", "div", "li") and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "tr"):
            self._close_cell()
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self.caption.append(data)

    def _close_cell(self) -> None:
        if self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.rows[-1].append((text, *self._cell_attrs))
            self._cell = None


def _span(value: str | None) -> int:
    try:
        return max(1, min(_MAX_SPAN, int(str(value).strip())))
    except ValueError:
        return 1


def _cell_text(text: str) -> str:
    """A cell's words as pipe-table text: no raw ``<`` (entities were decoded), no column break."""
    return text.replace("<", "&lt;").replace("|", "\\|")


def _pipe_table(html: str) -> str:
    reader = _TableReader()
    reader.feed(html)
    reader.close()
    reader._close_cell()
    grid: list[list[str]] = []
    pending: dict[tuple[int, int], str] = {}  # (row, column) cells a rowspan above covers
    for r, row in enumerate(row for row in reader.rows if row):
        out: list[str] = []
        c = 0
        for text, colspan, rowspan, _ in row:
            while (r, c) in pending:
                out.append(pending.pop((r, c)))
                c += 1
            for i in range(colspan):
                out.append(_cell_text(text) if i == 0 else "")
                for below in range(1, rowspan):
                    pending[(r + below, c + i)] = ""
            c += colspan
        while (r, c) in pending:
            out.append(pending.pop((r, c)))
            c += 1
        grid.append(out)
    caption = " ".join("".join(reader.caption).split())
    if not grid:
        return f"\n\n{caption}\n\n" if caption else "\n\n"
    width = max(len(row) for row in grid)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in grid]
    lines.insert(1, "|" + "---|" * width)
    return "\n\n" + (f"{caption}\n\n" if caption else "") + "\n".join(lines) + "\n\n"


def _line_breaks(text: str) -> str:
    """``<br>``: a space in a pipe-table row (a newline would end the row), a line break elsewhere."""
    if "<" not in text:
        return text
    return "\n".join(
        _LINE_BREAK.sub(" " if _TABLE_ROW_LINE.match(line) else "\n", line).rstrip(" ") if _LINE_BREAK.search(line) else line
        for line in text.split("\n")
    )


def _plain_chunk(text: str) -> str:
    if "<" not in text:
        return text
    text = _COMMENT.sub("", text)
    for _ in range(8):  # innermost first; a few rounds unwind any realistic nesting
        text, replaced = _INLINE_PAIR.subn(_inline, text)
        if not replaced:
            break
    text = _TABLE.sub(lambda m: _pipe_table(m.group(0)), text)
    text = _line_breaks(text)
    text = _BLOCK.sub("\n\n", text)
    text = _STRAY_STYLE.sub("", text)
    return _BLANK_RUN.sub("\n\n", text)  # where a comment or table stood: one blank line is as good as five


def plain_markdown(text: str) -> str:
    """``text`` with its HTML comments, inline HTML, HTML tables and line-break tags as plain Markdown (see the module)."""
    if "<" not in text:
        return text
    return map_outside_fences(text, _plain_chunk)
