"""olmOCR-Bench tests in tracr: loading errors, per-type verdicts worked out by hand, repeats, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracr.scoring.bench_tests import (
    BaselineTest,
    BenchTestError,
    MathTest,
    OrderTest,
    PresenceTest,
    ScoringOptions,
    TableTest,
    candidate_outputs,
    extract_equations,
    load_test_lines,
    load_tests,
    parse_test,
    run_repeats,
    trailing_char_repeats,
)
from tracr.scoring.latex import latex_equivalent
from tracr.scoring.normalise import normalize_text

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = (FIXTURES / "outputs" / "good.md").read_text(encoding="utf-8")


def make(**fields: object) -> object:
    return parse_test({"pdf": "a.pdf", "page": 1, "id": "t", **fields})


def test_fixture_file_loads_every_type() -> None:
    tests = load_tests(FIXTURES / "bench_tests.jsonl")
    assert len(tests) == 38
    assert {type(t) for t in tests} == {PresenceTest, OrderTest, TableTest, BaselineTest}


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "present"}', "text", "missing"),
        ('{"pdf": "a.pdf", "page": "1", "id": "x", "type": "present", "text": "q"}', "page", "must be int"),
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "present", "text": "q", "max_diffs": -1}', "max_diffs", "0 or more"),
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "present", "text": "q", "case_sensitive": "no"}', "case_sensitive", "bool"),
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "present", "text": "   "}', "text", "empty"),
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "wrong"}', "type", "unknown test type"),
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "order", "before": "ab", "after": "abcdef", "max_diffs": 2}', "max_diffs", "half"),
        ('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "table", "cell": "a", "colour": "red"}', "colour", "not a field"),
        ('{"pdf": "", "page": 1, "id": "x", "type": "baseline"}', "pdf", "empty"),
    ],
)
def test_malformed_line_names_file_line_and_field(line: str, field: str, fragment: str) -> None:
    good = '{"pdf": "a.pdf", "page": 1, "id": "ok", "type": "baseline"}'
    with pytest.raises(BenchTestError) as caught:
        load_test_lines(["", good, line], source="cat.jsonl")
    err = caught.value
    assert (err.source, err.line, err.field_name) == ("cat.jsonl", 3, field)
    assert fragment in str(err) and "cat.jsonl:3" in str(err)


def test_invalid_json_and_duplicate_ids_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "baseline"}\n{"pdf": \n')
    with pytest.raises(BenchTestError, match=r"t\.jsonl:2: not valid JSON"):
        load_tests(path)
    path.write_text('{"pdf": "a.pdf", "page": 1, "id": "x", "type": "baseline"}\n' * 2)
    with pytest.raises(BenchTestError, match="duplicate id 'x' \\(first on line 1\\)"):
        load_tests(path)
    assert isinstance(parse_test({"pdf": "a.pdf", "page": 1, "id": "x", "type": "baseline", "extra": 1}, allow_unknown=True), BaselineTest)


def test_presence_threshold_follows_max_diffs() -> None:
    query = "The treatment plant processed 4.2 million litres"  # 48 characters
    # Three deletions; partial_ratio of the best window is about 0.947, above 1 - 3/48 = 0.9375.
    typo = "Intro. The treatmnt plant procesed 4.2 milion litres. More."
    strict = make(type="present", text=query, max_diffs=0)
    loose = make(type="present", text=query, max_diffs=3)
    assert isinstance(strict, PresenceTest) and isinstance(loose, PresenceTest)
    assert strict.run(typo)[0] is False
    assert loose.run(typo)[0] is True
    assert strict.run(f"intro {query} outro")[0] is True


def test_presence_window_and_case() -> None:
    head = make(type="present", text="Annual", first_n=10)
    tail = make(type="absent", text="Annual", last_n=10)
    text = "Annual report " + "x" * 100
    assert isinstance(head, PresenceTest) and isinstance(tail, PresenceTest)
    assert head.run(text)[0] and tail.run(text)[0]
    assert not head.run("x" * 100 + " Annual")[0]
    insensitive = make(type="present", text="ANNUAL REPORT", case_sensitive=False)
    assert isinstance(insensitive, PresenceTest) and insensitive.run(text)[0]
    assert not make_presence("ANNUAL REPORT").run(text)[0]


def make_presence(text: str, kind: str = "present") -> PresenceTest:
    test = make(type=kind, text=text)
    assert isinstance(test, PresenceTest)
    return test


def test_issue_461_near_empty_output_passes_by_default_and_fails_when_strict() -> None:
    test = make_presence("The quick brown fox jumps")
    assert test.run("The") == (True, "")  # olmOCR's behaviour, reproduced
    strict = ScoringOptions(strict_present=True)
    passed, why = test.run("The", strict)
    assert not passed and "best match ratio" in why
    assert test.run("Then The quick brown fox jumps over", strict)[0]
    absent = make_presence("Confidential draft", "absent")
    assert not absent.run("Con")[0]
    assert absent.run("Con", strict)[0]


def test_normalisation_lets_typography_and_emphasis_match() -> None:
    test = make_presence("the \u201cbest\u201d year \u2014 so far")
    assert test.run('**the** "best" year - so far')[0]
    assert normalize_text("a<br>b\n\n  c") == "a b c"
    assert normalize_text("snake_case_name") == "snakecasename"


def test_order_exact_and_reversed() -> None:
    order = make(type="order", before="Introduction", after="Methods")
    assert isinstance(order, OrderTest)
    assert order.run("Introduction ... Methods")[0]
    assert not order.run("Methods ... Introduction")[0]
    assert "'after' text" in order.run("Introduction only")[1]
    # Found twice: passes when any 'before' precedes any 'after'.
    assert order.run("Methods Introduction Methods")[0]


def test_order_fuzzy_uses_levenshtein_distance() -> None:
    pytest.importorskip("fuzzysearch", reason="fuzzy order tests need fuzzysearch (pip install fuzzysearch)")
    fuzzy = make(type="order", before="Introduction", after="Methods", max_diffs=1)
    assert isinstance(fuzzy, OrderTest)
    assert fuzzy.run("Intrduction then Metods")[0]
    assert not fuzzy.run("Intrdction then Metods")[0]


MD_TABLE = """| Site | pH | Volume |
|------|----|--------|
| Site A | 7.1 | 3.0 |
| Site B | 7.9 | 4.2 |
"""

HTML_TABLE = """<table>
<tr><th rowspan="2">Region</th><th colspan="2">Metals</th></tr>
<tr><th>Lead</th><th>Zinc</th></tr>
<tr><td>North</td><td>12</td><td>0.03</td></tr>
</table>"""


@pytest.mark.parametrize(
    ("fields", "content", "expected"),
    [
        ({"cell": "4.2", "up": "3.0", "left": "7.9"}, MD_TABLE, True),
        ({"cell": "4.2", "up": "7.9"}, MD_TABLE, False),
        ({"cell": "7.9", "top_heading": "pH", "left_heading": "Site B"}, MD_TABLE, True),
        ({"cell": "7.9", "top_heading": "Volume"}, MD_TABLE, False),
        ({"cell": "Site A", "up": "anything"}, MD_TABLE, False),
        # Neighbour constraints off the edge are satisfied (olmOCR quirk).
        ({"cell": "Site", "up": "anything"}, MD_TABLE, True),
        ({"cell": "Cobalt"}, MD_TABLE, False),
        ({"cell": "12", "top_heading": "Metals"}, HTML_TABLE, True),
        ({"cell": "0.03", "top_heading": "Metals"}, HTML_TABLE, True),
        ({"cell": "0.03", "up": "Zinc", "left": "12"}, HTML_TABLE, True),
        ({"cell": "12", "left_heading": "North"}, HTML_TABLE, True),
        ({"cell": "12", "left_heading": "South"}, HTML_TABLE, False),
        ({"cell": "4.2"}, "no table here", False),
        ({"cell": "7.9", "ignore_markdown_tables": True}, MD_TABLE, False),
    ],
)
def test_table_relationships(fields: dict[str, object], content: str, expected: bool) -> None:
    test = make(type="table", **fields)
    assert isinstance(test, TableTest)
    assert test.run(content)[0] is expected


def test_table_rowspan_copies_text_down_and_bad_span_fails_cleanly() -> None:
    html = '<table><tr><td rowspan="2">North</td><td>1</td></tr><tr><td>2</td></tr></table>'
    down = make(type="table", cell="North", down="North")
    assert isinstance(down, TableTest) and down.run(html)[0]
    bad = make(type="table", cell="7.9")
    assert isinstance(bad, TableTest)
    passed, why = bad.run("<table><tr><td rowspan='x'>7.9</td></tr></table>")
    assert not passed and "not an integer span" in why


def test_baseline_checks() -> None:
    base = make(type="baseline")
    assert isinstance(base, BaselineTest)
    assert base.run(GOOD)[0]
    assert base.run("") == (False, "The text contains no alpha numeric characters")
    assert not base.run("ok " + "ab" * 40)[0]  # 40 trailing repeats of a 2-gram > 30
    assert base.run("ok " + "ab" * 30)[0]
    assert not base.run("Report 年度")[0]
    blank = make(type="baseline", max_length=5)
    assert isinstance(blank, BaselineTest)
    assert blank.run("ab cd") and not blank.run("abcdef")[0]
    assert trailing_char_repeats("abcabcabcabc") == [1, 1, 4, 1, 1]
    assert trailing_char_repeats("a  a a", 2) == [1, 2]  # whitespace runs count as one space


def test_repeats_need_a_strict_majority() -> None:
    test = make_presence("hello")
    assert run_repeats(test, ["hello", "hello", "nope"]).passed
    half = run_repeats(test, ["hello", "nope"])
    assert (half.passes, half.repeats, half.passed) == (1, 2, False)
    assert not run_repeats(test, []).passed
    unreadable = run_repeats(test, ["hello", None, None])
    assert not unreadable.passed and "could not be read" in unreadable.explanations[0]


def test_candidate_outputs_find_repeats_in_mirrored_folders(tmp_path: Path) -> None:
    folder = tmp_path / "cand" / "headers_footers"
    folder.mkdir(parents=True)
    for name in ("x_pg2_repeat2.md", "x_pg2_repeat1.md", "x_pg12_repeat1.md", "xx_pg2_repeat1.md"):
        (folder / name).write_text("t")
    test = parse_test({"pdf": "headers_footers/x.pdf", "page": 2, "id": "a", "type": "baseline"})
    assert [p.name for p in candidate_outputs(tmp_path / "cand", test)] == ["x_pg2_repeat1.md", "x_pg2_repeat2.md"]


def test_math_exact_and_fallback_matching() -> None:
    test = make(type="math", math=r"\frac{a}{b} + x^{2}")
    assert isinstance(test, MathTest)
    assert test.run(r"We have $\frac{a}{b} + x^{2}$.")[0]
    assert test.run(r"\[ \dfrac{a}{b}+x^2 \]")[0]
    assert test.run(r"\( \left. \frac{a}{b} \right. \, + x^{2} \)")[0]
    assert not test.run(r"$\frac{b}{a} + x^{2}$")[0]
    assert not test.run(r"\frac{a}{b} + x^{2} without delimiters")[0]
    dollars_off = make(type="math", math="x", ignore_dollar_delimited=True)
    assert isinstance(dollars_off, MathTest)
    assert not dollars_off.run("$x$")[0] and dollars_off.run(r"\(x\)")[0]
    assert not latex_equivalent("x^{23}", "x^23")
    custom = ScoringOptions(math_matcher=lambda ref, hyp: hyp == "anything")
    assert test.run("$anything$", custom)[0]


def test_extract_equations_removes_each_kind_before_the_next() -> None:
    assert extract_equations(r"$$a$$ and $b$ and \(c\) and \[d\]") == ["c", "d", "a", "b"]


def test_loaded_fixture_json_round_trips_types() -> None:
    first = json.loads((FIXTURES / "bench_tests.jsonl").read_text().splitlines()[0])
    test = parse_test(first)
    assert isinstance(test, PresenceTest) and test.page == first["page"] and test.text == first["text"]


def test_collapse_whitespace_equals_the_regex_it_replaces() -> None:
    import random
    import re

    from tracr.scoring.normalise import collapse_whitespace

    rng = random.Random(0)
    alphabet = ["a", "b", " ", "\n", "\t", "\x1c", "\u3000", "\xa0", "\u2028"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert collapse_whitespace(text) == re.sub(r"\s+", " ", text), repr(text)
