"""DeepSeek-OCR grounding replies: run_dpsk_ocr_pdf.py's conversion, EOS, and tracr's furniture rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracr.adapters.parsers import deepseek_grounding
from tracr.adapters.parsers.deepseek_grounding import EOS

FIXTURES = Path(__file__).parent / "fixtures" / "deepseek"
HEADER = "JOURNAL OF APPLIED HYDROLOGY, VOL. 12, NO. 3 (2024)"
FOOTER = "Copyright 2024 Applied Hydrology Society. All rights reserved."


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _tag(label: str, box: str = "10, 10, 500, 40") -> str:
    return f"<|ref|>{label}<|/ref|><|det|>[[{box}]]<|/det|>\n"


SMALL = (
    _tag("header")
    + "Annual Report 2024\n\n"
    + _tag("title")
    + "# Title\n\n"
    + _tag("text")
    + "We set $a \\coloneqq b$ and $c \\eqqcolon d$.\n\n\n\n"
    + _tag("image", "10, 100, 900, 400")
    + "\n\n"
    + _tag("image_caption")
    + "<center>Figure 1: A map.</center>\n\n"
    + _tag("image", "10, 500, 900, 700")
    + "\n"
    + _tag("page_number")
    + "12"
    + EOS
)


def test_small_page_exact() -> None:
    parsed = deepseek_grounding.parse(SMALL)
    assert parsed.markdown == "# Title\n\nWe set $a := b$ and $c =: d$.\n\n![](images/0.jpg)\n\nFigure 1: A map.\n\n![](images/1.jpg)"
    assert dict(parsed.meta) == {"eos": True}
    assert parsed.dropped == ("page_header", "page_number")


def test_keep_furniture_keeps_their_text() -> None:
    parsed = deepseek_grounding.parse(SMALL, keep_furniture=True)
    assert parsed.markdown.startswith("Annual Report 2024\n\n# Title")
    assert parsed.markdown.endswith("![](images/1.jpg)\n\n12")
    assert parsed.dropped == ()


def test_full_page() -> None:
    parsed = deepseek_grounding.parse(_fixture("full_page.mmd"))
    markdown = parsed.markdown
    assert dict(parsed.meta) == {"eos": True}
    assert parsed.dropped == ("page_header", "page_footer", "page_number")
    assert HEADER not in markdown and FOOTER not in markdown and not markdown.endswith("217")
    for debris in ("<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "[[", EOS, "<center>", "\\coloneqq"):
        assert debris not in markdown
    assert markdown.startswith("## 4. Results and Discussion\n\nDischarge at the four")
    assert "<tr><td>D (Outlet)</td><td>1,364</td><td>41.2</td><td>163.7</td></tr></table>" in markdown
    assert "\\[\nQ = \\frac{1}{n} A R^{2/3} S^{1/2}\n\\]" in markdown
    assert "\\(R := A/P\\)" in markdown
    assert "\n\n![](images/0.jpg)\n\nFigure 3: Daily discharge at Station D, 2019-2023.\n\n" in markdown
    assert "\n\n\n" not in markdown
    kept = deepseek_grounding.parse(_fixture("full_page.mmd"), keep_furniture=True).markdown
    assert kept.startswith(HEADER + "\n\n## 4.")
    assert kept.endswith(f"{FOOTER}\n\n217")


def test_missing_eos_is_reported_and_dangling_tags_removed() -> None:
    parsed = deepseek_grounding.parse(_fixture("no_eos.mmd"))
    assert parsed.meta["eos"] is False
    assert not deepseek_grounding.has_eos(_fixture("no_eos.mmd"))
    assert deepseek_grounding.has_eos(_fixture("full_page.mmd"))
    assert "<|" not in parsed.markdown and "[[73" not in parsed.markdown
    assert parsed.markdown.endswith("the the the the")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("", ""),
        ("Free OCR text with no tags.", "Free OCR text with no tags."),
        ("<|ref|>text<|/ref|>Alone", "Alone"),
        ("<|det|>[[1, 2, 3, 4]]<|/det|>No ref", "No ref"),
        ("Text\n<|ref|>table<|/ref|><|det|>[[1, 2", "Text"),
        ("A\n\n\n\n\n\nB", "A\n\nB"),
        (_tag("Header") + "Case kept? no\n\n" + _tag("text") + "Body", "Body"),
    ],
)
def test_edge_cases(reply: str, expected: str) -> None:
    assert deepseek_grounding.parse(reply).markdown == expected
