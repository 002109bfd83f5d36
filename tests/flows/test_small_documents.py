"""A folder of one-page PDFs: a few task runs, not one per PDF, and nothing the per-PDF grain gave is lost.

Real parts: the suite's Prefect server, the loopback stub (a real HTTP process),
PDFs made here. A broken PDF fails alone, a page the model refuses fails alone,
the UI's progress says documents done/failed/left, ``tracr show --pdf`` finds any
one document, and a run stopped mid-way by a fatal error resumes without
sending a finished page again.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tests.faults.records import assert_records_agree, run_meta, stub_job
from tracr.outputs.files import read_json
from tracr.run.batches import BATCH_PDFS

pytestmark = pytest.mark.usefixtures("prefect_server")
KEY_ENV = "TRACR_SMALL_DOCS_TEST_KEY"
DOCS = 150


async def _flow_tasks_and_artifacts(job_id: str) -> tuple[list, list]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId, FlowRunFilterTags

    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"tracr-job:{job_id}"])))
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs])))
        # by key: the session's server holds every test's artifacts, more than one unfiltered page
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=f"{job_id}-")))
    return task_runs, [a for a in artifacts if (a.key or "").startswith(job_id)]


async def test_a_folder_of_one_page_pdfs_runs_in_batches_and_each_document_ends_alone(tmp_path, stub_server, monkeypatch, capsys):
    from cli.main import main
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.01, rules=[{"fault": "400", "image_width": 1288}])  # landscape pages are refused, not fatally
    inputs = tmp_path / "inputs"
    for i in range(DOCS):
        make_pdf(inputs / f"doc-{i:04d}.pdf", 1)
    make_pdf(inputs / "doc-0050-wide.pdf", 1, width=842, height=595)
    (inputs / "doc-0100-broken.pdf").write_bytes(b"%PDF-1.7 this is not a PDF")
    config = write_config(
        tmp_path / "job.yaml", stub_job(inputs, stub.base_url, "folder", KEY_ENV, pdf_concurrency=4, max_concurrent_requests=16)
    )
    out = tmp_path / "out"
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)
    assert state.is_completed(), state.message

    run_dir = out / "folder" / "stub-ocr" / "run-1"
    meta = run_meta(run_dir)
    counts = assert_records_agree(run_dir)
    documents = meta["documents"]  # counts, and by name only the PDF that did not complete
    assert documents["total"] == DOCS + 2 and documents["by_status"] == {"completed": DOCS + 1, "failed": 1}
    assert [(e["pdf_slug"], e["status"]) for e in documents["not_completed"]] == [("doc-0100-broken", "failed")]
    assert documents["not_completed"][0]["error"] and documents["not_completed_unlisted"] == 0
    assert "pdfs" not in meta  # no entry per PDF: each pdf_metadata.json has its own
    assert read_json(run_dir / "doc-0100-broken" / "pdf_metadata.json")["status"] == "failed"
    wide = read_json(run_dir / "doc-0050-wide" / "pdf_metadata.json")
    assert (wide["status"], wide["rollup"]["pages_failed"]) == ("completed", 1)
    assert counts["doc-0050-wide"] == {"done": 0, "failed": 1}
    assert meta["rollup"]["pages_done"] == DOCS and meta["rollup"]["pages_failed"] == 1
    assert stub.stats()["total_requests"] == DOCS + 1

    task_runs, artifacts = await _flow_tasks_and_artifacts("folder")
    ocr_tasks = sorted(t.name for t in task_runs if t.name.startswith("stub-ocr · "))
    assert len(ocr_tasks) == -(-(DOCS + 2) // BATCH_PDFS), ocr_tasks  # a task run per batch, not per PDF
    assert ocr_tasks[0] == f"stub-ocr · doc-0000 … doc-{BATCH_PDFS - 2:04d} ({BATCH_PDFS} PDFs)", ocr_tasks  # doc-0050-wide sorts in
    progress = next(a for a in artifacts if a.key == "folder-stub-ocr-run-1-progress")
    assert progress.description.endswith(f"documents {DOCS + 1} done, 1 failed, 0 left"), progress.description
    summary = next(a for a in artifacts if a.key == "folder-stub-ocr-run-1-summary")
    rows = json.loads(summary.data) if isinstance(summary.data, str) else summary.data
    assert rows[0]["pdf"] == "doc-0100-broken" and rows[-1]["pdf"] == "TOTAL"  # what did not complete comes first

    capsys.readouterr()
    assert main(["show", "folder", "--outputs", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "failed documents:" in shown and "doc-0100-broken" in shown
    assert main(["show", "folder", "--pdf", "doc-0050-wide", "--outputs", str(out)]) == 0
    one = capsys.readouterr().out
    assert "[bad_request]" in one and "completed" in one
    assert main(["show", "folder", "--pdf", "no-such-doc", "--outputs", str(out)]) == 1
    assert "no document 'no-such-doc'" in capsys.readouterr().err


async def test_a_fatal_error_mid_folder_stops_the_run_and_resume_sends_only_what_is_left(tmp_path, stub_server, monkeypatch):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.05, rules=[{"fault": "401", "times": 1, "image_width": 1288}])  # fatal for the run, once
    inputs = tmp_path / "inputs"
    for i in range(DOCS):
        make_pdf(inputs / f"doc-{i:04d}.pdf", 1)
    make_pdf(inputs / "doc-0090-wide.pdf", 1, width=842, height=595)  # in the second batch
    config = write_config(
        tmp_path / "job.yaml", stub_job(inputs, stub.base_url, "stopped", KEY_ENV, pdf_concurrency=4, max_concurrent_requests=8)
    )
    out = tmp_path / "out"
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)
    assert state.is_failed(), state
    run_dir = out / "stopped" / "stub-ocr" / "run-1"
    meta = run_meta(run_dir)
    assert meta["status"] == "failed" and "401" in meta["error"]
    counts = assert_records_agree(run_dir)
    done_before = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/*.md")}
    assert 64 <= len(done_before) < DOCS, len(done_before)  # the first batch finished, the last did not start
    assert sum(c["failed"] for c in counts.values()) == 0

    sent_before = stub.stats()["total_requests"]
    resumed = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out), resume=True), return_state=True)
    assert resumed.is_completed(), resumed.message
    meta = run_meta(run_dir)
    assert meta["rollup"]["pages_done"] == DOCS + 1 and meta["documents"]["by_status"] == {"completed": DOCS + 1}
    assert stub.stats()["total_requests"] - sent_before == DOCS + 1 - len(done_before)  # no finished page sent again
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before, "a finished page was rewritten"
    assert_records_agree(run_dir)


async def test_two_jobs_in_one_process_share_the_render_pool_until_the_last_ends(tmp_path, stub_server, monkeypatch):
    """A deployment runner or a notebook runs jobs side by side: the first to end must not shut the pool under the other."""
    import asyncio

    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.1)
    short, long = tmp_path / "short", tmp_path / "long"
    make_pdf(short / "one.pdf", 1)
    for i in range(3):
        make_pdf(long / f"doc-{i}.pdf", 30)  # ~4.5 s at 2 in flight: still running when the short job ends
    configs = [
        write_config(tmp_path / f"{name}.yaml", stub_job(folder, stub.base_url, name, KEY_ENV, max_concurrent_requests=2))
        for name, folder in (("short", short), ("long", long))
    ]
    states = await asyncio.gather(
        *(ocr_job_flow(JobRequest(config_path=str(c), outputs=str(tmp_path / "out")), return_state=True) for c in configs)
    )
    assert all(state.is_completed() for state in states), [s.message for s in states]
    meta = run_meta(tmp_path / "out" / "long" / "stub-ocr" / "run-1")
    assert meta["rollup"]["pages_done"] == 90 and meta["rollup"]["pages_failed"] == 0, meta["rollup"]
