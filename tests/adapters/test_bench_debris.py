"""Why replies are converted before scoring: the raw reply fails olmOCR-Bench tests that the converted page passes.

Each case runs tracr's own olmOCR-Bench implementation (``tracr.scoring.bench_tests``) on a
family's raw reply and on the parser's Markdown for the same page.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracr.adapters.parsers import chandra_html, deepseek_grounding, dots_layout, nanonets, olmocr
from tracr.adapters.replies import ParsedReply
from tracr.scoring.bench_tests import BenchTest, parse_test

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = "JOURNAL OF APPLIED HYDROLOGY, VOL. 12, NO. 3 (2024)"
FOOTER = "Copyright 2024 Applied Hydrology Society. All rights reserved."
FORMULA = "Q = \\frac{1}{n} A R^{2/3} S^{1/2}"


def _test(kind: str, **fields: Any) -> BenchTest:
    return parse_test({"pdf": "hydrology_pg217.pdf", "page": 1, "id": f"{kind}_{len(fields)}", "type": kind, **fields})


CASES: list[tuple[str, Callable[[str], ParsedReply], str, BenchTest]] = [
    # Front matter pushes the title out of the first characters of the page.
    ("olmocr", olmocr.parse, "olmocr/full_page.md", _test("present", text="4. Results and Discussion", first_n=60)),
    # A blank page whose front matter alone would count as text.
    ("olmocr blank", olmocr.parse, "olmocr/blank_page.md", _test("baseline", max_length=0)),
    # dots: header and footer cells are in the JSON; quotes are escaped; formulas have no delimiters.
    ("dots header", dots_layout.parse, "dots/full_page.json", _test("absent", text=HEADER)),
    ("dots footer", dots_layout.parse, "dots/full_page.json", _test("absent", text=FOOTER)),
    ("dots escaping", dots_layout.parse, "dots/full_page.json", _test("present", text='so-called "rating curve" method')),
    ("dots math", dots_layout.parse, "dots/full_page.json", _test("math", math=FORMULA)),
    # Nanonets: tagged page numbers and watermarks.
    ("nanonets page number", nanonets.parse, "nanonets/full_page.md", _test("absent", text="217/240")),
    ("nanonets watermark", nanonets.parse, "nanonets/full_page.md", _test("absent", text="DRAFT - NOT FOR DISTRIBUTION")),
    # DeepSeek: header blocks, and grounding tags between words that belong together.
    ("deepseek header", deepseek_grounding.parse, "deepseek/full_page.mmd", _test("absent", text=HEADER)),
    (
        "deepseek tags",
        deepseek_grounding.parse,
        "deepseek/full_page.mmd",
        _test("present", text="summarises the station statistics. Table 2: Mean discharge"),
    ),
    # Chandra: header divs, and HTML markup around the text.
    ("chandra header", chandra_html.parse, "chandra/full_page.html", _test("absent", text=HEADER)),
    (
        "chandra markup",
        chandra_html.parse,
        "chandra/full_page.html",
        _test("present", text="4. Results and Discussion Discharge at the four"),
    ),
]


@pytest.mark.parametrize(("family", "parse", "fixture", "bench_test"), CASES, ids=[case[0] for case in CASES])
def test_raw_reply_fails_converted_page_passes(
    family: str, parse: Callable[[str], ParsedReply], fixture: str, bench_test: BenchTest
) -> None:
    raw = (FIXTURES / fixture).read_text(encoding="utf-8")
    raw_passed, _ = bench_test.run(raw)
    converted_passed, why = bench_test.run(parse(raw).markdown)
    assert not raw_passed, f"{family}: the raw reply should fail {bench_test.type}"
    assert converted_passed, f"{family}: {why}"


def test_keeping_furniture_fails_the_absent_test_again() -> None:
    raw = (FIXTURES / "dots/full_page.json").read_text(encoding="utf-8")
    passed, _ = _test("absent", text=HEADER).run(dots_layout.parse(raw, keep_furniture=True).markdown)
    assert not passed
