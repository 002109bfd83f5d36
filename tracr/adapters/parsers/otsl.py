"""Used by MinerU2.5 and PaddleOCR-VL (tables), and by any family whose reply carries OTSL table tokens.

OTSL writes a table as a token grid: ``<fcel>`` a cell with text, ``<ecel>`` an empty cell, ``<lcel>``
"same cell as the one to the left", ``<ucel>`` "same as the one above", ``<xcel>`` both, ``<nl>`` end of row.
DocTags adds ``<ched>`` (column header), ``<rhed>`` (row header) and ``<srow>`` (section row), all cells
with text. The conversion follows mineru-vl-utils ``post_process/otsl2html.py`` and PaddleX
``paddleocr_vl/uilts.py::convert_otsl_to_html`` (the two are the same algorithm): rows are padded with
empty cells to the widest row, a cell's colspan counts the ``lcel``/``xcel`` to its right and its rowspan the
``ucel``/``xcel`` below it, cell text is HTML-escaped, and the table is written without whitespace.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["OTSL_TOKENS", "has_otsl", "otsl_to_html"]

#: Cells that carry text; ``<ched>``/``<rhed>``/``<srow>`` are DocTags' header and section cells.
_TEXT_CELLS = frozenset({"fcel", "ched", "rhed", "srow"})
#: Cells that start a (possibly spanning) cell of their own.
_ORIGIN_CELLS = _TEXT_CELLS | {"ecel"}
#: Continuations: merged into the cell to the left (l), above (u) or both (x).
_LEFT = frozenset({"lcel", "xcel"})
_UP = frozenset({"ucel", "xcel"})
#: Header cells, written as ``<th>`` as docling-core's HTML serializer writes them.
_HEADER_CELLS = frozenset({"ched", "rhed", "srow"})

OTSL_TOKENS: tuple[str, ...] = ("fcel", "ecel", "lcel", "ucel", "xcel", "nl", "ched", "rhed", "srow")
_TOKEN_RE = re.compile(r"<(" + "|".join(OTSL_TOKENS) + r")>")
#: Wrappers and DocTags location tokens, which carry no table content.
_NOISE_RE = re.compile(r"</?otsl>|<loc_\d+>")
#: A token cut off by the end of a truncated reply (``<fce``).
_CUT_TOKEN_RE = re.compile(r"<[a-z_]{0,5}$")


@dataclass(frozen=True, slots=True)
class _Cell:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class _Span:
    row: int
    col: int
    rowspan: int
    colspan: int
    cell: _Cell


def has_otsl(text: str) -> bool:
    """Whether ``text`` holds at least one OTSL cell token."""
    return any(m.group(1) != "nl" for m in _TOKEN_RE.finditer(text))


def otsl_to_html(otsl: str) -> str:
    """OTSL tokens → ``<table><tr><td>…</td></tr></table>`` with rowspan/colspan; ``""`` when there is no cell.

    A reply that is already an HTML table is returned as it is (mineru-vl-utils ``convert_otsl_to_html``).
    A truncated table keeps every row it has: a row cut short is padded with empty cells, and a token cut
    in half at the very end is ignored.
    """
    stripped = otsl.strip()
    if stripped.startswith("<table") and stripped.endswith("</table>"):
        return stripped
    rows = _pad(_rows(_CUT_TOKEN_RE.sub("", _NOISE_RE.sub("", stripped))))
    spans = _spans(rows)
    if not spans:
        return ""
    return _render(rows, spans)


def _rows(otsl: str) -> list[list[_Cell]]:
    """Split the token stream into rows; text after a token belongs to that token (ignored unless a text cell)."""
    rows: list[list[_Cell]] = []
    current: list[_Cell] = []
    matches = list(_TOKEN_RE.finditer(otsl))
    for i, match in enumerate(matches):
        kind = match.group(1)
        end = matches[i + 1].start() if i + 1 < len(matches) else len(otsl)
        if kind == "nl":
            if current:
                rows.append(current)
            current = []
            continue
        text = otsl[match.end() : end].strip() if kind in _TEXT_CELLS else ""
        current.append(_Cell(kind, text))
    if current:
        rows.append(current)
    return rows


def _pad(rows: list[list[_Cell]]) -> list[list[_Cell]]:
    """Pad every row with empty cells to the widest row, as both upstream converters do."""
    width = max((len(row) for row in rows), default=0)
    return [row + [_Cell("ecel", "")] * (width - len(row)) for row in rows]


def _spans(rows: list[list[_Cell]]) -> list[_Span]:
    """Each origin cell with the run of continuation cells to its right and below it."""
    spans: list[_Span] = []
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            if cell.kind not in _ORIGIN_CELLS:
                continue
            colspan = 1 + _run(row[c + 1 :], _LEFT)
            rowspan = 1 + _run([below[c] for below in rows[r + 1 :]], _UP)
            spans.append(_Span(r, c, rowspan, colspan, cell))
    return spans


def _run(cells: list[_Cell], kinds: frozenset[str]) -> int:
    """Length of the leading run of ``cells`` whose kind is in ``kinds``."""
    count = 0
    for cell in cells:
        if cell.kind not in kinds:
            break
        count += 1
    return count


def _render(rows: list[list[_Cell]], spans: list[_Span]) -> str:
    """Lay spans on the grid (a later span wins an overlap, as upstream) and write each cell at its origin.

    A grid position no span covers (a stray ``<lcel>`` in the first column) becomes an empty ``<td>``,
    as in upstream's ``TableData.grid``.
    """
    n_rows, n_cols = len(rows), len(rows[0])
    owner: list[list[_Span | None]] = [[None] * n_cols for _ in range(n_rows)]
    for span in spans:
        for i in range(span.row, min(span.row + span.rowspan, n_rows)):
            for j in range(span.col, min(span.col + span.colspan, n_cols)):
                owner[i][j] = span
    out = ["<table>"]
    for i in range(n_rows):
        out.append("<tr>")
        for j in range(n_cols):
            here = owner[i][j]
            if here is None:
                out.append("<td></td>")
            elif (here.row, here.col) == (i, j):
                out.append(_cell_html(here))
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _cell_html(span: _Span) -> str:
    tag = "th" if span.cell.kind in _HEADER_CELLS else "td"
    attrs = (f' rowspan="{span.rowspan}"' if span.rowspan > 1 else "") + (f' colspan="{span.colspan}"' if span.colspan > 1 else "")
    return f"<{tag}{attrs}>{html.escape(span.cell.text)}</{tag}>"
