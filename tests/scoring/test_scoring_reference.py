"""Reference scoring: edit distances worked out by hand, TEDS (also against ``apted``), reading order."""

from __future__ import annotations

import random

import pytest

from tracr.scoring.reference import (
    char_edit_distance,
    corpus_char_ned,
    kendall_tau,
    reading_order,
    score_page,
    table_scores,
    word_edit_distance,
)
from tracr.scoring.teds import TableTree, tables_as_trees, teds, tree_edit_distance

MD = "| Site | pH |\n|---|---|\n| A | 7.1 |\n| B | 7.9 |\n"
HTML = "<table><thead><tr><th>Site</th><th>pH</th></tr></thead><tbody><tr><td>A</td><td>7.1</td></tr><tr><td>B</td><td>7.9</td></tr></tbody></table>"


def test_char_edit_distance_is_levenshtein_over_cleaned_text() -> None:
    assert (char_edit_distance("kitten", "sitting").distance, char_edit_distance("kitten", "sitting").length) == (3, 7)
    assert char_edit_distance("kitten", "sitting").ned == pytest.approx(3 / 7)
    # Punctuation, whitespace and tags are not text.
    assert char_edit_distance("Hello,  world!", "Hello world").distance == 0
    assert char_edit_distance("<b>abc</b>", "abc").distance == 0
    assert char_edit_distance("", "").ned == 0.0
    assert char_edit_distance("", "abcd").ned == 1.0


def test_word_edit_distance_counts_words() -> None:
    d = word_edit_distance("the cat sat down", "the dog sat")
    assert (d.distance, d.length) == (2, 4)
    assert word_edit_distance("**Bold** words", "Bold words").distance == 0


def test_corpus_ned_weights_long_pages() -> None:
    short = score_page("ab", "ax")  # 1 edit over 2
    long = score_page("a" * 98, "a" * 100)  # 2 edits over 100
    assert corpus_char_ned([short, long]) == pytest.approx(3 / 102)
    assert (short.char_ned + long.char_ned) / 2 == pytest.approx(0.26)


def test_markdown_and_html_renderings_of_a_table_are_the_same_tree() -> None:
    (md,) = tables_as_trees(MD)
    (html,) = tables_as_trees(HTML)
    assert md.size() == html.size() == 1 + 3 + 6
    assert teds(md, html) == 1.0


def test_teds_colspan_and_text_changes() -> None:
    (a,) = tables_as_trees("<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>")
    (b,) = tables_as_trees("<table><tr><td>a</td><td>b</td></tr><tr><td colspan='2'>12</td></tr></table>")
    # 7 nodes vs 6: one cell deleted, the other renamed across a colspan change (cost 1).
    assert tree_edit_distance(a, b) == 2
    assert teds(a, b) == pytest.approx(1 - 2 / 7)
    (c,) = tables_as_trees("<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>X</td></tr></table>")
    assert teds(a, c) == pytest.approx(1 - 1 / 7)  # one cell's text fully replaced
    assert teds(a, c, structure_only=True) == 1.0


def test_page_table_scores_pair_tables_and_penalise_missing_ones() -> None:
    two = MD + "\nText\n\n" + "<table><tr><td>x</td></tr></table>"
    score = table_scores(prediction=MD, reference=two)
    assert (score.reference_tables, score.predicted_tables) == (2, 1)
    assert score.per_table[0][0] == 1.0 and score.per_table[1] == (0.0, 0.0)
    assert score.teds == pytest.approx(0.5)
    assert table_scores("no tables", "none either").teds is None


def test_kendall_tau_and_reading_order() -> None:
    assert kendall_tau([0, 1, 2, 3]) == 1.0
    assert kendall_tau([3, 2, 1, 0]) == -1.0
    assert kendall_tau([1, 0, 2]) == pytest.approx(1 / 3)
    ref = "First paragraph here\nSecond paragraph here\nThird paragraph there"
    same = reading_order(ref, ref)
    assert (same.kendall_tau, same.order_ned, same.matched) == (1.0, 0.0, 3)
    swapped = reading_order("Second paragraph here\nFirst paragraph here\nThird paragraph there", ref)
    assert swapped.kendall_tau == pytest.approx(1 / 3)
    assert swapped.order_ned == pytest.approx(2 / 3)
    missing = reading_order("Totally different words", ref)
    assert missing.matched == 0 and missing.kendall_tau is None


def test_score_page_reports_sub_scores_and_composite() -> None:
    ref = "# Title\n\nSome text.\n\n" + HTML
    pred = "# Title\n\nSome txt.\n\n" + MD
    score = score_page(pred, ref)
    assert score.chars.distance == 1
    assert score.tables.teds == 1.0
    assert score.composite == pytest.approx(((1 - score.char_ned) + 1.0) / 2)


def _random_tree(rng: random.Random) -> TableTree:
    rows = []
    for _ in range(rng.randint(1, 4)):
        cells = [TableTree("td", rng.choice(["a", "ab", "b", ""]), 1, rng.choice([1, 1, 2])) for _ in range(rng.randint(1, 4))]
        rows.append(TableTree("tr", children=cells))
    return TableTree("table", children=rows)


def test_zhang_shasha_agrees_with_apted() -> None:
    apted = pytest.importorskip("apted", reason="apted not installed (pip install apted) for the cross-check")
    from rapidfuzz.distance import Levenshtein

    class Config(apted.Config):  # type: ignore[misc, name-defined]
        def rename(self, x: TableTree, y: TableTree) -> float:
            if x.tag != y.tag or x.colspan != y.colspan or x.rowspan != y.rowspan:
                return 1.0
            if x.tag == "td" and (x.text or y.text):
                return float(Levenshtein.normalized_distance(x.text, y.text))
            return 0.0

        def children(self, node: TableTree) -> list[TableTree]:
            return node.children

    rng = random.Random(7)
    for _ in range(60):
        a, b = _random_tree(rng), _random_tree(rng)
        expected = apted.APTED(a, b, Config()).compute_edit_distance()
        assert tree_edit_distance(a, b) == pytest.approx(expected)
