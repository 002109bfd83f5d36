"""text_diff: the Compare page's diff views, including hostile text staying inert."""

from __future__ import annotations

from markdown_it import MarkdownIt

from tracr.review.text_diff import diff_stats, escape_markdown_text, inline_diff_markdown, unified_diff, word_opcodes


def test_stats_count_changed_lines_and_similarity() -> None:
    left = "Total: 100\nDate: 2024-01-01\nSigned"
    right = "Total: 100\nDate: 2024-01-07\nSigned\nPage 2"
    stats = diff_stats(left, right)
    assert (stats.lines_left, stats.lines_right) == (3, 4)
    assert (stats.lines_removed, stats.lines_added) == (1, 2)
    assert 0.8 < stats.similarity < 1.0
    assert not stats.identical
    assert diff_stats("same", "same").identical and diff_stats("same", "same").similarity == 1.0
    assert diff_stats("", "").similarity == 1.0


def test_unified_diff_marks_lines() -> None:
    out = unified_diff("a\nb\nc", "a\nB\nc", "model-x", "model-y")
    assert out.splitlines()[:2] == ["--- model-x", "+++ model-y"]
    assert "-b" in out.splitlines() and "+B" in out.splitlines()
    assert unified_diff("same", "same") == ""


def test_word_opcodes_find_the_changed_word() -> None:
    ops = word_opcodes("the quick brown fox", "the quick red fox")
    changed = [(op, a, b) for op, a, b in ops if op != "equal"]
    assert changed == [("replace", "brown", "red")]


def test_inline_diff_highlights_and_escapes() -> None:
    md = inline_diff_markdown("Total <b>1</b>", "Total <script>alert(1)</script> ![x](http://e/x.png)")
    assert ":red-background[" in md and ":green-background[" in md
    html = MarkdownIt("commonmark", {"html": True}).render(md)
    assert "<script" not in html and "<b>" not in html and "<img" not in html
    assert "script" in html and "alert" in html and "http://e/x.png" in html  # shown as text


def test_escape_keeps_text_literal() -> None:
    renderer = MarkdownIt("commonmark", {"html": True})
    for text in ["# not a heading", "1. not a list", "[x](javascript:alert(1))", "    not code", "*not em*", ":material/home: :red[x]"]:
        html = renderer.render(escape_markdown_text(text))
        assert html.startswith("<p>"), (text, html)
        assert "<a " not in html and "<em>" not in html


def test_inline_diff_keeps_paragraphs() -> None:
    md = inline_diff_markdown("# Title\n\nRevenue grew\n\nOutlook", "Title\n\nRevenue grw\n\nOutlook")
    html = MarkdownIt("commonmark").render(md)
    assert html.count("<p>") == 3, html
