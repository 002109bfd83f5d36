"""Differences between two models' text for one page (the reviewer's Compare page).

Pure and difflib-based. Three views of one comparison:

* :func:`diff_stats` — how alike the texts are, and how many lines changed;
* :func:`unified_diff` — a classic ``diff -u`` text, shown in a code block (which
  renders nothing, so it is safe whatever the models wrote);
* :func:`inline_diff_markdown` — a word-level diff as Streamlit Markdown, removed
  words on a red background and added ones on green. Every ASCII punctuation mark
  of the model text is backslash-escaped, so no HTML, link, image or directive can
  form from it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

__all__ = ["DiffStats", "diff_stats", "unified_diff", "word_opcodes", "inline_diff_markdown", "escape_markdown_text"]

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_SURROUNDING_SPACE = re.compile(r"(\s*)(.*?)(\s*)")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


@dataclass(frozen=True)
class DiffStats:
    """Summary of a comparison: similarity 0..1 and changed-line counts."""

    similarity: float
    lines_left: int
    lines_right: int
    lines_removed: int
    lines_added: int

    @property
    def identical(self) -> bool:
        return self.lines_removed == 0 and self.lines_added == 0


def _lines(text: str) -> list[str]:
    return text.splitlines()


def diff_stats(left: str, right: str) -> DiffStats:
    """Line counts from a line diff and a character similarity ratio."""
    a, b = _lines(left), _lines(right)
    removed = added = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            removed += i2 - i1
        if op in ("replace", "insert"):
            added += j2 - j1
    similarity = difflib.SequenceMatcher(None, left, right).ratio() if (left or right) else 1.0
    return DiffStats(similarity=similarity, lines_left=len(a), lines_right=len(b), lines_removed=removed, lines_added=added)


def unified_diff(left: str, right: str, left_label: str = "left", right_label: str = "right", context: int = 3) -> str:
    """``diff -u`` of the two texts; empty when they are the same."""
    return "\n".join(difflib.unified_diff(_lines(left), _lines(right), left_label, right_label, n=context, lineterm=""))


def word_opcodes(left: str, right: str) -> list[tuple[str, str, str]]:
    """Word-level diff as ``(op, left_text, right_text)``; op is equal/delete/insert/replace."""
    a, b = _TOKEN.findall(left), _TOKEN.findall(right)
    matcher = difflib.SequenceMatcher(lambda token: token.isspace(), a, b, autojunk=False)
    return [(op, "".join(a[i1:i2]), "".join(b[j1:j2])) for op, i1, i2, j1, j2 in matcher.get_opcodes()]


def _keep_indent(markdown: str) -> str:
    """Leading spaces would start an indented code block; make them non-breaking instead."""
    return re.sub(r"(?m)^ +", lambda m: "\u00a0" * len(m.group(0)), markdown)


def escape_markdown_text(text: str) -> str:
    """Text that Markdown shows literally: punctuation escaped, line breaks kept."""
    return _keep_indent("  \n".join(_escape_lines(text)))


def _escape_lines(text: str) -> list[str]:
    return [_PUNCTUATION.sub(r"\\\1", line) for line in text.split("\n")]


def _marked(text: str, colour: str) -> str:
    """``text`` on a coloured background, one directive per line (directives cannot span lines)."""
    parts = []
    for line in text.split("\n"):
        escaped = _escape_lines(line)[0]
        if not line.strip():
            parts.append(escaped)
            continue
        # Spaces stay outside the marks: "~~ word~~" would not strike anything.
        spaced = _SURROUNDING_SPACE.fullmatch(escaped)
        lead, core, trail = spaced.groups() if spaced else ("", escaped, "")
        if colour == "red":  # struck through as well, so removals read without colour too
            parts.append(f"{lead}:red-background[:red[~~{core}~~]]{trail}")
        else:
            parts.append(f"{lead}:green-background[:green[{core}]]{trail}")
    return "  \n".join(parts)


def inline_diff_markdown(left: str, right: str) -> str:
    """One text with the left model's words struck in red and the right model's added in green."""
    out = []
    for op, removed, added in word_opcodes(left, right):
        if op == "equal":
            out.append("  \n".join(_escape_lines(removed)))
            continue
        if removed:
            out.append(_marked(removed, "red"))
        if added:
            out.append(_marked(added, "green"))
    # Blank lines between paragraphs came out as empty hard-break lines; make them paragraph breaks.
    return _keep_indent(re.sub(r"  \n(?:[ \u00a0]*  \n)+", "\n\n", "".join(out)))
