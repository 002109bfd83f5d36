"""HTML in OCR output written as plain Markdown, the same way whichever model wrote it."""

from __future__ import annotations

import pytest

from tracr.documents.plain_markdown import plain_markdown, subscript, superscript

PYMUPDF4LLM_PICTURE = (
    "Text before.\n\n<!-- Start of picture text -->\nActivity Affordance<br>RNN<br>t-1 t t+1<br><!-- End of picture text -->\n\nFigure 1"
)


def test_comments_are_dropped_and_the_picture_text_kept_as_lines() -> None:
    out = plain_markdown(PYMUPDF4LLM_PICTURE)
    assert "<" not in out and "picture text" not in out
    assert "Activity Affordance\nRNN\nt-1 t t+1" in out
    assert out.startswith("Text before.") and out.rstrip().endswith("Figure 1")


def test_footnote_marks_become_unicode_the_same_way_for_every_model() -> None:
    # pymupdf4llm's <sup> and a model that already wrote Unicode read the same.
    assert plain_markdown("Ashesh Jain<sup>1,2</sup>, Amir Zamir<sup>2</sup>") == "Ashesh Jain¹,², Amir Zamir²"
    assert plain_markdown("H<sub>2</sub>SO<sub>4</sub> and x<SUP>n+1</SUP>") == "H₂SO₄ and xⁿ⁺¹"
    assert superscript("†") == "†" and superscript("q") == "q"  # no superscript q: the plain text
    assert subscript(" 10 ") == "₁₀"
    assert plain_markdown("10<sup>th</sup> and e<sup>iπ</sup>") == "10ᵗʰ and eiπ"


def test_inline_styles_become_markdown_or_plain_text() -> None:
    out = plain_markdown("<b> bold </b>, <strong>strong</strong>, <i>it</i>, <em>em</em>, <del>gone</del>, <code>x=1</code>")
    assert out == " **bold** , **strong**, *it*, *em*, ~~gone~~, `x=1`"
    assert plain_markdown("<u>under</u> <mark>hi</mark> <span style='color:red'>red</span> <font size=2>small</font>") == (
        "under hi red small"
    )
    assert plain_markdown("<b><i>both</i></b>") == "***both***"  # nested: innermost first
    assert plain_markdown("<p>one</p><p>two</p>").split() == ["one", "two"] and "\n\n" in plain_markdown("<p>one</p><p>two</p>")


def test_html_tables_become_pipe_tables() -> None:
    html = (
        "<table><caption>Prices</caption><thead><tr><th>item</th><th colspan='2'>price</th></tr></thead>"
        "<tr><td rowspan=2>paper</td><td>1 &lt; 2</td><td>a|b</td></tr><tr><td><b>bold</b></td><td>x<br>y</td></tr></table>"
    )
    out = plain_markdown("Before\n" + html + "\nAfter")
    assert "<table" not in out and "<td" not in out
    assert "Prices\n\n| item | price |  |\n|---|---|---|\n| paper | 1 &lt; 2 | a\\|b |\n|  | **bold** | x y |" in out
    assert out.startswith("Before\n") and out.endswith("After")


def test_line_break_tags_are_spaces_in_pipe_rows_and_breaks_elsewhere() -> None:
    assert plain_markdown("| a | b |\n|---|---|\n| one<br>two | x<BR />y |") == "| a | b |\n|---|---|\n| one two | x y |"
    assert plain_markdown("first<br/>second") == "first\nsecond"


def test_fences_stay_verbatim_and_other_tags_are_left_for_the_safety_pass() -> None:
    fenced = "```html\n<table><tr><td>1</td></tr></table>\n<!-- kept -->\n```"
    assert plain_markdown(fenced) == fenced
    hostile = "<img src=x onerror=alert(1)> <script>alert(1)</script> <iframe src='http://evil.test'></iframe>"
    assert plain_markdown(hostile) == hostile  # tracr.review.safe_markdown neutralises these


@pytest.mark.parametrize(
    "text",
    [
        PYMUPDF4LLM_PICTURE,
        "Jain<sup>1</sup> <table><tr><td>a</td></tr></table> <u>x</u> <br> | a<br>b |",
        "<!-- unclosed comment <sup>2</sup>",
        "<table><tr><td>no end",
    ],
)
def test_idempotent(text: str) -> None:
    once = plain_markdown(text)
    assert plain_markdown(once) == once


def test_text_without_html_is_returned_unchanged() -> None:
    for text in ("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |", "3 < 4 and x<y, but 5 > 4", "<<not a tag>>"):
        assert plain_markdown(text) == text
