"""Chandra layout HTML: parse_html's furniture and image rules, and parse_markdown's markdownify settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tracr.adapters.parsers import chandra_html
from tracr.adapters.replies import ReplyFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "chandra"
HEADER = "JOURNAL OF APPLIED HYDROLOGY, VOL. 12, NO. 3 (2024)"
FOOTER = "Copyright 2024 Applied Hydrology Society. All rights reserved."


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _div(label: str, inner: str) -> str:
    return f'<div data-bbox="0 0 100 100" data-label="{label}">{inner}</div>'


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (_div("Page-Header", "<p>Header</p>") + _div("Text", "a_b *c* costs $5"), "a\\_b \\*c\\* costs \\$5"),
        (_div("Text", "<p>Area <math>A = \\pi r_0^2</math> here.</p>"), "Area  $A = \\pi r_0^2$  here."),
        (_div("Equation-Block", '<math display="block">E = mc^2</math>'), "$$E = mc^2$$"),
        (
            _div("Section-Header", "<h2>Results</h2>") + _div("List-Group", "<ul><li>one</li><li>two</li></ul>"),
            "## Results\n\n- one\n- two",
        ),
        (_div("Text", "<p>H<sub>2</sub>O and x<sup>2</sup></p>"), "H<sub>2</sub>O and x<sup>2</sup>"),
        (_div("Table", '<table><tr><td colspan="2">a_b</td></tr></table>'), '<table><tr><td colspan="2">a_b</td></tr></table>'),
        (_div("Text", '<p>See <a href="https://x.org">ref [1]</a>.</p>'), "See [ref \\[1\\]](https://x.org)."),
        (_div("Code-Block", "<pre><code>a_b = 1</code></pre>"), "```\na_b = 1\n```"),
        ("<p>outside</p>" + _div("Text", "inside"), "inside"),
    ],
)
def test_small_replies_exact(reply: str, expected: str) -> None:
    assert chandra_html.parse(reply).markdown == expected


def test_images_get_chandras_file_name() -> None:
    reply = _div("Text", "x") + _div("Image", '<img alt="A map of the basin"/>') + _div("Figure", "")
    digest = hashlib.md5(reply.encode("utf-8")).hexdigest()
    assert chandra_html.parse(reply).markdown == f"x\n\n![A map of the basin]({digest}_2_img.webp)![]({digest}_3_img.webp)"


def test_furniture_dropped_then_kept() -> None:
    reply = _div("Page-Header", "<p>Head</p>") + _div("Text", "<p>Body</p>") + _div("Page-Footer", "<p>Foot 3</p>")
    parsed = chandra_html.parse(reply)
    assert (parsed.markdown, parsed.dropped, dict(parsed.meta)) == ("Body", ("page_header", "page_footer"), {"blocks": 3})
    kept = chandra_html.parse(reply, keep_furniture=True)
    assert (kept.markdown, kept.dropped) == ("Head\n\nBody\n\nFoot 3", ())


def test_full_page() -> None:
    parsed = chandra_html.parse(_fixture("full_page.html"))
    markdown = parsed.markdown
    assert parsed.dropped == ("page_header", "page_footer")
    assert dict(parsed.meta) == {"blocks": 12}
    assert HEADER not in markdown and FOOTER not in markdown
    for debris in ("<div", "data-bbox", "data-label", "<math", "<p>", "<h2>"):
        assert debris not in markdown
    assert markdown.startswith("## 4. Results and Discussion\n\nDischarge at the four gauging stations")
    assert "<tr><td>D (Outlet)</td><td>1,364</td><td>41.2</td><td>163.7</td></tr></tbody></table>" in markdown
    assert "$$Q = \\frac{1}{n} A R^{2/3} S^{1/2}$$" in markdown
    assert "where  $n$  is the Manning" in markdown
    assert "R<sub>h</sub> the hydraulic radius" in markdown
    assert "![Line chart of daily discharge at Station D from 2019 to 2023 with a peak every May](" in markdown
    kept = chandra_html.parse(_fixture("full_page.html"), keep_furniture=True).markdown
    assert kept.startswith(HEADER + "\n\n## 4.")
    assert kept.endswith(f"{FOOTER} 217")


@pytest.mark.parametrize("reply", ["", "Just text, no HTML.", "<p>A paragraph with no layout div.</p>"])
def test_no_layout_div_fails(reply: str) -> None:
    with pytest.raises(ReplyFormatError) as caught:
        chandra_html.parse(reply)
    assert caught.value.reason == "no layout div"


def test_has_repeat_follows_chandras_retry_rule() -> None:
    assert chandra_html.has_repeat(_fixture("repetition.html"))
    assert not chandra_html.has_repeat(_fixture("full_page.html"))
    assert not chandra_html.has_repeat("no div " * 40)  # no layout div: empty Markdown, as in Chandra
    # Only the Markdown counts: a header dropped by default does not trigger a retry.
    assert not chandra_html.has_repeat(_div("Page-Header", "ab" * 40) + _div("Text", "<p>Body text.</p>"))
