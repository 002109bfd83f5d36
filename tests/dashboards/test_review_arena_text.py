"""The arena stays blind with the text-layer baseline on one side (``tracr review`` in Chromium).

The baseline's page is what :func:`tracr.documents.pdf.page_text_markdown` writes for a real PDF
that pymupdf4llm marks up (``<sup>``, picture-text comments); the other side is a model that
writes its own HTML (``<sup>``, ``<b>``, an HTML table, a comment). Rendered or raw, both sides
must read as the same kind of text: no comment, no tag, footnote marks alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.dashboards.test_review_e2e import CHROMIUM, CHROMIUM_ARGS, _serve_review, settle
from tests.documents.paper_pdf import make_paper_pdf
from tracr.documents.pdf import page_text_markdown
from tracr.testing.review_tree import ModelOutputs, write_review_job

JOB = "blind"
VLM_PAGE = (
    "# Structured Graphs for Sequence Models\n\n"
    "Ada Lovelace<sup>1</sup> and <b>Alan Turing</b><sup>2</sup>\n\n"
    "<!-- figure: skipped by the model -->\n"
    "<table><tr><th>label</th></tr><tr><td>Activity</td></tr></table>\n\n"
    "Figure 1: From st-graph to S-RNN for an example problem."
)
TELLTALES = ("<", "&lt;", "picture text", "-->", "sup>")


@pytest.fixture
def blind_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "outputs"
    pdf = make_paper_pdf(tmp_path / "inputs" / "paper.pdf")
    baseline = page_text_markdown(str(pdf), 1)  # what the pdf-text provider writes for this page
    write_review_job(
        root,
        JOB,
        {"paper": pdf},
        [ModelOutputs("pdf-text-layer", {("paper", 1): baseline}, provider="pdf-text"), ModelOutputs("vlm", {("paper", 1): VLM_PAGE})],
    )
    yield from _serve_review(root)


def _sides(page: Page) -> list[str]:
    """The text of the arena's Left and Right columns."""
    texts = []
    for side in ("Left", "Right"):
        column = page.locator("[data-testid='stColumn']").filter(has_text=f"{side} · model hidden until you vote").last
        texts.append(column.inner_text())
    return texts


def test_both_sides_read_as_the_same_kind_of_text_rendered_and_raw(blind_server: tuple[str, Path]) -> None:
    url, _ = blind_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/arena?job={JOB}")
            page.get_by_role("button", name="Left is better").wait_for(timeout=30_000)
            page.get_by_text("Figure 1: From st-graph").nth(1).wait_for(timeout=30_000)  # both sides drawn
            settle(page)
            for side in _sides(page):
                assert "Lovelace¹" in side and "Turing" in side, side  # footnote marks alike on both sides
                assert not [t for t in TELLTALES if t in side], side
            html = page.content()
            assert "pdf-text-layer" not in html and "vlm" not in html  # still blind in the HTML

            page.get_by_text("Raw", exact=True).click()
            page.locator("[data-testid='stCode']").nth(1).wait_for(timeout=30_000)
            settle(page)
            raw = [page.locator("[data-testid='stCode']").nth(i).inner_text() for i in range(2)]
            for side in raw:
                assert "Lovelace¹" in side, side
                assert not [t for t in TELLTALES if t in side], side
            assert any("| label |" in side for side in raw)  # the HTML table is a pipe table in the raw view too
        finally:
            browser.close()
