"""``runtime: docker`` against a real engine: the stand-in vLLM image through the real lifecycle.

The stand-in (``tracr-vllm-standin``, tools/docker/standin/Dockerfile) is
``tracr.testing.fake_vllm`` behind tini, taking ``vllm serve``'s arguments like
``vllm/vllm-openai``. GPUs are declared (``TRACR_GPUS``); the engine has no
NVIDIA runtime, so ``TRACR_DOCKER_GPU_REQUEST=auto`` starts containers without a
device request, and ``always`` shows the failure a GPU host without the toolkit gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import write_config
from tracr.config.job_request import JobRequest
from tracr.outputs.files import read_json

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]


def _docker_vllm(model: str, image: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "mode": "local",
        "provider": "vllm",
        "runtime": "docker",
        "docker_image": image,
        "startup_timeout_s": 60,
        "max_concurrent_requests": 1,
        "retries": 0,
        **extra,
    }


async def _run(tmp_path: Path, models: list[dict[str, Any]], job_id: str = "job"):
    from flows.ocr_job import ocr_job_flow

    config = write_config(tmp_path / f"{job_id}.yaml", {"job_id": job_id, "input_path": str(tmp_path / "inputs"), "models": models})
    return await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out")), return_state=True)


def _meta(tmp_path: Path, slug: str, job_id: str = "job") -> dict[str, Any]:
    return read_json(tmp_path / "out" / job_id / slug / "run-1" / "run_metadata.json")


async def _usage() -> dict[int, int]:
    from tasks.serving.gpu_slots import gpu_slot_usage
    from tracr.serving.gpus import parse_declared_gpus

    return await gpu_slot_usage(parse_declared_gpus("1x80GB"))


async def test_a_docker_model_runs_end_to_end(tmp_path, pdf_factory, standin_image, tracr_containers, gpu_host):
    """Preflight (engine, sweep, fit check), GPU slot, container start, health, pages, stop, log kept."""
    pdf_factory("doc.pdf", 3)
    state = await _run(
        tmp_path, [_docker_vllm("org/ocr-7b", standin_image), {"model": "text-layer", "mode": "local", "provider": "pdf-text"}]
    )
    assert state.is_completed(), state.message
    meta = _meta(tmp_path, "org-ocr-7b")
    assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == 3
    server = meta["server"]
    assert server["runtime"] == "docker" and server["image"] == standin_image and server["status"] == "stopped"
    assert server["docker"]["engine"] and server["docker"]["nvidia_runtime"] is False
    assert server["gpus"] == [0] and server["gpu_request"] == "none (auto: the engine has no nvidia runtime)"
    assert server["startup_s"] > 0 and len(server["container"]) == 64
    assert server["command"][:2] == [standin_image, "org/ocr-7b"]
    assert server["command"][server["command"].index("--port") + 1] == "8000" and "0.0.0.0" in server["command"]
    assert meta["fit_check"]["verdict"] == "GOOD"
    page = (tmp_path / "out/job/org-ocr-7b/run-1/doc/1.md").read_text()
    assert "fake vllm page from org/ocr-7b" in page
    log = (tmp_path / "out/job/org-ocr-7b/run-1/server.log").read_text()
    assert "fake vllm serving org/ocr-7b as org/ocr-7b on 0.0.0.0:8000" in log
    assert "got signal 15, shutting down" in log  # stopped by SIGTERM (tini forwards it), not killed
    assert _meta(tmp_path, "text-layer")["status"] == "completed"
    assert await _usage() == {0: 0}
    assert tracr_containers.containers() == []


@pytest.mark.parametrize("case", ["bad_image", "gpu_without_nvidia_runtime"])
async def test_a_refused_start_is_classified_and_leaves_nothing(
    tmp_path, pdf_factory, standin_image, tracr_containers, gpu_host, monkeypatch, case
):
    pdf_factory("doc.pdf", 1)
    image, expected_class, expected = {
        "bad_image": ("tracr-no-such-image:never", "image_not_found", "is not on this engine"),
        "gpu_without_nvidia_runtime": (standin_image, "no_gpu", "could not select device driver"),
    }[case]
    if case == "gpu_without_nvidia_runtime":
        monkeypatch.setenv("TRACR_DOCKER_GPU_REQUEST", "always")
    state = await _run(tmp_path, [_docker_vllm("org/ocr-7b", image)])
    assert state.is_failed()
    meta = _meta(tmp_path, "org-ocr-7b")
    assert meta["status"] == "failed" and f"[{expected_class}] hint:" in meta["error"] and expected in meta["error"]
    assert meta["server"]["error_class"] == expected_class
    assert expected in (tmp_path / "out/job/org-ocr-7b/run-1/server.log").read_text()  # the engine's error, in the run folder
    assert tracr_containers.containers() == []  # nothing left in Created state
    assert await _usage() == {0: 0}


async def test_a_taken_host_port_is_classified_and_its_container_removed(tmp_path, standin_image, tracr_containers, gpu_host):
    from tasks.serving.containers import ContainerStartError, start_vllm_container
    from tasks.serving.runtimes import vllm_serve_args
    from tracr.config.models import model_spec
    from tracr.errors import ErrorClass

    spec = model_spec(**_docker_vllm("org/ocr-7b", standin_image))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ContainerStartError) as failure:
            await start_vllm_container(
                spec,
                vllm_serve_args(spec, 0),
                None,
                tmp_path / "server.log",
                {"serve-key": "port-test", "owner-pid": str(os.getpid())},
                port=port,
            )
    assert failure.value.error_class == ErrorClass.PORT_IN_USE
    assert "address already in use" in str(failure.value).lower() or "already allocated" in str(failure.value)
    assert tracr_containers.containers() == []  # the engine had created it; the failed start removed it


def _time_to_healthy(port: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"not healthy on {port} after {timeout}s")


async def test_container_start_and_stop_times_against_the_process_runtime(
    tmp_path, standin_image, tracr_containers, gpu_host, record_property
):
    """The same stand-in server as a container and as a process: time to healthy, time to stop."""
    from tasks.serving.containers import start_vllm_container, stop_container, wait_container_healthy
    from tasks.serving.process import ServerSpec, find_free_port, start_server, stop_server, wait_until_healthy
    from tasks.serving.runtimes import vllm_serve_args
    from tracr.config.models import model_spec
    from tracr.serving.process_group import group_alive
    from tracr.testing.fake_vllm import install_fake_vllm

    spec = model_spec(**_docker_vllm("org/ocr-7b", standin_image))
    timings: dict[str, list[float]] = {"docker_healthy_s": [], "docker_stop_s": [], "process_healthy_s": [], "process_stop_s": []}
    for i in range(3):
        t0 = time.monotonic()
        server = await start_vllm_container(
            spec, vllm_serve_args(spec, 0), None, tmp_path / f"c{i}.log", {"serve-key": f"timing-{i}", "owner-pid": str(os.getpid())}
        )
        await wait_container_healthy(server, poll_s=0.02)
        timings["docker_healthy_s"].append(time.monotonic() - t0)
        t0 = time.monotonic()
        await stop_container(server)
        timings["docker_stop_s"].append(time.monotonic() - t0)
        assert "got signal 15" in (tmp_path / f"c{i}.log").read_text()

        exe = install_fake_vllm(tmp_path / "bin")
        port = find_free_port()
        t0 = time.monotonic()
        handle = start_server(
            ServerSpec(
                command=[str(exe), *vllm_serve_args(spec, port)], served_model=spec.model, port=port, log_path=tmp_path / f"p{i}.log"
            )
        )
        await wait_until_healthy(handle)
        timings["process_healthy_s"].append(time.monotonic() - t0)
        t0 = time.monotonic()
        await asyncio.to_thread(stop_server, handle, 8.0)
        timings["process_stop_s"].append(time.monotonic() - t0)
        assert not group_alive(handle.pid)
    summary = {k: round(sorted(v)[len(v) // 2], 3) for k, v in timings.items()}  # medians of 3
    record_property("timings", json.dumps(summary))
    print(f"\nstand-in server timings (median of 3): {summary}")
    if os.environ.get("TRACR_DOCKER_TIMINGS"):
        Path(os.environ["TRACR_DOCKER_TIMINGS"]).write_text(json.dumps({"medians": summary, "all": timings}, indent=2))
    assert max(timings["docker_stop_s"]) < 5, "a container stop should be prompt (tini forwards SIGTERM), not the 8 s timeout"
    assert max(timings["docker_healthy_s"]) < 30


ORPHAN = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from flows.local_server import serve_local_model
    from tracr.config.models import model_spec
    from tracr.outputs.layout import RunLocation

    async def main():
        spec = model_spec(model="org/orphan-7b", mode="local", provider="vllm", runtime="docker", docker_image=sys.argv[2], startup_timeout_s=60)
        location = RunLocation(Path(sys.argv[1]), "orphan", "org-orphan-7b", 1)
        async with serve_local_model(spec, location) as endpoint:
            print("READY", endpoint.base_url, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_killed_jobs_container_is_swept_by_the_next_start(
    tmp_path, pdf_factory, standin_image, tracr_containers, gpu_host, docker_engine, monkeypatch
):
    pdf_factory("doc.pdf", 1)
    monkeypatch.setenv(
        "TRACR_GPUS", "2x80GB"
    )  # the killed owner's GPU slot stays held until its lease lapses: the next job takes the other
    out = tmp_path / "out"
    owner = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(out), standin_image], stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=REPO
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(owner.stdout.readline), 180)
        assert line.startswith("READY "), line
        base_url = line.split()[1]
        os.killpg(owner.pid, signal.SIGKILL)  # the flow process dies; its container does not
        owner.wait()
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
    orphans = docker_engine.containers.list(filters={"label": f"io.tracr.owner-pid={owner.pid}"})
    assert len(orphans) == 1 and orphans[0].status == "running"
    assert httpx.get(f"{base_url}/models", timeout=5).status_code == 200

    state = await _run(tmp_path, [_docker_vllm("org/next-7b", standin_image)])  # the next start on this host sweeps it
    assert state.is_completed(), state.message
    assert docker_engine.containers.list(all=True, filters={"label": f"io.tracr.owner-pid={owner.pid}"}) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base_url}/models", timeout=2)


def test_device_requests_follow_the_mode_and_the_engines_runtimes():
    from tasks.serving.containers import wants_device_request

    assert wants_device_request((0,), "auto", nvidia_runtime=True)
    assert not wants_device_request((0,), "auto", nvidia_runtime=False)
    assert wants_device_request((0, 1), "always", nvidia_runtime=False)
    assert not wants_device_request((0,), "never", nvidia_runtime=True)
    assert not wants_device_request(None, "always", nvidia_runtime=True)
