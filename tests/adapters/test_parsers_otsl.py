"""OTSL → HTML tables (tracr/adapters/parsers/otsl.py), as MinerU's otsl2html and PaddleX's convert_otsl_to_html."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tracr.adapters.parsers.otsl import has_otsl, otsl_to_html

FIXTURES = Path(__file__).parent / "fixtures" / "otsl"


class _TableReader(HTMLParser):
    """Rows of (tag, text, rowspan, colspan) from an HTML table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str, int, int]]] = []
        self._cell: list[object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            spans = dict(attrs)
            self._cell = [tag, "", int(spans.get("rowspan") or 1), int(spans.get("colspan") or 1)]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1] = str(self._cell[1]) + data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            tag_, text, rowspan, colspan = self._cell
            self.rows[-1].append((str(tag_), str(text), int(str(rowspan)), int(str(colspan))))
            self._cell = None


def table_rows(html: str) -> list[list[tuple[str, str, int, int]]]:
    """The cells of each row of ``html``'s table."""
    reader = _TableReader()
    reader.feed(html)
    return reader.rows


def grid_widths(html: str) -> list[int]:
    """How many grid columns each row covers, counting cells that reach down from rows above."""
    rows = table_rows(html)
    covered = [0] * (len(rows) + 50)
    widths = []
    for r, row in enumerate(rows):
        width = covered[r]
        for _tag, _text, rowspan, colspan in row:
            width += colspan
            for below in range(r + 1, r + rowspan):
                covered[below] += colspan
        widths.append(width)
    return widths


def not_table_markup(text: str) -> str:
    """``text`` without table tags (with their span attributes): any other tag is left in it."""
    return re.sub(r'</?(?:table|tr|td|th)(?: (?:rowspan|colspan)="\d+")*>', "", text)


def cell(html: str, text: str) -> tuple[str, str, int, int]:
    """The one cell whose text is ``text``."""
    found = [c for row in table_rows(html) for c in row if c[1] == text]
    assert len(found) == 1, (text, found)
    return found[0]


def test_plain_grid() -> None:
    assert (
        otsl_to_html("<fcel>A<fcel>B<nl><fcel>1<fcel>2<nl>") == "<table><tr><td>A</td><td>B</td></tr><tr><td>1</td><td>2</td></tr></table>"
    )


def test_colspan_from_lcel() -> None:
    assert (
        otsl_to_html("<fcel>k<lcel><nl><fcel>a<fcel>b<nl>") == '<table><tr><td colspan="2">k</td></tr><tr><td>a</td><td>b</td></tr></table>'
    )


def test_rowspan_from_ucel() -> None:
    assert (
        otsl_to_html("<fcel>A<fcel>x<nl><ucel><fcel>y<nl>") == '<table><tr><td rowspan="2">A</td><td>x</td></tr><tr><td>y</td></tr></table>'
    )


def test_both_spans_from_xcel() -> None:
    html = otsl_to_html("<fcel>N<lcel><fcel>c<nl><ucel><xcel><fcel>d<nl>")
    assert html == '<table><tr><td rowspan="2" colspan="2">N</td><td>c</td></tr><tr><td>d</td></tr></table>'


def test_xcel_to_the_right_widens_like_lcel() -> None:
    # upstream counts both lcel and xcel to the right of a cell (count_right)
    assert otsl_to_html("<fcel>N<xcel><nl>") == '<table><tr><td colspan="2">N</td></tr></table>'


def test_empty_cell_and_text_escaped() -> None:
    assert otsl_to_html("<fcel>a < b & c<ecel><nl>") == "<table><tr><td>a &lt; b &amp; c</td><td></td></tr></table>"


def test_short_row_padded_with_empty_cells() -> None:
    html = otsl_to_html("<fcel>A<fcel>B<fcel>C<nl><fcel>1<nl>")
    assert html == "<table><tr><td>A</td><td>B</td><td>C</td></tr><tr><td>1</td><td></td><td></td></tr></table>"


def test_stray_continuation_becomes_an_empty_cell() -> None:
    assert otsl_to_html("<lcel><fcel>a<nl>") == "<table><tr><td></td><td>a</td></tr></table>"


def test_truncated_table_closes_what_it_has() -> None:
    html = otsl_to_html("<fcel>A<fcel>B<nl><fcel>1<fc")
    assert html == "<table><tr><td>A</td><td>B</td></tr><tr><td>1</td><td></td></tr></table>"


def test_last_row_without_nl_is_kept() -> None:
    assert otsl_to_html("<fcel>A<nl><fcel>B") == "<table><tr><td>A</td></tr><tr><td>B</td></tr></table>"


@pytest.mark.parametrize("text", ["", "no table here", "<nl><nl>", "<lcel><nl>"])
def test_no_cell_gives_nothing(text: str) -> None:
    assert otsl_to_html(text) == ""


def test_html_table_is_passed_through() -> None:
    html = "<table><tr><td>done</td></tr></table>"
    assert otsl_to_html(html) == html


def test_has_otsl() -> None:
    assert has_otsl("x <fcel>a")
    assert not has_otsl("a<nl>b")
    assert not has_otsl("<table></table>")


def test_fixture_table_spans() -> None:
    html = otsl_to_html((FIXTURES / "spans.otsl").read_text(encoding="utf-8"))
    assert html.startswith("<table><tr>") and html.endswith("</tr></table>")
    assert not_table_markup(html) == "".join(c[1] for row in table_rows(html) for c in row)
    assert cell(html, "Alloy") == ("td", "Alloy", 2, 1)
    assert cell(html, "k (W/m·K)") == ("td", "k (W/m·K)", 1, 2)
    assert cell(html, "A356") == ("td", "A356", 3, 1)
    assert cell(html, "AlSi10Mg") == ("td", "AlSi10Mg", 2, 1)
    assert cell(html, "Not measured") == ("td", "Not measured", 2, 3)
    assert grid_widths(html) == [5] * 9


def test_fixture_truncated_table() -> None:
    html = otsl_to_html((FIXTURES / "truncated.otsl").read_text(encoding="utf-8"))
    assert grid_widths(html) == [5, 5, 5, 5]
    assert cell(html, "A356")[2] == 2  # the ucel below it arrived before the cut
    assert table_rows(html)[-1][-3:] == [("td", "0.31", 1, 1), ("td", "", 1, 1), ("td", "", 1, 1)]


def test_fixture_doctags_header_cells() -> None:
    html = otsl_to_html((FIXTURES / "doctags_table.otsl").read_text(encoding="utf-8"))
    assert html == (
        "<table><tr><th>Quarter</th><th>Revenue</th><th>Margin</th></tr>"
        '<tr><th colspan="3">Europe</th></tr>'
        "<tr><th>Q1</th><td>1,204</td><td>12 %</td></tr>"
        "<tr><th>Q2</th><td>1,318 &amp; rising</td><td></td></tr></table>"
    )
