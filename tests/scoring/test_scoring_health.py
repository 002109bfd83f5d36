"""Page health checks: each kind fires on a page that has the problem and stays quiet on a clean one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracr.scoring.health import (
    IssueKind,
    check_cut_off,
    check_empty,
    check_page,
    check_repetition,
    check_script,
    check_tables,
    dominant_scripts,
    letters_by_script,
    rollup,
)

GOOD = (Path(__file__).parent / "fixtures" / "outputs" / "good.md").read_text(encoding="utf-8")


def kinds(markdown: str, finish_reason: str | None = "stop", **kw: object) -> set[IssueKind]:
    return {issue.kind for issue in check_page(markdown, finish_reason, **kw)}  # type: ignore[arg-type]


def test_clean_page_has_no_issues() -> None:
    assert check_page(GOOD, "stop", expected_scripts={"Latin"}) == []


def test_empty_and_cut_off() -> None:
    assert check_empty("  \n ** -- ") is not None
    assert check_empty("x") is None
    assert kinds("", "stop") == {IssueKind.EMPTY}
    assert check_cut_off("length") is not None and check_cut_off("stop") is None and check_cut_off(None) is None
    assert kinds(GOOD, "length") == {IssueKind.CUT_OFF}


@pytest.mark.parametrize(
    ("text", "looped"),
    [
        ("Intro text. " + "=" * 40, True),  # olmOCR's rule: > 30 repeats of a short n-gram
        ("Intro text. " + "=" * 25, False),
        ("Intro. " + "the same line again and again\n" * 12, True),  # 6-word unit x 12 = 72 words
        ("Intro. " + "the same line\n" * 4, False),  # short legitimate repetition
        ("Start. " + "Row of numbers 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n" * 200 + "The end, finally, is different.", True),
    ],
)
def test_repetition(text: str, looped: bool) -> None:
    assert (check_repetition(text) is not None) is looped


def test_compression_catches_a_loop_that_does_not_reach_the_end() -> None:
    issue = check_repetition("Start. " + "Row 1 2 3 4 5 6 7 8 9\n" * 300 + "Closing sentence that differs.")
    assert issue is not None and "compresses" in issue.detail


def test_script_counts_and_checks() -> None:
    counts = letters_by_script("Hello Привет 你好 ∑ 𝑥")
    assert counts == {"Latin": 5, "Cyrillic": 6, "Han": 2}
    russian = "Это страница на русском языке, распознанная моделью."
    assert check_script(russian, {"Latin"}) is not None
    assert check_script(russian, {"Cyrillic"}) is None
    assert check_script("短い", {"Latin"}) is None  # too few letters to judge
    assert kinds(russian, expected_scripts={"Latin"}) == {IssueKind.WRONG_SCRIPT}


def test_dominant_scripts_of_a_job_flag_the_odd_page() -> None:
    pages = ["An English page with plenty of words."] * 9 + ["这是一个完全用中文写成的页面，模型输出了错误的语言。"]
    dominant = dominant_scripts(pages)
    assert dominant == {"Latin"}
    flagged = [i for i, p in enumerate(pages) if check_script(p, dominant, min_letters=10)]
    assert flagged == [9]
    assert dominant_scripts(["日本語の文書は漢字と平仮名で書かれています。"] * 3) == {"Han", "Hiragana"}


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("| a | b |\n|---|---|\n| 1 | 2 |", False),
        ("| a | b |\n| 1 | 2 |", True),  # no delimiter row
        ("| a | b |\n|---|---|\n| 1 | 2 | 3 |", True),  # ragged
        ("Choose A | B or C | D.\nNothing else.", False),  # prose with pipes
        ("<table><tr><td>a</td><td>b</td></tr><tr><td colspan='2'>c</td></tr></table>", False),
        ("<table><tr><td rowspan='2'>a</td><td>b</td></tr><tr><td>c</td></tr></table>", False),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", True),
        ("<table><tr><td>a</td></tr>", True),  # cut off before </table>
        ("<table><tr><td colspan='two'>a</td></tr></table>", True),
        ("<table></table>", True),
    ],
)
def test_tables(text: str, bad: bool) -> None:
    issues = check_tables(text)
    assert bool(issues) is bad
    assert all(issue.kind is IssueKind.BAD_TABLE for issue in issues)


def test_rollup_rates_by_kind() -> None:
    pages = [
        ("m1", check_page("", "stop")),
        ("m1", check_page(GOOD, "length")),
        ("m1", check_page(GOOD, "stop")),
        ("m1", check_page(GOOD, "stop")),
        ("m2", check_page(GOOD, "stop")),
    ]
    health = rollup(pages)
    assert health["m1"].pages == 4 and health["m1"].failing_pages == 2
    assert health["m1"].failure_rate == 0.5
    assert health["m1"].rate(IssueKind.EMPTY) == 0.25 and health["m1"].rate(IssueKind.CUT_OFF) == 0.25
    assert health["m2"].failure_rate == 0.0
    assert set(health["m1"].rates()) == set(IssueKind)
