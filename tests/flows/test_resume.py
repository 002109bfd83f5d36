"""Resume and idempotent submission, with real processes and the test Prefect server.

* resume continues the latest unfinished run in place: finished pages are never
  redone (the stub counts requests), failed pages are retried;
* a second ``tracr run`` of the same config while the first runs reports the
  active run instead of starting another; a claim left by a dead process is taken over;
* ``tracr cancel`` stops a running job (run ``cancelled``, pages kept) and
  ``--resume`` finishes only the remaining pages.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tracr.config.job import parse_job_config
from tracr.outputs.files import read_json
from tracr.outputs.journal import read_page_journal
from tracr.outputs.layout import OutputLayout
from tracr.run.claims import claim_path, config_digest, release_claim, try_claim

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "TRACR_RESUME_TEST_KEY"
PAGES = 80  # at 0.4 s a page, one at a time: the job outlives the duplicate submission and the cancel


def _config(inputs: str, base_url: str, job_id: str = "resumable", **model: Any) -> dict[str, Any]:
    spec = {"model": "stub-ocr", "base_url": base_url, "api_key_env": KEY_ENV, "retries": 0, "max_concurrent_requests": 2, "timeout_s": 30}
    spec.update(model)
    return {"job_id": job_id, "input_path": inputs, "prompt": "OCR", "max_tokens": 64, "models": [spec]}


def _tracr(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def _env() -> dict[str, str]:
    return {**os.environ, KEY_ENV: TEST_API_KEY}


def _done_pages(run_dir: Path) -> int:
    return sum(1 for r in read_page_journal(run_dir / "doc" / "pages.jsonl") if r.status == "done")


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_resume_redoes_only_failed_pages_in_place(tmp_path, stub_server, monkeypatch):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    # Landscape pages render 1288 px wide, portrait ones 910: the first attempt of each landscape page fails.
    stub = stub_server(rules=[{"fault": "500", "times": 1, "image_width": 1288}])
    make_pdf(tmp_path / "inputs" / "portrait.pdf", 4)
    make_pdf(tmp_path / "inputs" / "landscape.pdf", 3, width=842, height=595)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url))
    out = tmp_path / "out"
    run_dir = out / "resumable" / "stub-ocr" / "run-1"

    first = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)
    assert first.is_completed()
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "completed" and run["rollup"]["pages_failed"] == 3 and run["rollup"]["pages_done"] == 4
    # The run completed with failed pages: --resume finishes exactly those, in place.
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "portrait").glob("*.md")}
    requests_before = stub.stats()["total_requests"]
    assert requests_before == 7

    second = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out), resume=True), return_state=True)
    assert second.is_completed(), second.message
    assert not (out / "resumable" / "stub-ocr" / "run-2").exists()  # resumed in place
    assert stub.stats()["total_requests"] - requests_before == 3  # only the failed landscape pages
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "portrait").glob("*.md")} == before  # never rewritten
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "completed" and run["resumes"] == 1
    assert run["rollup"]["pages_done"] == 7 and run["rollup"]["pages_failed"] == 0
    history = [h["status"] for h in run["status_history"]]
    resumed = [h for h in run["status_history"] if h.get("resumed_from")]
    assert resumed and resumed[0]["resumed_from"] == "completed" and resumed[0]["status"] == "queued"
    assert history[history.index("queued", 1) :] == ["queued", "starting", "running", "completed"]
    pdf = read_json(run_dir / "landscape" / "pdf_metadata.json")
    assert [p["status"] for p in pdf["pages"]] == ["done"] * 3
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["pages_done"] == 7 and metrics["pages_failed"] == 0 and metrics["resumes"] == 1

    # Resuming a completed run does nothing: no request, no new run.
    third = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out), resume=True), return_state=True)
    assert third.is_completed()
    assert stub.stats()["total_requests"] - requests_before == 3
    assert sorted(p.name for p in (out / "resumable" / "stub-ocr").iterdir() if p.is_dir()) == ["run-1"]


def test_stale_claim_is_taken_over_and_live_claim_refused(tmp_path, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    pdf_factory("doc.pdf", 1)
    job = parse_job_config(_config(str(tmp_path / "inputs"), "http://127.0.0.1:9/v1")).config
    digest = config_digest(job)
    # The digest never sees a key value: two configs differing only in the key are the same job.
    keyed = [
        parse_job_config(_config(str(tmp_path / "inputs"), "http://127.0.0.1:9/v1", api_key=key)).config for key in (TEST_API_KEY, "other")
    ]
    assert config_digest(keyed[0]) == config_digest(keyed[1]) and len(digest) == 64
    assert config_digest(parse_job_config(_config(str(tmp_path / "inputs"), "http://127.0.0.1:9/v1", max_tokens=7)).config) != digest
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = claim_path(tmp_path, digest)
    path.parent.mkdir(parents=True)
    import socket

    path.write_text(json.dumps({"digest": digest, "token": "old", "pid": dead.pid, "host": socket.gethostname()}))
    acquired, mine = try_claim(tmp_path, digest, {"job_id": "resumable"})
    assert acquired and mine["took_over"]["pid"] == dead.pid
    again, holder = try_claim(tmp_path, digest, {"job_id": "resumable"})
    assert not again and holder["token"] == mine["token"]  # our own live claim blocks a second one
    assert release_claim(tmp_path, mine) and not path.exists()


def _start_slow_job(tmp_path: Path, stub, job_id: str, **popen: Any) -> tuple[Path, Path, Path, subprocess.Popen]:
    """A `tracr run` of PAGES pages at 0.4 s each, one at a time; returns once two are done: (config, out, run_dir, process)."""
    make_pdf(tmp_path / "inputs" / "doc.pdf", PAGES)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, job_id=job_id, max_concurrent_requests=1))
    out = tmp_path / "out"
    run_dir = out / job_id / "stub-ocr" / "run-1"
    process = subprocess.Popen(_tracr("run", str(config), "--outputs", str(out)), env=_env(), cwd=REPO, **popen)
    try:
        _wait_for(lambda: _done_pages(run_dir) >= 2, 120, "the job to finish two pages")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return config, out, run_dir, process


def test_duplicate_submission_cancel_and_resume_with_real_processes(tmp_path, stub_server):
    stub = stub_server(latency_s=0.4)
    config, out, run_dir, first = _start_slow_job(tmp_path, stub, "slowjob", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Same config again while the first runs: reported, not started.
        second = subprocess.run(
            _tracr("run", str(config), "--outputs", str(out)), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout and f"pid {first.pid}" in second.stdout
        assert "stub-ocr run-1" in second.stdout
        assert not (out / "slowjob" / "stub-ocr" / "run-2").exists()
        assert first.poll() is None

        # tracr cancel finds the job's flow run by its tag and stops it.
        cancel = subprocess.run(
            _tracr("cancel", "slowjob", "--wait", "60"), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert "slowjob" in cancel.stdout
        first_out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1, first_out
    assert "job cancelled" in first_out, first_out[-3000:]
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "cancelled"
    kept = _done_pages(run_dir)
    assert 2 <= kept < PAGES
    assert len(list((run_dir / "doc").glob("*.md"))) == kept
    assert not any(claim_path(out, "x").parent.glob("*.json"))  # the claim was released
    requests_before = stub.stats()["total_requests"]

    resumed = subprocess.run(
        _tracr("run", str(config), "--outputs", str(out), "--resume"), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "completed" and run["rollup"]["pages_done"] == PAGES
    assert any(h.get("resumed_from") == "cancelled" for h in run["status_history"])
    new_requests = stub.stats()["total_requests"] - requests_before
    assert new_requests == PAGES - kept  # nothing finished is redone
    assert sorted(r.page for r in read_page_journal(run_dir / "doc" / "pages.jsonl") if r.status == "done") == list(range(1, PAGES + 1))
    for text in (resumed.stdout, resumed.stderr, first_out, second.stdout):
        assert TEST_API_KEY not in text


def test_cancel_settles_a_job_whose_process_was_killed(tmp_path, stub_server):
    """SIGKILL leaves the flow run Running with nobody to obey a cancel; tracr cancel settles it."""
    _, out, run_dir, job = _start_slow_job(
        tmp_path, stub_server(latency_s=0.4), "killedjob", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    os.killpg(job.pid, 9)  # the job and its render workers: no hook, no state change, the claim left behind
    job.wait()
    claims = list(claim_path(out, "x").parent.glob("*.json"))
    assert len(claims) == 1 and read_json(claims[0])["pid"] == job.pid
    assert read_json(run_dir / "run_metadata.json")["status"] == "running"

    started = time.monotonic()
    cancel = subprocess.run(
        _tracr("cancel", "killedjob", "--outputs", str(out), "--wait", "60"),
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert "Cancelled" in cancel.stdout and time.monotonic() - started < 45, cancel.stdout  # settled, not waited out
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "cancelled" and f"pid {job.pid}" in run["error"]
    assert not list(claim_path(out, "x").parent.glob("*.json")), "the dead job's claim is removed"

    async def flow_run_states() -> list[tuple[str, str]]:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentTaskRunId, FlowRunFilterTags

        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=["tracr-job:killedjob"]), parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True)
                )
            )
        return [(r.state.type.value, r.state.message or "") for r in runs]

    states = asyncio.run(flow_run_states())
    assert len(states) == 1 and states[0][0] == "CANCELLED" and "stub-ocr run-1" in states[0][1], states
    # --resume from `cancelled` is the path test_duplicate_submission_cancel_and_resume_with_real_processes takes


async def test_live_claim_blocks_a_submission_and_force_starts_anyway(tmp_path, stub_server, pdf_factory, monkeypatch):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server()
    pdf_factory("doc.pdf", 2)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, job_id="forced"))
    out = tmp_path / "out"
    digest = config_digest(parse_job_config(_config(str(tmp_path / "inputs"), stub.base_url, job_id="forced")).config)
    acquired, held = try_claim(out, digest, {"job_id": "forced", "flow_run_id": "held-by-test"})  # this live process holds it
    assert acquired
    try:
        state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)
        result = await state.result()
        assert result["duplicate_of"]["flow_run_id"] == "held-by-test" and result["duplicate_of"]["pid"] == os.getpid()
        assert not (out / "forced" / "stub-ocr").exists() and stub.stats()["total_requests"] == 0

        forced = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out), force=True), return_state=True)
        assert forced.is_completed()
        run = read_json(out / "forced" / "stub-ocr" / "run-1" / "run_metadata.json")
        assert run["status"] == "completed" and run["config_digest"] == digest
        assert read_json(out / "forced" / "job_metadata.json")["config_digest"] == digest
        assert read_json(claim_path(out, digest))["token"] == held["token"]  # --force took no claim and left ours alone
    finally:
        release_claim(out, held)


async def test_cancel_a_served_deployment_run_then_resume_through_the_deployment(tmp_path, stub_server):
    """The runner terminates a served run on Cancelling; records still say cancelled, and resume finishes it."""
    import signal

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from tests.deployments.test_deployments import _start_serve, _wait_for_deployment
    from tracr.config.job_request import JobRequest

    pages = 30
    stub = stub_server(latency_s=0.4)
    make_pdf(tmp_path / "inputs" / "doc.pdf", pages)
    config = write_config(
        tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, job_id="servedcancel", max_concurrent_requests=1)
    )
    out = tmp_path / "out"
    run_dir = out / "servedcancel" / "stub-ocr" / "run-1"
    log = tmp_path / "serve.log"
    proc = _start_serve("cancel-serve", {KEY_ENV: TEST_API_KEY}, log)
    try:
        await _wait_for_deployment("ocr-job/cancel-serve", proc, log)
        request = JobRequest(config_path=str(config), outputs=str(out)).model_dump(exclude_none=True)
        flow_run = await run_deployment("ocr-job/cancel-serve", parameters={"request": request}, timeout=0)
        deadline = time.monotonic() + 120
        while _done_pages(run_dir) < 2:
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            await asyncio.sleep(0.3)
        cancel = subprocess.run(
            _tracr("cancel", "servedcancel", "--wait", "60"), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=200
        )
        assert cancel.returncode == 0 and "Cancelled" in cancel.stdout, cancel.stdout + cancel.stderr
        async with get_client() as client:
            assert (await client.read_flow_run(flow_run.id)).state.is_cancelled()
        run = read_json(run_dir / "run_metadata.json")
        assert run["status"] == "cancelled"
        kept = _done_pages(run_dir)
        assert 2 <= kept < pages and not list(OutputLayout(out).claims_dir.glob("*.json"))
        requests_before = stub.stats()["total_requests"]

        resumed = await run_deployment(
            "ocr-job/cancel-serve", parameters={"request": {**request, "resume": True}}, timeout=240, poll_interval=1
        )
        assert resumed.state.is_completed(), f"{resumed.state}\n{log.read_text(errors='replace')}"
        run = read_json(run_dir / "run_metadata.json")
        assert run["status"] == "completed" and run["rollup"]["pages_done"] == pages
        assert stub.stats()["total_requests"] - requests_before == pages - kept
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
