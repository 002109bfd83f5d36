"""Local models through the general server lifecycle: real processes, real ports."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import write_config
from tracr.outputs.files import read_json
from tracr.serving.process_group import group_alive

pytestmark = pytest.mark.usefixtures("prefect_server")


async def _run(config: Path, outputs: Path):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    return await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(outputs)), return_state=True)


async def test_builtin_ocr_server_is_started_used_and_stopped(tmp_path, pdf_factory):
    pdf_factory("words.pdf", 1)
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "local",
            "input_path": str(tmp_path / "inputs"),
            "models": [
                {"model": "tracr-ocr", "mode": "local", "provider": "tracr-ocr", "max_concurrent_requests": 1},
                {"model": "text-layer", "mode": "local", "provider": "pdf-text"},
            ],
        },
    )
    state = await _run(config, tmp_path / "out")
    assert state.is_completed(), state.message
    run_dir = tmp_path / "out/local/tracr-ocr/run-1"
    text = (run_dir / "words" / "1.md").read_text().lower().replace(" ", "")
    assert "quickbrownfox" in text and "page1ofwords" in text
    run = read_json(run_dir / "run_metadata.json")
    assert run["server"]["status"] == "stopped" and run["server"]["startup_s"] > 0
    assert not group_alive(run["server"]["pid"])
    assert (run_dir / "server.log").is_file()
    page = read_json(run_dir / "words" / "pdf_metadata.json")["pages"][0]
    assert page["output_tokens"] > 0 and page["ttft_s"] is not None
    baseline = (tmp_path / "out/local/text-layer/run-1/words/1.md").read_text()
    assert "quick brown fox" in baseline
    vllm_only = {"device", "docker_image", "gpu_memory_utilization", "tensor_parallel_size", "runtime"}
    for slug in ("tracr-ocr", "text-layer"):  # each kind records its own fields, not vLLM's defaults
        recorded = read_json(tmp_path / f"out/local/{slug}/run-1/run_metadata.json")["model"]
        assert not vllm_only & set(recorded), recorded
    assert read_json(tmp_path / "out/local/text-layer/run-1/run_metadata.json")["model"]["kind"] == "pdf-text"


def _fake_vllm(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "vllm"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def _vllm_job(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "vllm-job",
            "input_path": str(tmp_path / "inputs"),
            "models": [
                {
                    "model": "org/ocr-7b",
                    "mode": "local",
                    "provider": "vllm",
                    "startup_timeout_s": 30,
                    "extra_vllm_args": ["--enforce-eager"],
                },
                {"model": "text-layer", "mode": "local", "provider": "pdf-text"},
            ],
        },
    )


async def test_server_that_dies_fails_its_run_with_the_log_tail(tmp_path, pdf_factory, monkeypatch):
    pdf_factory("doc.pdf", 1)
    _fake_vllm(tmp_path / "bin", 'echo "args: $*"\necho "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"\nexit 1\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TRACR_GPUS", "1x80GB")  # a declared GPU: without one the run fails preflight, before the server starts
    monkeypatch.setenv("TRACR_GPU_HOST", "test-dies")
    state = await _run(_vllm_job(tmp_path), tmp_path / "out")
    assert state.is_failed()
    run = read_json(tmp_path / "out/vllm-job/org-ocr-7b/run-1/run_metadata.json")
    assert run["status"] == "failed"
    assert "exited with code 1" in run["error"] and "CUDA out of memory" in run["error"]
    assert "--tensor-parallel-size 1" in run["error"] and '--limit-mm-per-prompt {"video": 0}' in run["error"]
    assert run["server"]["command"][-1] == "--enforce-eager"
    # the other model of the job is unaffected
    assert read_json(tmp_path / "out/vllm-job/text-layer/run-1/run_metadata.json")["status"] == "completed"


async def test_missing_runtime_is_a_clear_run_failure(tmp_path, pdf_factory, monkeypatch):
    pdf_factory("doc.pdf", 1)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    python_dir = str(Path(os.sys.executable).parent)
    monkeypatch.setenv("PATH", f"{empty}{os.pathsep}{python_dir}")
    state = await _run(_vllm_job(tmp_path), tmp_path / "out")
    assert state.is_failed()
    run = read_json(tmp_path / "out/vllm-job/org-ocr-7b/run-1/run_metadata.json")
    assert run["status"] == "failed" and "'vllm' is not installed" in run["error"]


async def test_cancelling_a_run_stops_its_server_and_keeps_finished_pages(tmp_path, pdf_factory):
    import asyncio

    from flows.ocr_job import ocr_job_flow

    pdf_factory("long.pdf", 40)
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "cancel-me",
            "input_path": str(tmp_path / "inputs"),
            "models": [{"model": "tracr-ocr", "mode": "local", "provider": "tracr-ocr", "max_concurrent_requests": 1}],
        },
    )
    run_dir = tmp_path / "out/cancel-me/tracr-ocr/run-1"
    from tracr.config.job_request import JobRequest

    job = asyncio.create_task(ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out"))))
    for _ in range(600):  # wait until the server is up and a page is written
        await asyncio.sleep(0.1)
        if list((run_dir / "long").glob("*.md")):
            break
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "cancelled"
    assert not group_alive(run["server"]["pid"])
    done = sorted(p.name for p in (run_dir / "long").glob("*.md"))
    assert 1 <= len(done) < 40
    pdf = read_json(run_dir / "long" / "pdf_metadata.json")
    assert pdf["status"] == "cancelled" and len(pdf["pages"]) == len(done)
