"""The reviewer shows how a run asked its model and, on demand, the model's reply as it came (Chromium)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import make_pdf
from tests.dashboards.test_review_e2e import CHROMIUM, CHROMIUM_ARGS, _serve_review, settle
from tracr.adapters.records import adapter_record
from tracr.adapters.registry import adapter_by_name
from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.layout import OutputLayout
from tracr.testing.review_tree import ModelOutputs, write_review_job

REPLY = json.dumps(
    [
        {"bbox": [1, 2, 3, 4], "category": "Page-header", "text": "ACME internal <img src=x onerror=alert(1)>"},
        {"bbox": [1, 5, 3, 9], "category": "Text", "text": "Dear customer, your order has shipped."},
    ]
)


@pytest.fixture
def reply_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "outputs"
    pdf = make_pdf(tmp_path / "inputs" / "letter.pdf", 1, label="letter")
    write_review_job(root, "replies", {"letter": pdf}, [ModelOutputs("dots", {("letter", 1): "Dear customer, your order has shipped."})])
    location = OutputLayout(root).run("replies", "dots", 1)
    location.page_reply("letter", 1).write_text(REPLY, encoding="utf-8")
    meta = read_json(location.run_metadata) or {}
    meta.setdefault("settings", {})["adapter"] = adapter_record(adapter_by_name("dots.ocr"), False)
    write_json_atomic(location.run_metadata, meta)
    yield from _serve_review(root)


def test_browse_says_how_the_model_was_asked_and_shows_its_reply_as_text(reply_server: tuple[str, Path]) -> None:
    url, _ = reply_server
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url + "/browse?job=replies&model=dots&pdf=letter&page=1")
            page.get_by_text("Asked as dots.ocr").first.wait_for(timeout=30_000)
            settle(page)
            body = page.locator("body").inner_text()
            assert "read by dots-layout" in body and "furniture dropped" in body, body
            assert "Page-header" not in body  # the Markdown, until the reply is asked for
            page.get_by_text("Reply", exact=True).click()
            settle(page)
            page.get_by_text('"category": "Page-header"').first.wait_for(timeout=30_000)
            body = page.locator("body").inner_text()
            assert "<img src=x onerror=alert(1)>" in body  # shown as text, never as markup
            assert page.locator("img[src='x']").count() == 0
        finally:
            browser.close()
    assert not dialogs, dialogs
