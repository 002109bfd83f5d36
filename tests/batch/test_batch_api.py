"""``batch: true``: pages through the stub's Files and Batches endpoints, with failures, expiry and a killed process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY, write_config
from tracr.outputs.files import read_json
from tracr.outputs.journal import read_page_journal

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "TRACR_BATCH_TEST_KEY"


def _config(job_id: str, inputs: Path, base_url: str, **model: Any) -> dict[str, Any]:
    spec = {
        "model": "stub-ocr",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "batch": True,
        "batch_poll_s": 0.3,
        "max_concurrent_requests": 64,
        "retries": 2,
        "price": {"input_per_million": 2.0, "output_per_million": 8.0},
        **model,
    }
    return {"job_id": job_id, "input_path": str(inputs), "prompt": "OCR", "max_tokens": 64, "models": [spec]}


def _batches(port: int) -> list[dict[str, Any]]:
    return httpx.get(f"http://127.0.0.1:{port}/_batches", timeout=10).json()["batches"]


async def _run(config_path: Path, outputs: Path, **kwargs: Any):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    return await ocr_job_flow(JobRequest(config_path=str(config_path), outputs=str(outputs), **kwargs), return_state=True)


async def test_a_batch_run_collects_results_retries_failed_pages_in_a_new_batch_and_costs_the_batch_price(
    tmp_path, stub_server, pdf_factory, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(batch={"delay_s": 1.0, "fail_ids": ["-p3"], "once": True})
    pdf_factory("doc.pdf", 6)
    state = await _run(write_config(tmp_path / "job.yaml", _config("batched", tmp_path / "inputs", stub.base_url)), tmp_path / "out")
    assert state.is_completed(), state.message

    run_dir = tmp_path / "out/batched/stub-ocr/run-1"
    records = read_page_journal(run_dir / "doc" / "pages.jsonl")
    assert sorted(r.page for r in records if r.status == "done") == [1, 2, 3, 4, 5, 6]
    assert all((run_dir / "doc" / f"{p}.md").read_text().startswith("stub page sha256=") for p in range(1, 7))
    batches = _batches(stub.port)
    assert len(batches) == 2 and len(batches[0]["custom_ids"]) == 6
    assert [cid.endswith("-p3") for cid in batches[1]["custom_ids"]] == [True]  # only the failed page went again
    assert stub.stats()["total_requests"] == 0  # no live call at all

    run = read_json(run_dir / "run_metadata.json")
    cost, usage = run["cost"], stub.stats()["batch_usage"]
    assert (cost["input_tokens"], cost["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert cost["price"]["mode"] == "batch"
    assert cost["total"] == pytest.approx((usage["prompt_tokens"] * 2.0 + usage["completion_tokens"] * 8.0) / 1e6 * 0.5, rel=1e-6)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async with get_client() as client:
        flow_runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["tracr-job:batched"])))
        names = [state.name for fr in flow_runs for state in await client.read_flow_run_states(fr.id)]
    assert "Waiting for batch" in names  # Prefect showed the run waiting on the provider, not busy
    assert all(fr.state is not None and fr.state.is_completed() for fr in flow_runs)
    journal = [json.loads(line) for line in (run_dir / "batches.jsonl").read_text().splitlines()]
    assert [e["event"] for e in journal] == ["submitted", "collected", "submitted", "collected"]
    assert TEST_API_KEY not in (run_dir / "batches.jsonl").read_text()


async def test_an_expired_batch_sends_the_rest_again(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(batch={"delay_s": 0.5, "expire": True, "expire_after": 2, "once": True})
    pdf_factory("doc.pdf", 5)
    state = await _run(write_config(tmp_path / "job.yaml", _config("expiring", tmp_path / "inputs", stub.base_url)), tmp_path / "out")
    assert state.is_completed(), state.message
    batches = _batches(stub.port)
    assert [b["status"] for b in batches] == ["expired", "completed"] and len(batches[1]["custom_ids"]) == 3
    run = read_json(tmp_path / "out/expiring/stub-ocr/run-1/run_metadata.json")
    assert run["rollup"]["pages_done"] == 5 and run["rollup"]["pages_failed"] == 0


def test_a_batch_job_killed_after_submission_resumes_and_collects_without_resubmitting(tmp_path, stub_server, pdf_factory):
    stub = stub_server(batch={"delay_s": 6.0})
    pdf_factory("doc.pdf", 4)
    config = write_config(tmp_path / "job.yaml", _config("killed", tmp_path / "inputs", stub.base_url))
    out = tmp_path / "out"
    env = {**os.environ, KEY_ENV: TEST_API_KEY}
    journal = out / "killed/stub-ocr/run-1/batches.jsonl"
    job = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(out)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (journal.is_file() and "submitted" in journal.read_text()):
            assert time.monotonic() < deadline, "the batch was never submitted"
            assert job.poll() is None, "the job ended before it was killed"
            time.sleep(0.1)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the job and its render workers: no hook runs
        job.wait()
    assert len(_batches(stub.port)) == 1 and _batches(stub.port)[0]["status"] == "in_progress"

    resumed = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(out), "--resume"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    batches = _batches(stub.port)
    assert len(batches) == 1 and batches[0]["status"] == "completed"  # collected, not sent again
    run = read_json(out / "killed/stub-ocr/run-1/run_metadata.json")
    assert run["rollup"]["pages_done"] == 4 and run["resumes"] == 1
    assert stub.stats()["total_requests"] == 0
