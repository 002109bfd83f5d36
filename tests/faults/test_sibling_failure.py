"""One PDF's pages fail hard while the others are slow: the run stops as one, and its records agree.

Real parts: the suite's Prefect server, the loopback stub (a real HTTP process)
refusing the key for landscape pages only, PDFs made here. Before the fix the
slow PDFs went on after the OpenAI client was closed and wrote
``Cannot send a request, as the client has been closed`` lines after
``run_metadata.json`` said 0 failed.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tests.faults.records import assert_records_agree, lines_after, run_meta, stub_job, text_under
from tracr.outputs.files import read_json

pytestmark = pytest.mark.usefixtures("prefect_server")
KEY_ENV = "TRACR_FAULTS_TEST_KEY"
SLOW_PAGES = 30


async def test_a_pdf_failing_hard_stops_its_siblings_before_the_client_closes(tmp_path, stub_server, monkeypatch):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    # Landscape pages render 1288 px wide: their first attempt is refused (401, fatal for the run).
    # The stub answers every other page after 0.5 s, so the portrait PDFs are mid-way when that happens.
    stub = stub_server(latency_s=0.5, rules=[{"fault": "401", "times": 1, "image_width": 1288}])
    make_pdf(tmp_path / "inputs" / "slow_a.pdf", SLOW_PAGES)
    make_pdf(tmp_path / "inputs" / "slow_b.pdf", SLOW_PAGES)
    make_pdf(tmp_path / "inputs" / "zz_bad.pdf", 1, width=842, height=595)
    config = write_config(tmp_path / "job.yaml", stub_job(tmp_path / "inputs", stub.base_url, "hardfail", KEY_ENV, pdf_concurrency=3))
    out = tmp_path / "out"
    run_dir = out / "hardfail" / "stub-ocr" / "run-1"

    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)
    assert state.is_failed(), state
    meta = run_meta(run_dir)
    assert meta["status"] == "failed" and "401" in meta["error"], meta["error"]
    await asyncio.sleep(1.5)  # anything still running would write within this
    assert stub.stats()["in_flight"] == 0, "requests still in flight after the run ended"

    # Nothing was recorded after the run wrote its final metadata.
    meta = run_meta(run_dir)
    assert lines_after(run_dir, meta["updated_at"]) == []
    last_journal_write = max(p.stat().st_mtime for p in run_dir.glob("*/pages.jsonl"))
    assert last_journal_write <= (run_dir / "run_metadata.json").stat().st_mtime
    # The run's counts are the journals' counts, PDF by PDF and in total.
    counts = assert_records_agree(run_dir)
    listed = {entry["pdf_slug"]: entry for entry in meta["documents"]["not_completed"]}
    for slug in ("slow_a", "slow_b"):
        assert listed[slug]["status"] == "cancelled", listed
        assert read_json(run_dir / slug / "pdf_metadata.json")["status"] == "cancelled"
        assert counts.get(slug, {"done": 0})["done"] < SLOW_PAGES  # stopped mid-way, not run to the end
    assert listed["zz_bad"]["status"] == "failed"
    assert "client has been closed" not in text_under(out)
    # No sibling page was failed by the teardown: the only failures a journal holds are none (the fatal page is not a page failure).
    assert sum(c["failed"] for c in counts.values()) == 0, counts
    done_before = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/*.md")}
    print(f"hard failure: {sum(c['done'] for c in counts.values())} done, 0 failed, run failed; in flight after: 0")

    # --resume (the refused first attempts are spent) finishes every page and rewrites none.
    requests_before = stub.stats()["total_requests"]
    started = time.monotonic()
    resumed = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out), resume=True), return_state=True)
    assert resumed.is_completed(), resumed
    meta = run_meta(run_dir)
    total = 2 * SLOW_PAGES + 1
    assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == total and meta["rollup"]["pages_failed"] == 0
    assert stub.stats()["total_requests"] - requests_before == total - len(done_before)
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before, "a finished page was rewritten"
    print(f"resume: {total - len(done_before)} pages sent, 0 rewritten, {time.monotonic() - started:.1f} s")
