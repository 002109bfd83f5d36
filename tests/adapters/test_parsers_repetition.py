"""Chandra's detect_repeat_token rule on plain text."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from tracr.adapters.parsers.repetition import repeating_tail, repeats_at_tail

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", False),
        ("b" + "a" * 16, False),  # one character may repeat int(4 * (1 + 3/1)) = 16 times
        ("b" + "a" * 17, True),
        ("x" + "abc" * 8, False),  # three characters: int(4 * (1 + 3/3)) = 8
        ("x" + "abc" * 9, True),
        ("Intro. " + "the flow and " * 4, False),  # 13 characters: int(4 * (1 + 3/13)) = 4
        ("Intro. " + "the flow and " * 5, True),
        ("z" + "x" * 251 * 5, True),
    ],
)
def test_thresholds(text: str, expected: bool) -> None:
    assert repeating_tail(text) is expected


def test_loop_followed_by_an_unfinished_repeat_needs_the_cut() -> None:
    text = "Intro. " + "ab" * 30 + string.ascii_letters[:50]
    assert not repeating_tail(text)
    assert repeating_tail(text, cut_from_end=50)
    assert repeats_at_tail(text)


def test_short_text_is_not_checked_again_with_a_cut() -> None:
    assert not repeats_at_tail("ab" * 5)


def test_real_pages_do_not_repeat() -> None:
    for name in ("olmocr/full_page.md", "nanonets/full_page.md", "plain/qwen_page.md"):
        assert not repeats_at_tail((FIXTURES / name).read_text(encoding="utf-8")), name
