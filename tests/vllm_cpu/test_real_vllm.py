"""Real ``vllm serve`` (the CPU build) through tracr's local-server lifecycle.

Opt-in (see conftest.py). A tiny random Qwen2-VL is built here; tracr starts real
vLLM for it through the ``local-model-server`` subflow, with one declared GPU
(``TRACR_GPUS``) standing in for hardware so GPU slots are really taken and given
back. The model's text is gibberish; what is checked is the plumbing: pages with
their images go through real vLLM, outputs and metadata are written, and after
completion and after a Ctrl-C every process of the server is gone and the slot is free.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_config
from tracr.config.job_request import JobRequest
from tracr.outputs.files import read_json
from tracr.serving.process_group import group_alive

pytestmark = [pytest.mark.vllm_cpu, pytest.mark.usefixtures("prefect_server"), pytest.mark.timeout(900)]

#: vLLM's EngineCore and Worker can outlive the API server by seconds; the note measured up to ~2.5 s.
GONE_WITHIN_S = 10.0


@pytest.fixture
def reap_servers() -> Iterator[list[int]]:
    """Process groups of servers a test saw; any still alive at teardown (a failed test) is killed.

    Teardown runs after the test's own assertions, so a leak still fails the test first.
    """
    groups: list[int] = []
    yield groups
    for pgid in groups:
        if group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _tiny_model(model_dir: Path, name: str, **overrides: Any) -> dict[str, Any]:
    """A ``mode: local`` vLLM model entry for the tiny model (the executable comes from overrides or $TRACR_VLLM)."""
    return {
        "model": str(model_dir),
        "name": name,
        "mode": "local",
        "provider": "vllm",
        "max_model_len": 2048,
        "extra_vllm_args": ["--dtype", "float32", "--enforce-eager"],
        "startup_timeout_s": 420,
        "timeout_s": 120,
        "retries": 1,
        "render": {"longest_side_px": 448},
        **overrides,
    }


def _declare_gpu(monkeypatch: pytest.MonkeyPatch) -> str:
    """One declared 80 GB GPU under a host name of its own, so this test's slot limits are its own."""
    host = f"vllm-cpu-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACR_GPUS", "1x80GB")
    monkeypatch.setenv("TRACR_GPU_HOST", host)
    return host


def _explain(run_dir: Path, lines: int = 60) -> str:
    """Run metadata's error and server.log's tail, for assertion messages (and CI logs)."""
    run = read_json(run_dir / "run_metadata.json") or {}
    log = run_dir / "server.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else "(no server.log)"
    return f"run status={run.get('status')} error={run.get('error')}\nserver={run.get('server')}\n--- server.log tail ---\n{tail}"


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (the tiny model's folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(f"{entry}: {cmdline[:200]}")
    return found


def _eventually(check: Callable[[], bool], within_s: float = GONE_WITHIN_S) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


async def _slot_usage(host: str) -> int:
    """Active slots of the declared GPU's Prefect global concurrency limit."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(f"tracr-gpu-{host}-0")
        return int(limit.active_slots)


async def _server_flow_runs(name: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["local-model-server"])),
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"server · {name}"])),
        )


async def test_pages_go_through_real_vllm_and_everything_stops(tmp_path, pdf_factory, tiny_vlm, vllm_cpu, monkeypatch, reap_servers):
    from flows.ocr_job import ocr_job_flow

    host = _declare_gpu(monkeypatch)
    name = f"tiny-vlm-{host}"
    pdf_factory("doc.pdf", 3)
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "real-vllm",
            "input_path": str(tmp_path / "inputs"),
            "max_tokens": 24,
            "models": [_tiny_model(tiny_vlm, name, vllm_executable=str(vllm_cpu), max_concurrent_requests=3)],
        },
    )
    started = time.monotonic()
    state = await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out")), return_state=True)
    run_dir = tmp_path / "out/real-vllm" / name / "run-1"
    assert state.is_completed(), f"{state.message}\n{_explain(run_dir)}"
    print(f"job with real vLLM on the CPU: {time.monotonic() - started:.1f} s")

    # every page went through vLLM: an image's worth of prompt tokens, generated tokens, a .md
    pdf = read_json(run_dir / "doc" / "pdf_metadata.json")
    assert pdf["status"] == "completed", _explain(run_dir)
    assert [p["page"] for p in sorted(pdf["pages"], key=lambda p: p["page"])] == [1, 2, 3]
    for page in pdf["pages"]:
        assert page["status"] == "done", (page, _explain(run_dir))
        assert page["input_tokens"] > 64, page  # the prompt text is ~40 tokens; the image adds up to 64 more
        assert 0 < page["output_tokens"] <= 24 and page["finish_reason"] in ("stop", "length"), page
        assert (run_dir / "doc" / f"{page['page']}.md").is_file()

    # the server ran under the lifecycle subflow, with the CPU build and tracr's flags, on the declared GPU
    run = read_json(run_dir / "run_metadata.json")
    server = run["server"]
    reap_servers.append(server["pid"])
    assert run["status"] == "completed" and server["status"] == "stopped", _explain(run_dir)
    assert server["command"][:3] == [str(vllm_cpu), "serve", str(tiny_vlm)]
    assert "--enforce-eager" in server["command"] and server["startup_s"] > 0
    assert server["gpus"] == [0]
    assert "Application startup complete" in (run_dir / "server.log").read_text(errors="replace")
    flow_runs = await _server_flow_runs(name)
    assert [r.state.type.value for r in flow_runs] == ["COMPLETED"]

    # afterwards: no process of the server's group, none that mentions the model, the GPU slot free
    assert _eventually(lambda: not group_alive(server["pid"])), _processes_mentioning(str(tiny_vlm))
    assert _eventually(lambda: not _processes_mentioning(str(tiny_vlm))), _processes_mentioning(str(tiny_vlm))
    assert await _slot_usage(host) == 0


async def test_ctrl_c_mid_run_stops_real_vllm_and_frees_its_gpu(tmp_path, pdf_factory, tiny_vlm, vllm_cpu, monkeypatch, reap_servers):
    import asyncio

    host = _declare_gpu(monkeypatch)
    name = f"tiny-vlm-{host}"
    pages = 60
    pdf_factory("long.pdf", pages)
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "real-vllm-cancel",
            "input_path": str(tmp_path / "inputs"),
            "max_tokens": 1024,  # slow pages: up to ~1,000 tokens each, one at a time
            "models": [_tiny_model(tiny_vlm, name, max_concurrent_requests=1)],
        },
    )
    run_dir = tmp_path / "out/real-vllm-cancel" / name / "run-1"
    monkeypatch.setenv("TRACR_VLLM", str(vllm_cpu))  # this time the executable comes from the environment
    tracr = Path(sys.executable).with_name("tracr")
    console = tmp_path / "tracr-console.log"  # a file, not a pipe: nobody reads it while the job runs
    # In its own session, like a terminal's foreground job: Ctrl-C is SIGINT to that whole group.
    with open(console, "wb") as out:
        job = subprocess.Popen(
            [str(tracr), "run", str(config), "--outputs", str(tmp_path / "out")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while not list((run_dir / "long").glob("*.md")):
            assert job.poll() is None, f"tracr exited early:\n{console.read_text(errors='replace')[-4000:]}\n{_explain(run_dir)}"
            assert time.monotonic() < deadline, f"no page written in 600 s\n{_explain(run_dir)}"
            await asyncio.sleep(0.2)
        server = read_json(run_dir / "run_metadata.json")["server"]
        reap_servers.append(server["pid"])
        assert server["command"][:2] == [str(vllm_cpu), "serve"]
        assert await _slot_usage(host) == 1  # the declared GPU is held while the server runs
        assert group_alive(server["pid"])

        cancelled_at = time.monotonic()
        os.killpg(job.pid, signal.SIGINT)
        await asyncio.to_thread(job.wait, timeout=120)
        exited_s = time.monotonic() - cancelled_at
    finally:
        if job.poll() is None:  # the test failed before tracr ended: stop it as Ctrl-C would, then for sure
            os.killpg(job.pid, signal.SIGINT)
            try:
                job.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
    assert job.returncode != 0, console.read_text(errors="replace")[-4000:]

    assert _eventually(lambda: not group_alive(server["pid"])), _processes_mentioning(str(tiny_vlm))
    assert _eventually(lambda: not _processes_mentioning(str(tiny_vlm))), _processes_mentioning(str(tiny_vlm))
    gone_s = time.monotonic() - cancelled_at
    assert await _slot_usage(host) == 0, "the GPU slot was not given back on Ctrl-C"
    print(f"Ctrl-C -> tracr exited (code {job.returncode}) in {exited_s:.1f} s, every vLLM process gone after {gone_s:.1f} s")

    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "cancelled" and run["server"]["status"] == "stopped", _explain(run_dir)
    done = sorted(int(p.stem) for p in (run_dir / "long").glob("*.md"))
    assert 1 <= len(done) < pages
    print(f"{len(done)} of {pages} pages done before Ctrl-C")
    pdf = read_json(run_dir / "long" / "pdf_metadata.json")
    assert pdf["status"] == "cancelled"
    assert sorted(p["page"] for p in pdf["pages"] if p["status"] == "done") == done
