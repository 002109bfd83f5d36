"""Differential test: tracr.scoring.bench_tests against olmOCR-Bench's own scorer.

Every fixture test is run on every fixture output by both scorers; pass/fail must be
identical. olmOCR is an optional test dependency:

    pip install --no-deps "olmocr==0.4.27" && pip install beautifulsoup4 fuzzysearch playwright tqdm

(olmocr's bench module imports playwright at import time; math tests are left out
because olmOCR renders them in Chromium, which is not available here.)
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tracr.scoring.bench_tests import load_tests, run_repeats

FIXTURES = Path(__file__).parent / "fixtures"

olmocr_tests = pytest.importorskip(
    "olmocr.bench.tests",
    reason="olmocr not installed: pip install --no-deps olmocr==0.4.27 beautifulsoup4 fuzzysearch playwright tqdm",
    exc_type=ImportError,
)


def _olmocr_verdict(test: Any, markdown: str) -> bool:
    try:
        passed, _ = test.run(markdown)
    except Exception:  # olmOCR's benchmark counts a raising test as a failed repeat
        return False
    return bool(passed)


def _pairs() -> list[tuple[str, str, str]]:
    lines = (FIXTURES / "bench_tests.jsonl").read_text(encoding="utf-8").splitlines()
    outputs = sorted((FIXTURES / "outputs").glob("*.md"))
    return [(line, out.name, out.read_text(encoding="utf-8")) for line in lines if line.strip() for out in outputs]


def test_pass_fail_is_identical_to_olmocr_for_every_test_and_output() -> None:
    ours = {t.id: t for t in load_tests(FIXTURES / "bench_tests.jsonl")}
    agree: Counter[str] = Counter()
    disagreements: list[str] = []
    passes: Counter[bool] = Counter()
    for line, name, markdown in _pairs():
        theirs = olmocr_tests.load_single_test(line)
        mine = ours[json.loads(line)["id"]]
        expected = _olmocr_verdict(theirs, markdown)
        got = run_repeats(mine, [markdown]).passed
        passes[expected] += 1
        if got == expected:
            agree[mine.type] += 1
        else:
            disagreements.append(f"{mine.id} on {name}: olmocr={expected} tracr={got}")
    print("agreement by type:", dict(agree))
    assert not disagreements, "\n".join(disagreements)
    # The fixtures must exercise both outcomes, or agreement would prove little.
    assert passes[True] >= 30 and passes[False] >= 30
    assert set(agree) == {"present", "absent", "order", "table", "baseline"}


def _mutants(text: str, count: int, seed: int) -> list[str]:
    """Damaged copies of ``text``: deleted/duplicated/shuffled lines, typos, broken tags, case changes."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        lines = text.split("\n")
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(6)
            i = rng.randrange(len(lines))
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(i, lines[rng.randrange(len(lines))])
            elif op == 2:
                j = rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            elif op == 3 and lines[i]:
                k = rng.randrange(len(lines[i]))
                lines[i] = lines[i][:k] + rng.choice("xe |<>*_") + lines[i][k + 1 :]
            elif op == 4:
                lines[i] = lines[i].upper()
            else:
                lines[i] = lines[i].replace("</td>", "", 1).replace("|", "", 1)
        out.append("\n".join(lines))
    return out


def test_pass_fail_is_identical_to_olmocr_on_damaged_outputs() -> None:
    ours = {t.id: t for t in load_tests(FIXTURES / "bench_tests.jsonl")}
    lines = [line for line in (FIXTURES / "bench_tests.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    theirs = [olmocr_tests.load_single_test(line) for line in lines]
    sources = [(FIXTURES / "outputs" / name).read_text(encoding="utf-8") for name in ("good.md", "nested.md", "typo.md")]
    outputs = [m for k, src in enumerate(sources) for m in _mutants(src, 25, seed=k)]
    agree: Counter[str] = Counter()
    outcomes: Counter[bool] = Counter()
    disagreements: list[str] = []
    for markdown in outputs:
        for test in theirs:
            mine = ours[test.id]
            expected = _olmocr_verdict(test, markdown)
            outcomes[expected] += 1
            if run_repeats(mine, [markdown]).passed == expected:
                agree[mine.type] += 1
            else:
                disagreements.append(f"{mine.id}: olmocr={expected} on {markdown[:200]!r}")
    print("agreement on damaged outputs by type:", dict(agree), "olmocr outcomes:", dict(outcomes))
    assert not disagreements, "\n".join(disagreements[:5])
    assert outcomes[True] >= 300 and outcomes[False] >= 300


def test_normalisation_is_identical_to_olmocr() -> None:
    from tracr.scoring.normalise import normalize_text

    samples = [p.read_text(encoding="utf-8") for p in sorted((FIXTURES / "outputs").glob("*.md"))]
    samples += ["**a\nb** _snake_case_ <b>x</i> \u201cq\u201d \u2014 \u00b5m e\u0301", "__x__*y*", "a<br/>b<br>c"]
    for text in samples:
        assert normalize_text(text) == olmocr_tests.normalize_text(text)


def test_html_tables_parse_identically_to_olmocr() -> None:
    from tracr.scoring.tables import parse_html_tables, parse_markdown_tables

    for path in sorted((FIXTURES / "outputs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        try:
            theirs = olmocr_tests.parse_html_tables(text)
        except ValueError:
            continue
        mine = parse_html_tables(text)
        assert len(mine) == len(theirs), path.name
        for a, b in zip(mine, theirs, strict=False):
            assert a.cells == b.data.tolist(), path.name
            assert a.header_rows == b.header_rows and a.header_cols == b.header_cols, path.name
            assert a.col_headers == b.col_headers and a.row_headers == b.row_headers, path.name
        md_mine = parse_markdown_tables(text)
        md_theirs = olmocr_tests.parse_markdown_tables(text)
        assert [t.cells for t in md_mine] == [t.data.tolist() for t in md_theirs], path.name
