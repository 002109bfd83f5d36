"""Page health without ground truth: the failures users ask about, per page and per model.

Checks (one function each, ``check_page`` runs them all):

* ``empty``: no letters or digits at all (a blank page that should not be blank).
* ``cut_off``: the generation stopped for another reason than ``"stop"`` (e.g. ``"length"``:
  it hit max tokens), so the page is probably truncated.
* ``repetition``: a runaway loop — olmOCR's trailing character n-gram rule (n <= 5,
  more than 30 repeats), a trailing run of the same word n-gram (n <= 30) covering at
  least 40 words, or (for long pages) a zlib compression ratio so low that the page must
  be mostly copies of itself.
* ``wrong_script``: most letters are outside the expected scripts (given, or the job's
  dominant scripts from ``dominant_scripts``).
* ``bad_table``: a markdown table without its delimiter row or with ragged rows, an
  unclosed HTML ``<table>``, a non-integer span, or rows that cover different widths.

Everything is string scanning in C-backed primitives so a job of tens of thousands of
pages checks in seconds (``bench/scoring_bench.py`` measures it).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from tracr.scoring.bench_tests import trailing_char_repeats
from tracr.scoring.tables import Node, markdown_table_blocks, own_cells, own_rows, parse_html

__all__ = [
    "IssueKind",
    "HealthIssue",
    "ModelHealth",
    "check_empty",
    "check_cut_off",
    "check_repetition",
    "check_script",
    "check_tables",
    "check_page",
    "letters_by_script",
    "dominant_scripts",
    "rollup",
    "OK_FINISH_REASONS",
]


class IssueKind(str, Enum):
    EMPTY = "empty"
    CUT_OFF = "cut_off"
    REPETITION = "repetition"
    WRONG_SCRIPT = "wrong_script"
    BAD_TABLE = "bad_table"


@dataclass(frozen=True)
class HealthIssue:
    """One problem found on a page; ``detail`` says what was seen, for the reviewer."""

    kind: IssueKind
    detail: str


OK_FINISH_REASONS = frozenset({"stop", None})


def check_empty(markdown: str) -> HealthIssue | None:
    """No alphanumeric character at all."""
    if any(c.isalnum() for c in markdown):
        return None
    return HealthIssue(IssueKind.EMPTY, f"no letters or digits in {len(markdown)} characters")


def check_cut_off(finish_reason: str | None) -> HealthIssue | None:
    """The model did not finish on its own (``finish_reason`` other than ``"stop"``/``None``)."""
    if finish_reason in OK_FINISH_REASONS:
        return None
    return HealthIssue(IssueKind.CUT_OFF, f"finish_reason={finish_reason!r}")


def _trailing_word_loop(words: Sequence[str], max_ngram: int, min_words: int) -> tuple[int, int] | None:
    for n in range(1, min(max_ngram, len(words) // 2) + 1):
        target = words[-n:]
        count = 1
        end = len(words) - n
        while end - n >= 0 and words[end - n : end] == target:
            count += 1
            end -= n
        if count >= 3 and count * n >= min_words:
            return n, count
    return None


def check_repetition(
    markdown: str,
    *,
    max_char_repeats: int = 30,
    max_word_ngram: int = 30,
    min_loop_words: int = 40,
    min_compress_chars: int = 2000,
    max_compress_ratio: float = 0.08,
) -> HealthIssue | None:
    """A runaway loop at the end of the page (or a page that is mostly copies of itself)."""
    # 31 repeats of a 5-character string fit in 155 characters; 4,000 leaves room for whitespace runs.
    for index, count in enumerate(trailing_char_repeats(markdown[-4_000:], 5)):
        if count > max_char_repeats:
            return HealthIssue(IssueKind.REPETITION, f"ends with {count} repeats of a {index + 1}-character string")
    words = markdown[-8_000:].split()
    loop = _trailing_word_loop(words, max_word_ngram, min_loop_words)
    if loop is not None:
        n, count = loop
        sample = " ".join(words[-n:])[:60]
        return HealthIssue(IssueKind.REPETITION, f"ends with {count} repeats of a {n}-word sequence ({sample!r})")
    if len(markdown) >= min_compress_chars:
        raw = markdown.encode("utf-8")
        ratio = len(zlib.compress(raw, 1)) / len(raw)
        if ratio < max_compress_ratio:
            return HealthIssue(IssueKind.REPETITION, f"compresses to {ratio:.1%} of its size: mostly repeated text")
    return None


_SCRIPTS = {
    "LATIN": "Latin",
    "CYRILLIC": "Cyrillic",
    "GREEK": "Greek",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "HIRAGANA": "Hiragana",
    "KATAKANA": "Katakana",
    "HANGUL": "Hangul",
    "CJK": "Han",
    "DEVANAGARI": "Devanagari",
    "BENGALI": "Bengali",
    "GURMUKHI": "Gurmukhi",
    "GUJARATI": "Gujarati",
    "TAMIL": "Tamil",
    "TELUGU": "Telugu",
    "KANNADA": "Kannada",
    "MALAYALAM": "Malayalam",
    "SINHALA": "Sinhala",
    "THAI": "Thai",
    "LAO": "Lao",
    "KHMER": "Khmer",
    "MYANMAR": "Myanmar",
    "TIBETAN": "Tibetan",
    "GEORGIAN": "Georgian",
    "ARMENIAN": "Armenian",
    "ETHIOPIC": "Ethiopic",
    "SYRIAC": "Syriac",
    "THAANA": "Thaana",
    "MONGOLIAN": "Mongolian",
}
_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@lru_cache(maxsize=65_536)
def _script_of(ch: str) -> str | None:
    """Script of a letter from its Unicode name; ``None`` for non-letters and math letters."""
    if not ch.isalpha():
        return None
    words = unicodedata.name(ch, "").split()
    if words and words[0] == "MATHEMATICAL":
        return None
    for word in words:
        script = _SCRIPTS.get(word)
        if script is not None:
            return script
    return None


def letters_by_script(markdown: str) -> Counter[str]:
    """How many letters of each script the text has (``Latin``, ``Cyrillic``, ``Han``, ...)."""
    counts: Counter[str] = Counter()
    ascii_letters = len(markdown.encode("ascii", "ignore").translate(None, _ASCII_NON_LETTERS))
    if ascii_letters:
        counts["Latin"] = ascii_letters
    if not markdown.isascii():
        for ch, n in Counter(_NON_ASCII.findall(markdown)).items():
            script = _script_of(ch)
            if script is not None:
                counts[script] += n
    return counts


def dominant_scripts(pages: Iterable[str], *, min_share: float = 0.2) -> frozenset[str]:
    """Scripts holding at least ``min_share`` of all letters of a job (e.g. Han + Hiragana for Japanese)."""
    total: Counter[str] = Counter()
    for page in pages:
        total.update(letters_by_script(page))
    letters = sum(total.values())
    return frozenset(s for s, n in total.items() if letters and n / letters >= min_share)


def check_script(markdown: str, expected: Collection[str], *, min_letters: int = 20, max_foreign_share: float = 0.5) -> HealthIssue | None:
    """Most letters (more than ``max_foreign_share``) are in scripts outside ``expected``."""
    counts = letters_by_script(markdown)
    total = sum(counts.values())
    if total < min_letters:
        return None
    foreign = total - sum(n for s, n in counts.items() if s in expected)
    if foreign / total <= max_foreign_share:
        return None
    top = ", ".join(f"{s} {n}" for s, n in counts.most_common(3))
    return HealthIssue(IssueKind.WRONG_SCRIPT, f"{foreign / total:.0%} of {total} letters outside {sorted(expected)} ({top})")


def _markdown_cells(line: str) -> int:
    cells = line.strip().split("|")
    if cells and cells[0].strip() == "":
        cells = cells[1:]
    if cells and cells[-1].strip() == "":
        cells = cells[:-1]
    return len(cells)


_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def _markdown_table_issues(markdown: str) -> list[HealthIssue]:
    issues: list[HealthIssue] = []
    for block in markdown_table_blocks(markdown):
        if sum(1 for line in block if line.lstrip().startswith("|")) < 2:
            continue  # prose that happens to contain pipes
        if not _DELIMITER.match(block[1]):
            issues.append(HealthIssue(IssueKind.BAD_TABLE, f"markdown table without a delimiter row after {block[0].strip()[:40]!r}"))
            continue
        width = _markdown_cells(block[0])
        ragged = sorted({_markdown_cells(line) for line in block[2:]} - {width})
        if ragged or _markdown_cells(block[1]) != width:
            issues.append(
                HealthIssue(
                    IssueKind.BAD_TABLE, f"markdown table rows have {ragged or [_markdown_cells(block[1])]} cells, header has {width}"
                )
            )
    return issues


_TABLE_OPEN = re.compile(r"<table\b", re.IGNORECASE)
_TABLE_CLOSE = re.compile(r"</table\s*>", re.IGNORECASE)
_SPAN = re.compile(r"""\b(rowspan|colspan)\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)


_TABLE_SPAN = re.compile(r"<table\b.*?</table\s*>", re.IGNORECASE | re.DOTALL)
_ROW = re.compile(r"<tr\b", re.IGNORECASE)
_CELL = re.compile(r"<t[dh]\b([^>]*)>", re.IGNORECASE)
_ROWSPAN = re.compile(r"""\browspan\s*=\s*["']?\s*(\d+)""", re.IGNORECASE)
_COLSPAN = re.compile(r"""\bcolspan\s*=\s*["']?\s*(\d+)""", re.IGNORECASE)


def _widths(rows: Iterable[Iterable[tuple[int, int]]]) -> list[int]:
    """Columns each row covers, given each cell's (rowspan, colspan) and rowspans carried from above."""
    widths: list[int] = []
    carried: dict[int, int] = {}  # column -> rows still covered by a rowspan from above
    for cells in rows:
        occupied = set(carried)
        col = 0
        for rowspan, colspan in cells:
            while col in occupied:
                col += 1
            for c in range(col, col + max(colspan, 1)):
                if rowspan > 1:
                    carried[c] = rowspan
                occupied.add(c)
            col += max(colspan, 1)
        widths.append(max(occupied, default=-1) + 1)
        carried = {c: left - 1 for c, left in carried.items() if left - 1 > 0}
    return widths


def _attr_int(pattern: re.Pattern[str], attrs: str) -> int:
    m = pattern.search(attrs)
    return int(m.group(1)) if m else 1


def _regex_rows(table_html: str) -> list[list[tuple[int, int]]]:
    """Cells per row of a table without nested tables, read with regular expressions (fast path)."""
    return [[(_attr_int(_ROWSPAN, a), _attr_int(_COLSPAN, a)) for a in _CELL.findall(chunk)] for chunk in _ROW.split(table_html)[1:]]


def _tree_rows(table: Node) -> list[list[tuple[int, int]]]:
    """Cells per row from the parsed tree, rows of nested tables excluded (slow path)."""
    return [[(int(c.attrs.get("rowspan") or 1), int(c.attrs.get("colspan") or 1)) for c in own_cells(tr)] for tr in own_rows(table)]


def _html_table_issues(markdown: str) -> list[HealthIssue]:
    opened = len(_TABLE_OPEN.findall(markdown))
    if not opened:
        return []
    closed = len(_TABLE_CLOSE.findall(markdown))
    if closed < opened:
        return [HealthIssue(IssueKind.BAD_TABLE, f"{opened - closed} of {opened} HTML tables not closed")]
    for name, value in _SPAN.findall(markdown):
        if not value.strip().isdigit():
            return [HealthIssue(IssueKind.BAD_TABLE, f"{name.lower()}={value!r} is not an integer")]
    issues: list[HealthIssue] = []
    spans = _TABLE_SPAN.findall(markdown)
    if any(len(_TABLE_OPEN.findall(span)) > 1 for span in spans):
        tables = [_tree_rows(node) for node in parse_html(markdown).find_all({"table"})]
    else:
        tables = [_regex_rows(span) for span in spans]
    for rows in tables:
        widths = _widths(rows)
        if not widths:
            issues.append(HealthIssue(IssueKind.BAD_TABLE, "HTML table without rows"))
        elif len(set(widths)) > 1:
            issues.append(HealthIssue(IssueKind.BAD_TABLE, f"HTML table rows cover {min(widths)} to {max(widths)} columns"))
    return issues


def check_tables(markdown: str) -> list[HealthIssue]:
    """Markdown and HTML tables that would not render as the grid they describe."""
    issues = _markdown_table_issues(markdown) if "|" in markdown else []
    return issues + _html_table_issues(markdown)


def check_page(
    markdown: str,
    finish_reason: str | None = None,
    *,
    expected_scripts: Collection[str] | None = None,
) -> list[HealthIssue]:
    """Every check on one page; an empty page reports only ``empty`` (and ``cut_off``)."""
    issues: list[HealthIssue] = []
    cut = check_cut_off(finish_reason)
    if cut is not None:
        issues.append(cut)
    empty = check_empty(markdown)
    if empty is not None:
        return [*issues, empty]
    loop = check_repetition(markdown)
    if loop is not None:
        issues.append(loop)
    if expected_scripts:
        script = check_script(markdown, expected_scripts)
        if script is not None:
            issues.append(script)
    issues.extend(check_tables(markdown))
    return issues


@dataclass
class ModelHealth:
    """Failure counts of one model: pages checked, pages with any issue, pages per issue kind."""

    model: str
    pages: int = 0
    failing_pages: int = 0
    by_kind: Counter[IssueKind] = field(default_factory=Counter)

    @property
    def failure_rate(self) -> float:
        return self.failing_pages / self.pages if self.pages else 0.0

    def rate(self, kind: IssueKind) -> float:
        """Share of pages with at least one issue of ``kind``."""
        return self.by_kind[kind] / self.pages if self.pages else 0.0

    def rates(self) -> Mapping[IssueKind, float]:
        return {kind: self.rate(kind) for kind in IssueKind}


def rollup(pages: Iterable[tuple[str, Sequence[HealthIssue]]]) -> dict[str, ModelHealth]:
    """Per-model failure rates from ``(model, issues of one page)`` pairs."""
    result: dict[str, ModelHealth] = {}
    for model, issues in pages:
        health = result.setdefault(model, ModelHealth(model))
        health.pages += 1
        if issues:
            health.failing_pages += 1
        for kind in {issue.kind for issue in issues}:
            health.by_kind[kind] += 1
    return result
