"""Mistral OCR end to end: each page goes to ``POST /v1/ocr`` as a one-page PDF, and the JSON answer is read.

The stub serves ``/v1/ocr`` in Mistral's response shape, each page's Markdown naming the document it
received (its sha and size, its page count) and carrying that page's own text layer, so the test sees
that the right page went alone; requests are kept with the document as ``<document N bytes>``.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.adapters.family_jobs import KEY_ENV, job_config, run_job, stub_requests
from tests.conftest import TEST_API_KEY, write_config
from tracr.adapters.parsers.mistral_ocr import IMAGE_PLACEHOLDER
from tracr.outputs.files import read_json
from tracr.outputs.journal import read_page_journal

pytestmark = pytest.mark.usefixtures("prefect_server")

MODEL = "mistral-ocr-latest"


async def test_each_page_goes_alone_to_the_ocr_endpoint_and_is_read(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    rules = [{"fault": "429", "times": 1, "retry_after_s": 0}, {"fault": "500", "times": 1}]
    stub = stub_server(model=MODEL, capture=True, rules=rules)
    pdf_factory("doc.pdf", 2)
    config = write_config(tmp_path / "job.yaml", job_config("mistral", str(tmp_path / "inputs"), stub.base_url, MODEL, retries=3))
    state = await run_job(config, tmp_path / "out")
    assert state.is_completed(), state.message

    requests = stub_requests(stub.base_url)
    assert len(requests) == 6  # two pages, each after a 429 and a 500
    sizes = set()
    for body in requests:
        document = body.pop("document")
        assert body == {"model": MODEL, "include_image_base64": False, "extract_header": True, "extract_footer": True}
        assert document["type"] == "document_url"
        sizes.add(int(re.fullmatch(r"<document (\d+) bytes>", document["document_url"]).group(1)))  # type: ignore[union-attr]

    run_dir = tmp_path / "out" / "mistral" / MODEL / "run-1"
    for number in (1, 2):
        page = (run_dir / "doc" / f"{number}.md").read_text()
        match = re.fullmatch(rf"stub page sha256=[0-9a-f]{{12}} bytes=(\d+) page=1/1\n\npage {number} of doc\n.*lazy dog\.", page, re.S)
        assert match, page  # a one-page PDF holding this page only; header and footer left out
        assert int(match.group(1)) in sizes
        raw = json.loads((run_dir / "doc" / f"{number}.reply.txt").read_text())
        assert raw["model"] == MODEL and raw["pages"][0]["header"].startswith("stub header ")
        assert raw["usage_info"]["pages_processed"] == 1

    records = read_page_journal(run_dir / "doc" / "pages.jsonl")
    assert [(r.page, r.status, r.attempts) for r in sorted(records, key=lambda r: r.page)] == [(1, "done", 3), (2, "done", 3)]
    for record in records:
        assert record.dropped == ["page_header", "page_footer"] and record.finish_reason == "stop"
        assert record.reply_meta is not None and record.reply_meta["usage_info"]["pages_processed"] == 1
    adapter = read_json(run_dir / "run_metadata.json")["settings"]["adapter"]
    assert adapter["name"] == "mistral-ocr" and adapter["engine"] == "mistral_ocr"


async def test_keep_furniture_asks_for_the_page_as_it_is(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(model=MODEL, capture=True, replies=["# Report {key}\n\n![img-0.jpeg](img-0.jpeg)\n\nBody text."])
    pdf_factory("doc.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml", job_config("mistral", str(tmp_path / "inputs"), stub.base_url, MODEL, retries=3, keep_furniture=True)
    )
    assert (await run_job(config, tmp_path / "out")).is_completed()

    (body,) = stub_requests(stub.base_url)
    assert "extract_header" not in body and "extract_footer" not in body
    page_dir = tmp_path / "out" / "mistral" / MODEL / "run-1" / "doc"
    page = (page_dir / "1.md").read_text()
    assert re.fullmatch(rf"# Report [0-9a-f]{{12}}\n\n{re.escape(IMAGE_PLACEHOLDER)}\n\nBody text\.", page), page
    (record,) = read_page_journal(page_dir / "pages.jsonl")
    assert record.status == "done" and not record.dropped and record.reply_meta and record.reply_meta["images"] == 1


async def test_a_refused_key_stops_the_run(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    stub = stub_server(model=MODEL)
    pdf_factory("doc.pdf", 12)
    config = write_config(
        tmp_path / "job.yaml", job_config("mistral", str(tmp_path / "inputs"), stub.base_url, MODEL, retries=3, max_concurrent_requests=2)
    )
    assert (await run_job(config, tmp_path / "out")).is_failed()
    run = read_json(tmp_path / "out" / "mistral" / MODEL / "run-1" / "run_metadata.json")
    assert run["status"] == "failed" and "HTTP 401" in run["error"]
    assert stub.stats()["total_requests"] < 12
