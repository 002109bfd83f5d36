"""Nanonets-OCR replies: page numbers and watermarks as furniture, image and signature tags made plain."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracr.adapters.parsers import nanonets

FIXTURES = Path(__file__).parent / "fixtures" / "nanonets"
HEADER = "JOURNAL OF APPLIED HYDROLOGY, VOL. 12, NO. 3 (2024)"
WATERMARK = "DRAFT - NOT FOR DISTRIBUTION"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_page_number_dropped_exact() -> None:
    parsed = nanonets.parse("Total: 5\n\n<page_number>14</page_number>\n")
    assert parsed.markdown == "Total: 5"
    assert parsed.dropped == ("page_number",)
    assert dict(parsed.meta) == {"page_numbers": ["14"], "watermarks": []}


def test_furniture_unwrapped_when_kept() -> None:
    reply = "<watermark>OFFICIAL COPY</watermark>\n\nTotal: 5\n\n<page_number>9/22</page_number>"
    parsed = nanonets.parse(reply, keep_furniture=True)
    assert parsed.markdown == "OFFICIAL COPY\n\nTotal: 5\n\n9/22"
    assert parsed.dropped == ()
    assert dict(parsed.meta) == {"page_numbers": ["9/22"], "watermarks": ["OFFICIAL COPY"]}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("<img>A [red] bar chart\nof sales</img>", "![A \\[red\\] bar chart of sales](image)"),
        ("Signed: <signature>J. Okafor</signature>", "Signed: J. Okafor"),
        ("☑ Yes ☐ No ☒ Void", "☑ Yes ☐ No ☒ Void"),
        ("<table><tr><td>$x$</td></tr></table>", "<table><tr><td>$x$</td></tr></table>"),
        ("Page <page_number>3</page_number> of the report", "Page  of the report"),
        ("Text\n\n<page_number>3</page_number>\n\nMore", "Text\n\nMore"),
        ("Cut <img>half a descr", "Cut half a descr"),
        ("", ""),
    ],
)
def test_tags(reply: str, expected: str) -> None:
    assert nanonets.parse(reply).markdown == expected


def test_full_page() -> None:
    parsed = nanonets.parse(_fixture("full_page.md"))
    markdown = parsed.markdown
    assert parsed.dropped == ("watermark", "page_number")
    assert dict(parsed.meta) == {"page_numbers": ["217/240"], "watermarks": [WATERMARK]}
    assert WATERMARK not in markdown and "217/240" not in markdown
    for tag in ("<img>", "</img>", "<signature>", "<watermark>", "<page_number>"):
        assert tag not in markdown
    assert "![Line chart of daily discharge at Station D from 2019 to 2023 with a peak every May](image)" in markdown
    assert "<tr><td>D (Outlet)</td><td>1,364</td><td>41.2</td><td>163.7</td></tr></tbody></table>" in markdown
    assert "$$\nQ = \\frac{1}{n} A R^{2/3} S^{1/2}\n$$" in markdown
    assert "☑ Data reviewed by the basin authority\n☐ Approved for public release" in markdown
    assert "Prepared by: J. Okafor" in markdown
    # Nanonets has no header tag: a running header stays as text.
    assert markdown.startswith(HEADER)
    kept = nanonets.parse(_fixture("full_page.md"), keep_furniture=True).markdown
    assert WATERMARK in kept and kept.endswith("217/240")


def test_truncated_reply_leaves_no_tag() -> None:
    markdown = nanonets.parse(_fixture("truncated.md")).markdown
    assert "<img>" not in markdown
    assert markdown.endswith("\n\nLine chart of daily disch")
