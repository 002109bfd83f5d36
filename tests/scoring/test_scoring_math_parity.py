"""Math tests: tracr's KaTeX matcher against olmOCR-Bench's renderer, and the token fallback's known gaps.

Needs Chromium (``apt-get install chromium``), Playwright, and KaTeX assets (an installed
``olmocr`` package or ``$TRACR_KATEX_DIR``); the differential part also needs ``olmocr``:

    pip install --no-deps "olmocr==0.4.27" && pip install beautifulsoup4 lxml fuzzysearch playwright tqdm
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracr.scoring.bench_tests import MathTest, ScoringOptions, load_tests
from tracr.scoring.katex import KatexRenderer, find_chromium, find_katex_assets

FIXTURES = Path(__file__).parent / "fixtures"
CHROMIUM = find_chromium()
ASSETS = find_katex_assets()

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or ASSETS is None,
    reason="KaTeX math matching needs Chromium on PATH (apt-get install chromium) and KaTeX assets (olmocr installed or TRACR_KATEX_DIR)",
)


@pytest.fixture(scope="module")
def renderer() -> Iterator[KatexRenderer]:
    with KatexRenderer(ASSETS, executable_path=CHROMIUM) as r:
        yield r


def _outputs() -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted((FIXTURES / "math_outputs").glob("*.md"))]


@needs_browser
def test_katex_matcher_accepts_renderings_that_look_the_same(renderer: KatexRenderer) -> None:
    options = ScoringOptions(math_matcher=renderer.matcher)
    tests = {t.id: t for t in load_tests(FIXTURES / "math_tests.jsonl")}
    frac = tests["m_frac"]
    assert isinstance(frac, MathTest)
    assert frac.run(r"\[ \dfrac{a}{b}+x^2 \]", options)[0]
    assert not frac.run(r"$\frac{b}{a} + x^{2}$", options)[0]
    assert renderer.render(r"\frac{a}{").error is not None


@needs_browser
def test_math_pass_fail_is_identical_to_olmocr(renderer: KatexRenderer, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lxml", reason="olmOCR's MathML comparison parses XML with lxml (pip install lxml)")
    from playwright.sync_api import BrowserType

    original = BrowserType.launch

    def launch(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("executable_path", CHROMIUM)
        kwargs.setdefault("args", ["--headless", "--no-sandbox", "--disable-gpu"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BrowserType, "launch", launch)
    olmocr_tests = pytest.importorskip("olmocr.bench.tests", reason="olmocr not installed", exc_type=ImportError)
    options = ScoringOptions(math_matcher=renderer.matcher)
    mine = {t.id: t for t in load_tests(FIXTURES / "math_tests.jsonl")}
    disagreements: list[str] = []
    verdicts = {True: 0, False: 0}
    for line in (FIXTURES / "math_tests.jsonl").read_text(encoding="utf-8").splitlines():
        theirs = olmocr_tests.load_single_test(line)
        ours = mine[json.loads(line)["id"]]
        for name, markdown in _outputs():
            try:
                expected = bool(theirs.run(markdown)[0])
            except Exception:
                expected = False
            got = bool(ours.run(markdown, options)[0])
            verdicts[expected] += 1
            if got != expected:
                disagreements.append(f"{ours.id} on {name}: olmocr={expected} tracr={got}")
    print("math verdicts (olmocr):", verdicts, "disagreements:", len(disagreements))
    assert not disagreements, "\n".join(disagreements)
    assert verdicts[True] >= 8 and verdicts[False] >= 8
