"""Run lifecycle events reach the Prefect server, with non-secret payloads.

Events are read back through the client's events API (``/events/filter``) of the
session's real Prefect server.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY, make_pdf, write_config

pytestmark = pytest.mark.usefixtures("prefect_server")
KEY_ENV = "TRACR_EVENTS_TEST_KEY"


def _config(job_id: str, inputs: Path, base_url: str, **extra: Any) -> dict[str, Any]:
    model = {"model": "stub-ocr", "base_url": base_url, "api_key_env": KEY_ENV, "retries": 0, "timeout_s": 30, "max_concurrent_requests": 2}
    return {"job_id": job_id, "input_path": str(inputs), "prompt": "OCR", "max_tokens": 64, "models": [model], **extra}


async def _events(job_id: str, expect: set[str], timeout: float = 60) -> list[Any]:
    """Every tracr.run.* event of the job, once all ``expect``ed names have arrived."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    query = EventFilter(event=EventNameFilter(prefix=["tracr.run."]), resource=EventResourceFilter(id_prefix=[f"tracr.run.{job_id}."]))
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            events = (await client.read_events(filter=query, limit=50)).events
            if expect <= {e.event for e in events} or time.monotonic() > deadline:
                return events
            await asyncio.sleep(0.5)


async def _run(config: Path, out: Path):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    return await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)


def _no_secret(events: list[Any]) -> None:
    for event in events:
        assert TEST_API_KEY not in json.dumps(event.model_dump(mode="json"))


async def test_completed_run_with_page_failures_emits_started_alert_and_completed(tmp_path, stub_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(rules=[{"fault": "500", "times": -1, "image_width": 1288}])  # every landscape page fails
    make_pdf(tmp_path / "in" / "portrait.pdf", 3)
    make_pdf(tmp_path / "in" / "landscape.pdf", 2, width=842, height=595)
    config = write_config(tmp_path / "job.yaml", _config("evjob", tmp_path / "in", stub.base_url, page_failure_alert_count=2))
    assert (await _run(config, tmp_path / "out")).is_completed()

    events = await _events("evjob", {"tracr.run.started", "tracr.run.page-failures", "tracr.run.completed"})
    by_name = {e.event: e for e in events}
    assert {"tracr.run.started", "tracr.run.page-failures", "tracr.run.completed"} <= set(by_name)
    assert "tracr.run.failed" not in by_name
    done = by_name["tracr.run.completed"]
    assert done.resource.id == "tracr.run.evjob.stub-ocr.1"
    assert done.resource["tracr.job-id"] == "evjob" and done.resource["tracr.model"] == "stub-ocr"
    assert done.payload["status"] == "completed"
    assert done.payload["pages_done"] == 3 and done.payload["pages_failed"] == 2
    assert done.payload["failures_by_class"] == {"server_error": 2}
    alert = by_name["tracr.run.page-failures"]
    assert alert.payload["threshold"] == 2 and alert.payload["pages_failed"] >= 2
    assert len([e for e in events if e.event == "tracr.run.page-failures"]) == 1  # fired once, not per page
    assert any(r.role == "flow-run" for r in done.related)  # Prefect links it to the emitting flow run
    _no_secret(events)


async def test_rejected_key_emits_failed_with_error_class(tmp_path, stub_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key")
    stub = stub_server()
    make_pdf(tmp_path / "in" / "doc.pdf", 2)
    config = write_config(tmp_path / "job.yaml", _config("evfail", tmp_path / "in", stub.base_url))
    state = await _run(config, tmp_path / "out")
    assert state.is_failed()
    events = await _events("evfail", {"tracr.run.failed"})
    failed = [e for e in events if e.event == "tracr.run.failed"]
    assert len(failed) == 1 and failed[0].payload["status"] == "failed" and failed[0].payload["error_class"] == "auth"
    assert "sk-wrong-key" not in json.dumps([e.model_dump(mode="json") for e in events])
    _no_secret(events)


async def test_cancelled_run_emits_cancelled(tmp_path, stub_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.3)
    make_pdf(tmp_path / "in" / "doc.pdf", 40)
    config = write_config(tmp_path / "job.yaml", _config("evcancel", tmp_path / "in", stub.base_url))
    journal = tmp_path / "out/evcancel/stub-ocr/run-1/doc/pages.jsonl"
    job = asyncio.create_task(_run(config, tmp_path / "out"))
    deadline = time.monotonic() + 120
    while not (journal.is_file() and journal.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    events = await _events("evcancel", {"tracr.run.started", "tracr.run.cancelled"})
    cancelled = [e for e in events if e.event == "tracr.run.cancelled"]
    assert len(cancelled) == 1 and cancelled[0].payload["status"] == "cancelled"
    assert 2 <= cancelled[0].payload["pages_done"] < 40
    _no_secret(events)
