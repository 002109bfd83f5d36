"""PaddleOCR-VL whole-page and per-block replies → Markdown (tracr/adapters/parsers/paddleocr_vl.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.test_parsers_otsl import cell, grid_widths
from tracr.adapters.parsers import paddleocr_vl
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "paddleocr_vl"


def read(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --- whole page ---------------------------------------------------------------------------------------------


def test_newlines_normalised_like_the_ocr_handler() -> None:
    parsed = paddleocr_vl.parse("Line one\nLine two\n\nLine three\n")
    assert parsed.markdown == "Line one\n\nLine two\n\nLine three"
    assert parsed.meta == {"repetition_truncated": False, "tables": 0}
    assert parsed.dropped == ()


def test_inline_delimiters_rewritten_and_dollars_removed() -> None:
    assert paddleocr_vl.parse("Energy \\(E\\) costs $5").markdown == "Energy  $ E $ costs 5"


def test_display_delimiters_rewritten() -> None:
    assert paddleocr_vl.parse("see\n\\[x^2\\]\nend").markdown == "see\n\n $$ x^2 $$ \n\nend"
    assert paddleocr_vl.parse("\\[\\[x\\]\\]").markdown == "$$ x $$"


def test_no_delimiter_pair_leaves_dollars() -> None:
    assert paddleocr_vl.parse("cost $5 and \\( alone").markdown == "cost $5 and \\( alone"


def test_otsl_in_text_becomes_a_table() -> None:
    parsed = paddleocr_vl.parse("Before\n<fcel>a<fcel>b<nl><fcel>1<fcel>2<nl>\nAfter")
    assert parsed.markdown == "Before\n\n<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>\n\nAfter"
    assert parsed.meta["tables"] == 1


def test_lone_nl_token_is_not_a_table() -> None:
    assert paddleocr_vl.parse("a <nl> b").markdown == "a <nl> b"


def test_full_page() -> None:
    parsed = paddleocr_vl.parse(read("page.txt"))
    md = parsed.markdown
    assert parsed.meta == {"repetition_truncated": False, "tables": 1}
    assert parsed.dropped == ()
    # a whole-page block has no layout labels: running head, footer and page number stay, whatever keep_furniture says
    assert md.startswith("Journal of Materials Recycling, Vol. 14 (2024) 211–229\n\n3. Results and discussion\n\n")
    assert md.endswith("© 2024 The Authors. Published under a CC BY 4.0 licence.\n\n217")
    assert paddleocr_vl.parse(read("page.txt"), keep_furniture=True) == parsed
    assert "The thermal conductivity  $ k $ of the recycled alloys" in md
    assert "\n\n $$ k = \\alpha \\rho c_p $$ \n\n" in md
    assert "costs 120 per tonne" in md  # PaddleX removes every $ once the text holds \( \) or \[ \]
    assert "\\(" not in md and "\\[" not in md and "<fcel>" not in md and "<nl>" not in md
    assert "\n\n\n" not in md
    assert len(md.split()) > 250


def test_full_page_table() -> None:
    md = paddleocr_vl.parse(read("page.txt")).markdown
    (table,) = [part for part in md.split("\n\n") if part.startswith("<table>")]
    assert table.endswith("</table>")
    assert cell(table, "Alloy")[2:] == (2, 1)
    assert cell(table, "k (W/m·K)")[2:] == (1, 2)
    assert cell(table, "A356")[2:] == (3, 1)
    assert grid_widths(table) == [5] * 7


def test_truncated_page_keeps_the_cut_table() -> None:
    parsed = paddleocr_vl.parse(read("truncated.txt"))
    assert parsed.markdown.startswith("3. Results and discussion\n\nThe thermal conductivity  $ k $")
    assert parsed.markdown.endswith("<tr><td>A356</td><td>3</td><td>14</td></tr></table>")


def test_repeating_reply_truncated() -> None:
    parsed = paddleocr_vl.parse(read("repetitive.txt"))
    assert parsed.markdown == "Specimens were measured five times and the mean value is reported."
    assert parsed.meta["repetition_truncated"] is True


@pytest.mark.parametrize("reply", ["", "  \n "])
def test_empty_reply_is_a_format_error(reply: str) -> None:
    with pytest.raises(ReplyFormatError) as err:
        paddleocr_vl.parse(reply)
    assert err.value.reason == "empty reply"


# --- truncate_repetitive_content ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "min_count", "expected"),
    [
        ("ab" * 20, 50, "ab" * 20),  # shorter than min_count: untouched
        ("xyz" * 20, 50, "xyz"),  # one unit repeated
        ("The measured values are listed below. " + "la la la " * 20, 50, "The measured values are listed below."),
        ("ab" * 100, 50, ""),  # PaddleX keeps the (empty) prefix before a repeating suffix
        ("\n".join(["row"] * 9 + ["other"]), 10, "\n".join(["row"] * 9 + ["other"])),  # 9 < line_threshold
        ("\n".join(["row"] * 12 + ["other"] * 2), 10, "row"),
        ("\n".join(["row"] * 10 + ["other"] * 4), 10, "\n".join(["row"] * 10 + ["other"] * 4)),  # 10/14 < 80 %
    ],
)
def test_truncate_repetitive_content(content: str, min_count: int, expected: str) -> None:
    assert paddleocr_vl.truncate_repetitive_content(content, min_count=min_count) == expected


# --- blocks -------------------------------------------------------------------------------------------------


def test_table_block() -> None:
    html = paddleocr_vl.parse_block("table", read("table_block.otsl"))
    assert cell(html, "Alloy")[2:] == (2, 1)
    assert cell(html, "A356")[2:] == (2, 1)
    assert grid_widths(html) == [5, 5, 5, 5]


def test_table_block_without_otsl_kept_as_is() -> None:
    assert paddleocr_vl.parse_block("table", "  not a table ") == "not a table"


def test_table_block_long_repetition_not_checked_below_5000_chars() -> None:
    looping = "<fcel>x<nl>" * 300  # 3300 characters: the table threshold is 5000
    assert paddleocr_vl.parse_block("table", looping).count("<tr>") == 300


@pytest.mark.parametrize(
    ("label", "reply", "markdown"),
    [
        ("formula", "\\[E = mc^2\\]", "$$ E = mc^2 $$"),
        ("display_formula", "$$E = mc^2$$", "$$E = mc^2$$"),
        ("formula_number", "\\((1)\\)", "(1)"),
        ("doc_title", "Recycled alu-\nminium alloys", "# Recycled aluminium alloys"),
        ("text", "one\ntwo", "one\n\ntwo"),
        (
            "chart",
            "Year | Sales\n2023 | 5",
            "<table><thead><tr><th>Year</th><th>Sales</th></tr></thead><tbody><tr><td>2023</td><td>5</td></tr></tbody></table>",
        ),
    ],
)
def test_parse_block(label: str, reply: str, markdown: str) -> None:
    assert paddleocr_vl.parse_block(label, reply) == markdown


def test_task_prompts() -> None:
    assert paddleocr_vl.TASK_PROMPTS == {
        "ocr": "OCR:",
        "table": "Table Recognition:",
        "formula": "Formula Recognition:",
        "chart": "Chart Recognition:",
    }


@pytest.mark.parametrize(
    ("label", "chart", "prompt"),
    [
        ("text", False, "OCR:"),
        ("paragraph_title", False, "OCR:"),
        ("table", False, "Table Recognition:"),
        ("display_formula", False, "Formula Recognition:"),
        ("formula_number", False, "OCR:"),
        ("chart", False, None),
        ("chart", True, "Chart Recognition:"),
        ("image", False, None),
        ("header_image", False, None),
    ],
)
def test_prompt_for_label(label: str, chart: bool, prompt: str | None) -> None:
    assert paddleocr_vl.prompt_for_label(label, use_chart_recognition=chart) == prompt
