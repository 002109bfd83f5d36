"""olmOCR-Bench tests: load its JSONL files and score one page's markdown against them.

Pass/fail agrees with olmOCR-Bench's own scorer (olmocr/bench/tests.py, v0.4.x) for
``present``, ``absent``, ``order``, ``table`` and ``baseline``, including its quirks,
because published scores are only comparable when the rules are the same:

* ``present``/``absent`` use ``rapidfuzz.fuzz.partial_ratio`` on normalised text with
  threshold ``1 - max_diffs / len(query)``; ``first_n``/``last_n`` are truthiness tests.
* ``order`` uses ``fuzzysearch.find_near_matches`` (Levenshtein, ``max_l_dist=max_diffs``)
  and passes when some match of ``before`` starts before some match of ``after``.
* ``table`` reads markdown and HTML tables (``tables.py``); neighbour constraints
  that fall off the table edge are treated as satisfied, as olmOCR does.
* ``baseline`` counts trailing character n-gram repeats (n <= 5, more than 30 fails)
  and rejects CJK/kana/emoji characters.
* Repeats: a test passes when strictly more than half of the repeats pass
  (``benchmark.py``: ``repeat_passes / num_repeats > 0.5``); a repeat that raises counts
  as failed, a missing output fails the test.

**Known flaw (olmocr issue 461), followed by default.** ``partial_ratio`` aligns the
*shorter* string inside the longer one, so when the output is shorter than the query
a near-empty page (``"The"``) passes ``present "The quick brown fox"``. With
``ScoringOptions(strict_present=True)`` an output shorter than the query is compared
whole (``fuzz.ratio``) instead, so it must actually contain the query's text; the same
rule applies to ``absent``, where a near-empty output then correctly passes.

**Math is not at parity.** olmOCR renders LaTeX with KaTeX in a browser. Here an exact
string match passes as in olmOCR; otherwise ``latex.latex_equivalent`` (normalised
token comparison) decides, or a caller-supplied ``ScoringOptions.math_matcher``.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from rapidfuzz import fuzz

from tracr.scoring.latex import latex_equivalent
from tracr.scoring.normalise import collapse_whitespace, normalize_text
from tracr.scoring.tables import Table, TableParseError, parse_html_tables, parse_markdown_tables

__all__ = [
    "BenchTestError",
    "MissingDependencyError",
    "ScoringOptions",
    "BenchTest",
    "PresenceTest",
    "OrderTest",
    "TableTest",
    "MathTest",
    "BaselineTest",
    "RepeatOutcome",
    "TEST_TYPES",
    "parse_test",
    "load_tests",
    "load_test_lines",
    "run_repeats",
    "candidate_outputs",
    "trailing_char_repeats",
    "extract_equations",
    "count_alnum",
]


class BenchTestError(ValueError):
    """A test definition that cannot be used; the message names source, line and field."""

    def __init__(self, message: str, *, source: str = "<memory>", line: int | None = None, field_name: str | None = None):
        where = source if line is None else f"{source}:{line}"
        what = f" field {field_name!r}:" if field_name else ""
        super().__init__(f"{where}:{what} {message}")
        self.reason = message
        self.source = source
        self.line = line
        self.field_name = field_name


class MissingDependencyError(RuntimeError):
    """A test type needs an optional package; raised through ``run_repeats`` so it is never a silent fail."""


MathMatcher = Callable[[str, str], bool]


@dataclass(frozen=True)
class ScoringOptions:
    """Switches that depart from olmOCR-Bench; the defaults reproduce it."""

    strict_present: bool = False
    math_matcher: MathMatcher | None = None


DEFAULT_OPTIONS = ScoringOptions()


def _threshold(max_diffs: int, query: str) -> float:
    return 1.0 - (max_diffs / (len(query) if len(query) > 0 else 1))


@dataclass(kw_only=True)
class BenchTest:
    """Fields every olmOCR-Bench test has; ``run`` returns ``(passed, explanation)``."""

    pdf: str
    page: int
    id: str
    type: str
    max_diffs: int = 0
    checked: str | None = None
    url: str | None = None

    FIELDS: ClassVar[dict[str, tuple[builtins.type, ...]]] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    def run(self, markdown: str, options: ScoringOptions = DEFAULT_OPTIONS) -> tuple[bool, str]:
        raise NotImplementedError


@dataclass(kw_only=True)
class PresenceTest(BenchTest):
    """``present``/``absent``: fuzzy search of ``text`` in (the first/last N chars of) the output."""

    text: str
    case_sensitive: bool = True
    first_n: int | None = None
    last_n: int | None = None

    FIELDS: ClassVar[dict[str, tuple[builtins.type, ...]]] = {
        "text": (str,),
        "case_sensitive": (bool,),
        "first_n": (int, type(None)),
        "last_n": (int, type(None)),
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("text",)

    def __post_init__(self) -> None:
        self.text = normalize_text(self.text)
        if not self.text.strip():
            raise BenchTestError("is empty after normalisation", field_name="text")

    def run(self, markdown: str, options: ScoringOptions = DEFAULT_OPTIONS) -> tuple[bool, str]:
        query = self.text
        content = normalize_text(markdown)
        if not self.case_sensitive:
            query = query.lower()
            content = content.lower()
        if self.first_n and self.last_n:
            content = content[: self.first_n] + content[-self.last_n :]
        elif self.first_n:
            content = content[: self.first_n]
        elif self.last_n:
            content = content[-self.last_n :]
        threshold = _threshold(self.max_diffs, query)
        if options.strict_present and len(content) < len(query):
            ratio = fuzz.ratio(query, content) / 100.0
        else:
            ratio = fuzz.partial_ratio(query, content) / 100.0
        found = ratio >= threshold
        if self.type == "present":
            if found:
                return True, ""
            return False, f"Expected '{query[:40]}...' with threshold {threshold} but best match ratio was {ratio:.3f}"
        if not found:
            return True, ""
        return False, f"Expected absence of '{query[:40]}...' with threshold {threshold} but best match ratio was {ratio:.3f}"


def _near_matches(needle: str, haystack: str, max_diffs: int) -> list[int]:
    """Start offsets of fuzzysearch's matches (the library olmOCR uses, for identical semantics)."""
    if max_diffs == 0:
        starts = []
        i = haystack.find(needle)
        while i >= 0:
            starts.append(i)
            i = haystack.find(needle, i + 1)
        return starts
    try:
        from fuzzysearch import find_near_matches
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("order tests with max_diffs > 0 need the 'fuzzysearch' package (pip install fuzzysearch)") from exc
    return [m.start for m in find_near_matches(needle, haystack, max_l_dist=max_diffs)]


@dataclass(kw_only=True)
class OrderTest(BenchTest):
    """``order``: ``before`` is found (fuzzily) somewhere earlier than ``after``."""

    before: str
    after: str

    FIELDS: ClassVar[dict[str, tuple[builtins.type, ...]]] = {"before": (str,), "after": (str,)}
    REQUIRED: ClassVar[tuple[str, ...]] = ("before", "after")

    def __post_init__(self) -> None:
        self.before = normalize_text(self.before)
        self.after = normalize_text(self.after)
        for name in ("before", "after"):
            if not getattr(self, name).strip():
                raise BenchTestError("is empty after normalisation", field_name=name)
        if self.max_diffs > len(self.before) // 2 or self.max_diffs > len(self.after) // 2:
            raise BenchTestError("is more than half the length of 'before' or 'after'", field_name="max_diffs")

    def run(self, markdown: str, options: ScoringOptions = DEFAULT_OPTIONS) -> tuple[bool, str]:
        content = normalize_text(markdown)
        before = _near_matches(self.before, content, self.max_diffs)
        after = _near_matches(self.after, content, self.max_diffs)
        if not before:
            return False, f"'before' text '{self.before[:40]}...' not found with max_l_dist {self.max_diffs}"
        if not after:
            return False, f"'after' text '{self.after[:40]}...' not found with max_l_dist {self.max_diffs}"
        if min(before) < max(after):
            return True, ""
        return False, f"Could not find a location where '{self.before[:40]}...' appears before '{self.after[:40]}...'."


def _heading_match(query: str, threshold: float, primary: list[str], secondary: list[str], fallback: list[str]) -> tuple[str, float]:
    """olmOCR's heading search: mapped headers, then header rows/cols, then any non-empty cell."""
    best_match, best = "", 0.0
    for candidates, stop_early in ((primary, True), (secondary, True), (fallback, False)):
        if candidates is fallback and best_match:
            break
        for raw in candidates:
            text = normalize_text(raw)
            sim = fuzz.ratio(query, text) / 100.0
            if sim > best:
                best, best_match = sim, text
                if stop_early and best >= threshold:
                    return best_match, best
    return best_match, best


@lru_cache(maxsize=32)
def _tables_of(markdown: str, with_markdown: bool) -> tuple[Table, ...]:
    """Markdown (optionally) then HTML tables of one output; cached, a page usually has many table tests."""
    markdown_tables = parse_markdown_tables(markdown) if with_markdown else []
    return (*markdown_tables, *parse_html_tables(markdown))


@dataclass(kw_only=True)
class TableTest(BenchTest):
    """``table``: some cell matching ``cell`` has the given neighbours and headings."""

    cell: str
    up: str = ""
    down: str = ""
    left: str = ""
    right: str = ""
    top_heading: str = ""
    left_heading: str = ""
    ignore_markdown_tables: bool = False

    FIELDS: ClassVar[dict[str, tuple[builtins.type, ...]]] = {
        **{name: (str,) for name in ("cell", "up", "down", "left", "right", "top_heading", "left_heading")},
        "ignore_markdown_tables": (bool,),
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("cell",)

    def __post_init__(self) -> None:
        for name in ("cell", "up", "down", "left", "right", "top_heading", "left_heading"):
            setattr(self, name, normalize_text(getattr(self, name)))

    def _limit(self, query: str) -> float:
        return max(0.5, _threshold(self.max_diffs, query))

    def _check(self, table: Table, r: int, c: int) -> list[str]:
        grid = table.cells
        reasons: list[str] = []
        neighbours = (
            ("up", self.up, r > 0, (r - 1, c), "Cell above"),
            ("down", self.down, r < table.n_rows - 1, (r + 1, c), "Cell below"),
            ("left", self.left, c > 0, (r, c - 1), "Cell to the left"),
            ("right", self.right, c < table.n_cols - 1, (r, c + 1), "Cell to the right"),
        )
        for _, query, inside, (rr, cc), label in neighbours:
            if query and inside:
                text = normalize_text(grid[rr][cc])
                sim = fuzz.ratio(query, text) / 100.0
                if sim < self._limit(query):
                    reasons.append(f"{label} '{text}' doesn't match expected '{query}' (similarity: {sim:.2f})")
        headings = (
            ("Top", self.top_heading, table.col_headers.get(c, []), sorted(table.header_rows), [row[c] for row in grid], r),
            ("Left", self.left_heading, table.row_headers.get(r, []), sorted(table.header_cols), grid[r], c),
        )
        for label, query, mapped, header_lines, line, position in headings:
            if not query:
                continue
            limit = self._limit(query)
            match, sim = _heading_match(
                query,
                limit,
                [text for _, text in mapped],
                [line[k] for k in header_lines if k < position and line[k].strip()],
                [line[k] for k in range(position) if line[k].strip()],
            )
            if not match:
                reasons.append(f"No {label.lower()} heading found for cell at ({r}, {c})")
            elif sim < limit:
                reasons.append(f"{label} heading '{match}' doesn't match expected '{query}' (similarity: {sim:.2f})")
        return reasons

    def run(self, markdown: str, options: ScoringOptions = DEFAULT_OPTIONS) -> tuple[bool, str]:
        threshold = self._limit(self.cell)
        try:
            tables = _tables_of(markdown, not self.ignore_markdown_tables)
        except TableParseError as exc:
            return False, f"HTML table could not be read: {exc}"
        if not tables:
            return False, "No tables found in the content"
        failed: list[str] = []
        for table in tables:
            for r, row in enumerate(table.cells):
                for c, text in enumerate(row):
                    if fuzz.ratio(self.cell, normalize_text(text)) / 100.0 < threshold:
                        continue
                    reasons = self._check(table, r, c)
                    if not reasons:
                        return True, ""
                    failed.extend(reasons)
        if not failed:
            return False, f"No cell matching '{self.cell}' found in any table with threshold {threshold}"
        return False, f"Found cells matching '{self.cell}' but relationships were not satisfied: {'; '.join(failed)}"


_EQUATION_PATTERNS = (r"\\\((.+?)\\\)", r"\\\[(.+?)\\\]", r"\$\$(.+?)\$\$", r"\$(.+?)\$")


def extract_equations(markdown: str, *, dollars: bool = True) -> list[str]:
    """Equations in ``\\(..\\)``, ``\\[..\\]``, ``$$..$$``, ``$..$``, each kind removed before the next."""
    equations: list[str] = []
    patterns = _EQUATION_PATTERNS if dollars else _EQUATION_PATTERNS[:2]
    for pattern in patterns:
        equations.extend(e.strip() for e in re.findall(pattern, markdown, re.DOTALL))
        markdown = re.sub(pattern, "", markdown, flags=re.DOTALL)
    return equations


@dataclass(kw_only=True)
class MathTest(BenchTest):
    """``math``: some equation in the output is ``math`` (exactly, or by the math matcher)."""

    math: str
    ignore_dollar_delimited: bool = False

    FIELDS: ClassVar[dict[str, tuple[builtins.type, ...]]] = {"math": (str,), "ignore_dollar_delimited": (bool,)}
    REQUIRED: ClassVar[tuple[str, ...]] = ("math",)

    def __post_init__(self) -> None:
        if not self.math.strip():
            raise BenchTestError("is empty", field_name="math")

    def run(self, markdown: str, options: ScoringOptions = DEFAULT_OPTIONS) -> tuple[bool, str]:
        equations = extract_equations(markdown, dollars=not self.ignore_dollar_delimited)
        if any(eq == self.math for eq in equations):
            return True, ""
        matcher = options.math_matcher or latex_equivalent
        equations.sort(key=lambda eq: -fuzz.ratio(eq, self.math))
        if any(matcher(self.math, eq) for eq in equations):
            return True, ""
        return False, f"No match found for {self.math} anywhere in content"


def trailing_char_repeats(text: str, max_ngram: int = 5) -> list[int]:
    """For n = 1..max_ngram: how many times the last n characters repeat back-to-back at the end.

    Whitespace runs count as one space (olmOCR's ``RepeatDetector``).
    """
    text = collapse_whitespace(text)
    counts = [0] * max_ngram
    for size in range(1, max_ngram + 1):
        if len(text) < size:
            continue
        target = text[-size:]
        count = 0
        pos = len(text) - size
        while pos >= 0 and text.startswith(target, pos):
            count += 1
            pos -= size
        counts[size - 1] = count
    return counts


_NOT_ALNUM = re.compile(r"[\W_]+")
_ASCII_NOT_ALNUM = bytes(b for b in range(128) if not chr(b).isalnum())


def count_alnum(text: str) -> int:
    """``sum(c.isalnum() for c in text)``, fast (``\\w`` is exactly ``isalnum`` plus ``_``)."""
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_NOT_ALNUM))
    return len(_NOT_ALNUM.sub("", text))


_DISALLOWED = re.compile(
    "[\u4e00-\u9fff\u3040-\u309f\u30a0-\u30ff\U0001f600-\U0001f64f\U0001f300-\U0001f5ff\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff]"
)
_IMAGE_TAG = re.compile(r"!\[.*?\]\(.*?\)")


@dataclass(kw_only=True)
class BaselineTest(BenchTest):
    """``baseline``: not blank, no long trailing repetition, no CJK/emoji (or, with ``max_length``, blank enough)."""

    max_length: int | None = None
    max_length_skips_image_alt_tags: bool = False
    max_repeats: int = 30
    check_disallowed_characters: bool = True

    FIELDS: ClassVar[dict[str, tuple[builtins.type, ...]]] = {
        "max_length": (int, type(None)),
        "max_length_skips_image_alt_tags": (bool,),
        "max_repeats": (int,),
        "check_disallowed_characters": (bool,),
    }

    def run(self, markdown: str, options: ScoringOptions = DEFAULT_OPTIONS) -> tuple[bool, str]:
        length = count_alnum(markdown)
        if self.max_length is not None:
            if self.max_length_skips_image_alt_tags:
                length = count_alnum(_IMAGE_TAG.sub("", markdown))
            if length > self.max_length:
                return False, f"{length} characters were output for a page we expected to be blank"
            return True, ""
        if length == 0:
            return False, "The text contains no alpha numeric characters"
        for index, count in enumerate(trailing_char_repeats(markdown, 5)):
            if count > self.max_repeats:
                return False, f"Text ends with {count} repeating {index + 1}-grams, invalid"
        if self.check_disallowed_characters:
            found = _DISALLOWED.findall(markdown)
            if found:
                return False, f"Text contains disallowed characters {found}"
        return True, ""


TEST_TYPES: dict[str, type[BenchTest]] = {
    "present": PresenceTest,
    "absent": PresenceTest,
    "order": OrderTest,
    "table": TableTest,
    "math": MathTest,
    "baseline": BaselineTest,
}

_BASE_FIELDS: dict[str, tuple[type, ...]] = {
    "pdf": (str,),
    "page": (int,),
    "id": (str,),
    "type": (str,),
    "max_diffs": (int,),
    "checked": (str, type(None)),
    "url": (str, type(None)),
}


def _type_ok(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


def _type_names(allowed: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in allowed)


def parse_test(obj: Mapping[str, Any], *, source: str = "<memory>", line: int | None = None, allow_unknown: bool = False) -> BenchTest:
    """One test from its decoded JSON object; ``BenchTestError`` names what is wrong."""

    def fail(message: str, name: str | None = None) -> BenchTestError:
        return BenchTestError(message, source=source, line=line, field_name=name)

    if not isinstance(obj, Mapping):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in TEST_TYPES:
        raise fail(f"unknown test type {kind!r} (expected one of {', '.join(TEST_TYPES)})", "type")
    cls = TEST_TYPES[kind]
    fields = {**_BASE_FIELDS, **cls.FIELDS}
    for name in ("pdf", "page", "id", *cls.REQUIRED):
        if name not in obj:
            raise fail("is missing", name)
    values: dict[str, Any] = {}
    for name, value in obj.items():
        if name not in fields:
            if allow_unknown:
                continue
            raise fail(f"is not a field of {kind!r} tests", name)
        if not _type_ok(value, fields[name]):
            raise fail(f"must be {_type_names(fields[name])}, got {value!r}", name)
        values[name] = value
    for name in ("pdf", "id"):
        if not values[name]:
            raise fail("must not be empty", name)
    if values.get("max_diffs", 0) < 0:
        raise fail("must be 0 or more", "max_diffs")
    for name in ("first_n", "last_n", "max_length", "max_repeats"):
        if isinstance(values.get(name), int) and values[name] < 0:
            raise fail("must be 0 or more", name)
    try:
        return cls(**values)
    except BenchTestError as exc:
        raise fail(exc.reason, exc.field_name) from None


def load_test_lines(lines: Iterable[str], *, source: str = "<memory>", allow_unknown: bool = False) -> list[BenchTest]:
    """Tests from JSONL lines (blank lines skipped); ids must be unique."""
    tests: list[BenchTest] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        text = text.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchTestError(f"not valid JSON ({exc.msg} at column {exc.colno})", source=source, line=number) from None
        test = parse_test(obj, source=source, line=number, allow_unknown=allow_unknown)
        if test.id in seen:
            raise BenchTestError(f"duplicate id {test.id!r} (first on line {seen[test.id]})", source=source, line=number, field_name="id")
        seen[test.id] = number
        tests.append(test)
    return tests


def load_tests(path: str | Path, *, allow_unknown: bool = False) -> list[BenchTest]:
    """Tests from one olmOCR-Bench JSONL file (its stem is the category, e.g. ``table_tests``)."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        return load_test_lines(handle, source=str(path), allow_unknown=allow_unknown)


@dataclass(frozen=True)
class RepeatOutcome:
    """One test over all repeats of its page: passed when strictly more than half passed."""

    test_id: str
    passes: int
    repeats: int
    explanations: tuple[str, ...] = field(default=())

    @property
    def pass_ratio(self) -> float:
        return self.passes / self.repeats if self.repeats else 0.0

    @property
    def passed(self) -> bool:
        return self.pass_ratio > 0.5


def run_repeats(test: BenchTest, outputs: Sequence[str | None], options: ScoringOptions = DEFAULT_OPTIONS) -> RepeatOutcome:
    """Score ``test`` on each repeat's markdown; ``None`` (unreadable) or an exception fails that repeat."""
    passes = 0
    explanations: list[str] = []
    for markdown in outputs:
        if markdown is None:
            explanations.append("output could not be read")
            continue
        try:
            ok, why = test.run(markdown, options)
        except MissingDependencyError:
            raise
        except Exception as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        if ok:
            passes += 1
        else:
            explanations.append(why)
    if not outputs:
        explanations.append("Missing MD files")
    return RepeatOutcome(test.id, passes, len(outputs), tuple(explanations))


def candidate_outputs(candidate_dir: str | Path, test: BenchTest) -> list[Path]:
    """``<candidate>/<pdf without .pdf>_pg<page>_repeat<r>.md`` files for the test's page, by repeat."""
    stem = Path(test.pdf).with_suffix("")
    folder = Path(candidate_dir) / stem.parent
    pattern = re.compile(rf"^{re.escape(stem.name)}_pg{test.page}_repeat(\d+)\.md$")
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]
