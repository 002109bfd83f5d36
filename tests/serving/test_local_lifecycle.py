"""The local-model-server subflow end to end: real flows, real processes, real ports.

vLLM is stood in for by ``tracr.testing.fake_vllm`` (a real server process that
takes ``vllm serve``'s flags and records the GPUs it was given); GPUs by a
declared inventory (``TRACR_GPUS``); GPU slots are real Prefect limits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import write_config
from tracr.config.job_request import JobRequest
from tracr.outputs.files import read_json
from tracr.serving.process_group import group_alive
from tracr.testing.fake_vllm import PASS_ENV, install_fake_vllm

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake vLLM on PATH, a fresh GPU host name, and a folder where each server records itself."""
    bin_dir = tmp_path / "bin"
    install_fake_vllm(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TRACR_GPU_HOST", f"t{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("TRACR_PASS_ENV", PASS_ENV)
    records = tmp_path / "records"
    records.mkdir()
    monkeypatch.setenv("FAKE_VLLM_RECORD", str(records))
    monkeypatch.delenv("FAKE_VLLM_MODE", raising=False)
    monkeypatch.delenv("TRACR_VLLM", raising=False)

    class Fake:
        def __init__(self) -> None:
            self.records_dir = records

        def records(self) -> list[dict[str, Any]]:
            return [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]

        def gpus(self, spec: str) -> None:
            monkeypatch.setenv("TRACR_GPUS", spec)

        def mode(self, value: str | dict[str, str]) -> None:
            monkeypatch.setenv("FAKE_VLLM_MODE", value if isinstance(value, str) else json.dumps(value))

    return Fake()


def _vllm(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "mode": "local",
        "provider": "vllm",
        "startup_timeout_s": 30,
        "max_concurrent_requests": 1,
        "retries": 0,
        **extra,
    }


async def _run(tmp_path: Path, models: list[dict[str, Any]], job_id: str = "job"):
    from flows.ocr_job import ocr_job_flow

    config = write_config(tmp_path / f"{job_id}.yaml", {"job_id": job_id, "input_path": str(tmp_path / "inputs"), "models": models})
    return await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(tmp_path / "out")), return_state=True)


def _run_meta(tmp_path: Path, slug: str, job_id: str = "job", run: int = 1) -> dict[str, Any]:
    return read_json(tmp_path / "out" / job_id / slug / f"run-{run}" / "run_metadata.json")


async def _usage(count: int) -> dict[int, int]:
    from tasks.serving.gpu_slots import gpu_slot_usage
    from tracr.serving.gpus import parse_declared_gpus

    return await gpu_slot_usage(parse_declared_gpus(f"{count}x80GB"))


def _statuses(meta: dict[str, Any]) -> list[str]:
    return [h["status"] for h in meta["status_history"]]


async def test_three_models_on_two_gpus_never_share_one(tmp_path, pdf_factory, fake, monkeypatch):
    """1 + 1 + 2 GPUs on a 2-GPU host: all complete, no GPU is shared, the 2-GPU model waits."""
    from tasks.serving.gpu_slots import reserve_gpus
    from tracr.serving.gpus import parse_declared_gpus

    pdf_factory("doc.pdf", 5)
    fake.gpus("2x80GB")
    monkeypatch.setenv("FAKE_VLLM_LATENCY_S", "0.3")
    models = [_vllm("org/one-a-7b"), _vllm("org/one-b-7b"), _vllm("org/two-7b", tensor_parallel_size=2)]
    # Another tenant holds GPU 0 as the job starts, so the 2-GPU model cannot start first; it is
    # handed back once the 2-GPU model is waiting. Waiting is first come, first served: a 1-GPU
    # model that asked after the 2-GPU one waits behind it even with GPU 1 free, so no server
    # need be up before the tenant lets go.
    release = asyncio.Event()

    async def tenant() -> None:
        async with reserve_gpus(parse_declared_gpus("2x80GB"), 1):
            await release.wait()

    held = asyncio.create_task(tenant())
    while (await _usage(2)) == {0: 0, 1: 0}:
        await asyncio.sleep(0.05)
    job = asyncio.create_task(_run(tmp_path, models))
    two_meta = tmp_path / "out/job/org-two-7b/run-1/run_metadata.json"
    while (read_json(two_meta) or {}).get("status") != "waiting_resources":
        await asyncio.sleep(0.05)
    release.set()
    await held
    state = await job
    assert state.is_completed(), state.message

    records = {r["served_model"]: r for r in fake.records()}
    assert set(records) == {"org/one-a-7b", "org/one-b-7b", "org/two-7b"}
    assert records["org/two-7b"]["cuda_visible_devices"] == "0,1"
    # which GPU each 1-GPU server got depends on who finished first; that it got exactly one is the point
    assert records["org/one-a-7b"]["cuda_visible_devices"] in ("0", "1") and records["org/one-b-7b"]["cuda_visible_devices"] in ("0", "1")
    assert all(r["omp_num_threads"] == "1" and r["stopped_at"] for r in records.values())
    # no two servers ever held the same GPU at the same time
    for a in records.values():
        for b in records.values():
            if a is b or not set(a["cuda_visible_devices"].split(",")) & set(b["cuda_visible_devices"].split(",")):
                continue
            assert a["stopped_at"] <= b["started_at"] or b["stopped_at"] <= a["started_at"], (a, b)
    two = _run_meta(tmp_path, "org-two-7b")
    assert _statuses(two) == ["queued", "waiting_resources", "starting", "running", "completed"]
    assert two["server"]["gpus"] == [0, 1] and two["server"]["gpu_wait_s"] > 0
    assert two["server"]["host_gpus"]["count"] == 2 and two["server"]["host_gpus"]["source"] == "declared"
    assert two["fit_check"]["verdict"] == "GOOD"
    # it started only once no 1-GPU server was running any more (which one ran last is up to the race)
    assert all(
        records["org/two-7b"]["started_at"] >= r["stopped_at"]
        for m, r in records.items()
        if m != "org/two-7b" and r["started_at"] < records["org/two-7b"]["started_at"]
    )
    for slug in ("org-one-a-7b", "org-one-b-7b", "org-two-7b"):
        meta = _run_meta(tmp_path, slug)
        assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == 5
        assert meta["server"]["status"] == "stopped" and not group_alive(meta["server"]["pid"])
    page = (tmp_path / "out/job/org-two-7b/run-1/doc/1.md").read_text()
    assert "fake vllm page from org/two-7b on GPUs 0,1" in page
    assert await _usage(2) == {0: 0, 1: 0}  # every slot released

    # the server subflow showed the wait as a named Prefect state
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        states = await client.read_flow_run_states(uuid.UUID(two["server"]["flow_run_id"]))
    assert "WaitingForGPUs" in [s.name for s in states]
    assert not list((tmp_path / "out/.tracr/servers").rglob("*.json"))  # PID files removed


async def test_without_gpus_vllm_fails_preflight_while_other_models_run(tmp_path, pdf_factory, fake, stub_server, monkeypatch):
    from tests.conftest import TEST_API_KEY

    pdf_factory("doc.pdf", 1)
    fake.gpus("0")  # declared: no GPU (also on machines that have one)
    stub = stub_server()
    models = [
        _vllm("org/ocr-7b"),
        {"model": "text", "mode": "local", "provider": "pdf-text"},
        {"model": "stub-ocr", "base_url": stub.base_url, "api_key_env": "TRACR_TEST_KEY"},
    ]
    monkeypatch.setenv("TRACR_TEST_KEY", TEST_API_KEY)
    state = await _run(tmp_path, models)
    assert state.is_failed()
    meta = _run_meta(tmp_path, "org-ocr-7b")
    assert meta["status"] == "failed" and _statuses(meta) == ["queued", "failed"]
    assert "needs 1 GPU(s) but this host has none" in meta["error"] and "[no_gpu]" in meta["error"]
    assert fake.records() == []  # nothing was started
    assert _run_meta(tmp_path, "text")["status"] == "completed"
    assert _run_meta(tmp_path, "stub-ocr")["status"] == "completed"


async def test_requests_larger_than_the_host_or_its_memory_fail_before_launch(tmp_path, pdf_factory, fake):
    pdf_factory("doc.pdf", 1)
    fake.gpus("1x16GB")
    models = [
        _vllm("org/wide-7b", tensor_parallel_size=2, name="wide"),
        _vllm("org/huge", model_size_b=30, name="huge"),
        _vllm("org/tight", model_size_b=6.5, name="tight"),
    ]
    state = await _run(tmp_path, models)
    assert state.is_failed()
    wide = _run_meta(tmp_path, "wide")
    assert "needs 2 GPU(s)" in wide["error"] and "this host has 1" in wide["error"] and "[not_enough_gpus]" in wide["error"]
    huge = _run_meta(tmp_path, "huge")
    assert "fit check FAIL" in huge["error"] and "[out_of_gpu_memory]" in huge["error"]
    assert "weights 55.88 GiB" in huge["error"] and "budget" in huge["error"]  # 30e9 params × 2 bytes
    assert [r["served_model"] for r in fake.records()] == ["org/tight"]  # only the one that fits started
    tight = _run_meta(tmp_path, "tight")
    assert tight["status"] == "completed" and tight["fit_check"]["verdict"] == "RISK"  # 12.1 GiB of a 12.9 GiB budget
    assert await _usage(1) == {0: 0}


@pytest.mark.parametrize(
    ("mode", "error_class", "expected"),
    [
        ("oom", "out_of_gpu_memory", "CUDA out of memory"),
        ("cuda_arch", "unsupported_cuda_arch", "no kernel image is available"),
        ("not_found", "model_not_found", "Repository Not Found"),
        ("port_in_use", "port_in_use", "address already in use"),
        ("never_healthy", "timeout", "not healthy after 3s"),
    ],
)
async def test_server_failures_are_classified_and_release_their_gpus(tmp_path, pdf_factory, fake, mode, error_class, expected):
    pdf_factory("doc.pdf", 1)
    fake.gpus("1x80GB")
    fake.mode(mode)
    state = await _run(tmp_path, [_vllm("org/ocr-7b", startup_timeout_s=3)])
    assert state.is_failed()
    meta = _run_meta(tmp_path, "org-ocr-7b")
    assert meta["status"] == "failed"
    assert f"[{error_class}] hint:" in meta["error"] and expected in meta["error"]
    assert meta["server"]["error_class"] == error_class and meta["server"]["status"] == "stopped"
    assert (tmp_path / "out/job/org-ocr-7b/run-1/server.log").read_text().count("fake vllm serving") == 1
    assert not group_alive(meta["server"]["pid"])
    assert await _usage(1) == {0: 0}


async def test_a_server_dying_mid_run_fails_the_run_at_once(tmp_path, pdf_factory, fake, monkeypatch):
    pdf_factory("doc.pdf", 40)
    fake.gpus("1x80GB")
    fake.mode("die_after_requests:2")
    state = await _run(tmp_path, [_vllm("org/ocr-7b", retries=3, retry_backoff_s=0.5)])  # one request at a time
    assert state.is_failed()
    meta = _run_meta(tmp_path, "org-ocr-7b")
    assert meta["status"] == "failed"
    assert "exited with code 3 while serving" in meta["error"] and "[died_while_serving] hint:" in meta["error"]
    assert (
        meta["server"]["status"] == "stopped" and meta["server"]["exit_code"] == 3 and meta["server"]["error_class"] == "died_while_serving"
    )
    done, failed = meta["rollup"]["pages_done"], meta["rollup"]["pages_failed"]
    assert done == 2 and done + failed < 10, "the run stopped instead of failing the other pages one by one, each after its retries"
    assert read_json(tmp_path / "out/job/org-ocr-7b/run-1/doc/pdf_metadata.json")["status"] == "cancelled"
    assert not group_alive(meta["server"]["pid"])  # the orphaned engine child was stopped too
    assert await _usage(1) == {0: 0}


async def test_docker_runtime_without_an_engine_fails_clearly(tmp_path, pdf_factory, fake, monkeypatch):
    pdf_factory("doc.pdf", 1)
    fake.gpus("1x80GB")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine-here.sock")  # certainly absent, whatever this machine runs
    state = await _run(tmp_path, [_vllm("org/ocr-7b", runtime="docker")])
    assert state.is_failed()
    meta = _run_meta(tmp_path, "org-ocr-7b")
    assert "runtime docker: the Docker engine is not reachable" in meta["error"] and "[docker_unavailable]" in meta["error"]
    assert fake.records() == [] and await _usage(1) == {0: 0}


def test_containers_of_dead_owners_are_the_stale_ones(monkeypatch):
    from tasks.serving.containers import stale_container_ids
    from tracr.serving.host import pid_namespace

    monkeypatch.setenv("TRACR_GPU_HOST", "node-a")
    dead = {"io.tracr.owner-pid": "999999999"}
    containers = [
        ("a", {"io.tracr.owner-pid": str(os.getpid())}),
        ("b", dead),  # labelled before owners named their host and PID namespace
        ("c", {}),
        ("d", dead | {"io.tracr.owner-host": "node-a", "io.tracr.owner-pid-ns": pid_namespace()}),
        ("e", dead | {"io.tracr.owner-host": "node-b", "io.tracr.owner-pid-ns": pid_namespace()}),  # another host on this engine
        ("f", dead | {"io.tracr.owner-host": "node-a", "io.tracr.owner-pid-ns": "1"}),  # another flow-run container of this host
    ]
    assert stale_container_ids(containers, lambda pid: pid == os.getpid()) == ["b", "d"]


async def test_runs_needing_the_same_server_share_it(tmp_path, pdf_factory, fake):
    pdf_factory("doc.pdf", 3)
    fake.gpus("1x80GB")
    models = [_vllm("org/ocr-7b", name="plain"), _vllm("org/ocr-7b", name="tables", prompt="Only the tables, as Markdown.")]
    state = await _run(tmp_path, models)
    assert state.is_completed(), state.message
    assert len(fake.records()) == 1  # one server for both runs
    metas = [_run_meta(tmp_path, "plain"), _run_meta(tmp_path, "tables")]
    assert all(m["status"] == "completed" and m["rollup"]["pages_done"] == 3 for m in metas)
    assert sum(1 for m in metas if m["server"].get("shared_with_run")) == 1
    assert all(m["server"]["status"] == "stopped" for m in metas)
    assert await _usage(1) == {0: 0}


async def test_settings_that_differ_get_their_own_server(tmp_path, pdf_factory, fake):
    pdf_factory("doc.pdf", 1)
    fake.gpus("2x80GB")
    models = [_vllm("org/ocr-7b", name="short", max_model_len=4096), _vllm("org/ocr-7b", name="long", max_model_len=8192)]
    assert (await _run(tmp_path, models)).is_completed()
    records = fake.records()
    assert len(records) == 2
    assert sorted(r["argv"][r["argv"].index("--max-model-len") + 1] for r in records) == ["4096", "8192"]


async def test_cancel_while_waiting_for_gpus_takes_nothing(tmp_path, pdf_factory, fake):
    from tasks.serving.gpu_slots import reserve_gpus
    from tracr.serving.gpus import parse_declared_gpus

    pdf_factory("doc.pdf", 1)
    fake.gpus("1x80GB")
    async with reserve_gpus(parse_declared_gpus("1x80GB"), 1):
        job = asyncio.create_task(_run(tmp_path, [_vllm("org/ocr-7b")]))
        meta_path = tmp_path / "out/job/org-ocr-7b/run-1/run_metadata.json"
        for _ in range(600):
            await asyncio.sleep(0.1)
            if (read_json(meta_path) or {}).get("status") == "waiting_resources":
                break
        assert read_json(meta_path)["status"] == "waiting_resources"
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert await _usage(1) == {0: 1}  # only the holder's slot
    meta = read_json(meta_path)
    assert _statuses(meta) == ["queued", "waiting_resources", "cancelled"]
    assert fake.records() == []
    assert await _usage(1) == {0: 0}


async def test_cancel_while_serving_stops_the_group_and_releases_slots(tmp_path, pdf_factory, fake, monkeypatch):
    pdf_factory("doc.pdf", 40)
    fake.gpus("1x80GB")
    monkeypatch.setenv("FAKE_VLLM_LATENCY_S", "0.2")
    job = asyncio.create_task(_run(tmp_path, [_vllm("org/ocr-7b")]))
    run_dir = tmp_path / "out/job/org-ocr-7b/run-1"
    for _ in range(600):
        await asyncio.sleep(0.1)
        if list((run_dir / "doc").glob("*.md")):
            break
    record = fake.records()[0]
    job.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert not group_alive(record["pgid"])  # leader and its engine child
    stopped_within = time.monotonic() - cancelled_at
    meta = read_json(run_dir / "run_metadata.json")
    assert meta["status"] == "cancelled" and meta["server"]["status"] == "stopped"
    assert fake.records()[0]["stopped_at"] is not None  # it got SIGTERM, not only SIGKILL
    assert await _usage(1) == {0: 0}
    assert stopped_within < 60  # sanity only; the 10 s bound is the stop's grace period, not a timing claim


ORPHAN = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from flows.local_server import serve_local_model
    from tracr.config.models import model_spec
    from tracr.outputs.layout import RunLocation

    async def main():
        spec = model_spec(model="org/orphan-7b", mode="local", provider="vllm", startup_timeout_s=30)
        location = RunLocation(Path(sys.argv[1]), "orphan", "org-orphan-7b", 1)
        async with serve_local_model(spec, location) as endpoint:
            print("READY", endpoint.base_url, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_server_dies_with_its_killed_flow_and_the_next_start_sweeps_what_is_left(tmp_path, pdf_factory, fake):
    from tasks.serving.process import ServerSpec, find_free_port, start_server, wait_until_healthy
    from tasks.serving.registry import ServerRecord, write_record

    pdf_factory("doc.pdf", 1)
    fake.gpus("2x80GB")
    out = tmp_path / "out"
    owner = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(out)], stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=Path(__file__).parents[2]
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(owner.stdout.readline), 120)
        assert line.startswith("READY "), line
        base_url = line.split()[1]
        os.killpg(owner.pid, signal.SIGKILL)  # the flow process dies; its server, in its own group, gets SIGTERM from the kernel
        owner.wait()
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
    orphan = fake.records()[0]
    for _ in range(200):
        if not group_alive(orphan["pgid"]):
            break
        await asyncio.sleep(0.05)
    assert not group_alive(orphan["pgid"]), "the server outlived the flow process that started it"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base_url}/models", timeout=2)
    assert len(list((out / ".tracr/servers").rglob("*.json"))) == 1  # its record is left for the sweep

    # A server whose owner died without the death signal reaching it (it was started by another program):
    # the sweep still stops it, by its record.
    port = find_free_port()
    command = [str(tmp_path / "bin" / "vllm"), "serve", "org/left", "--served-model-name", "org/left", "--port", str(port)]
    left = start_server(ServerSpec(command=command, served_model="org/left", port=port, log_path=tmp_path / "left.log"))
    try:
        await wait_until_healthy(left)
        gone = subprocess.Popen(["true"])
        gone.wait()
        write_record(out, ServerRecord(key="left", pid=left.pid, pgid=left.pid, port=port, command=command, owner_pid=gone.pid))
        state = await _run(tmp_path, [_vllm("org/next-7b")])  # the next start sweeps both records
        assert state.is_completed(), state.message
        assert not group_alive(left.pid)
        assert not list((out / ".tracr/servers").rglob("*.json"))
    finally:
        if left.process.poll() is None:
            left.process.kill()
        left.process.wait()


async def test_the_sweep_leaves_another_hosts_records_and_servers_alone(tmp_path, fake, monkeypatch):
    from tasks.serving.process import ServerSpec, find_free_port, start_server, wait_until_healthy
    from tasks.serving.registry import ServerRecord, servers_dir, stop_servers_of_flow_run, sweep_stale_servers, write_record

    port = find_free_port()
    command = [str(tmp_path / "bin" / "vllm"), "serve", "org/m", "--served-model-name", "org/m", "--port", str(port)]
    handle = start_server(ServerSpec(command=command, served_model="org/m", port=port, log_path=tmp_path / "server.log"))
    try:
        await wait_until_healthy(handle)
        gone = subprocess.Popen(["true"])
        gone.wait()  # a pid that is dead here: on another host it may well be that host's live worker
        record = ServerRecord(
            key="theirs", pid=handle.pid, pgid=handle.pid, port=port, command=command, owner_pid=gone.pid, flow_run_id="r", host="node-b"
        )
        write_record(tmp_path, record)
        monkeypatch.setenv("TRACR_GPU_HOST", "node-a")
        assert sweep_stale_servers(tmp_path) == [] and stop_servers_of_flow_run(tmp_path, "r") == []
        assert group_alive(handle.pid) and len(list(servers_dir(tmp_path).rglob("*.json"))) == 1
        monkeypatch.setenv("TRACR_GPU_HOST", "Node_B")  # the same host, however it is spelled
        assert [r["action"] for r in sweep_stale_servers(tmp_path)] == ["stopped"]
        assert not group_alive(handle.pid) and not list(servers_dir(tmp_path).rglob("*.json"))
    finally:
        if handle.process.poll() is None:
            handle.process.kill()
        handle.process.wait()


async def test_tracr_vllm_env_points_at_another_executable(tmp_path, pdf_factory, fake, monkeypatch):
    pdf_factory("doc.pdf", 1)
    fake.gpus("1x80GB")
    other = install_fake_vllm(tmp_path / "elsewhere", name="my-vllm")
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(tmp_path / "bin")))
    monkeypatch.setenv("TRACR_VLLM", str(other))
    assert (await _run(tmp_path, [_vllm("org/ocr-7b")])).is_completed()
    meta = _run_meta(tmp_path, "org-ocr-7b")
    assert meta["server"]["command"][0] == str(other)
    assert fake.records()[0]["cuda_visible_devices"] == "0"


async def test_cancel_hook_backstop_stops_a_flow_runs_servers_by_pid_file(tmp_path, fake):
    from tasks.serving.process import ServerSpec, find_free_port, start_server, wait_until_healthy
    from tasks.serving.registry import ServerRecord, servers_dir, stop_servers_of_flow_run, write_record

    port = find_free_port()
    command = [str(tmp_path / "bin" / "vllm"), "serve", "org/m", "--served-model-name", "org/m", "--port", str(port)]
    handle = start_server(ServerSpec(command=command, served_model="org/m", port=port, log_path=tmp_path / "server.log"))
    try:
        await wait_until_healthy(handle)
        paths = {}
        for run_id in ("this-run", "other-run"):
            paths[run_id] = write_record(
                tmp_path,
                ServerRecord(
                    key=run_id, pid=handle.pid, pgid=handle.pid, port=port, command=command, owner_pid=os.getpid(), flow_run_id=run_id
                ),
            )
        assert stop_servers_of_flow_run(tmp_path, "unknown-run") == [] and group_alive(handle.pid)
        assert stop_servers_of_flow_run(tmp_path, "this-run") == [handle.pid]
        assert not group_alive(handle.pid)  # the leader and its engine child
        assert list(servers_dir(tmp_path).rglob("*.json")) == [paths["other-run"]]
    finally:
        handle.process.kill()
        handle.process.wait()


async def test_sigterm_to_tracr_run_stops_its_server_and_releases_its_gpus(tmp_path, pdf_factory, fake, monkeypatch):
    """What a Prefect worker or runner does to cancel a flow run: SIGTERM the flow process."""
    pdf_factory("doc.pdf", 60)
    fake.gpus("1x80GB")
    monkeypatch.setenv("FAKE_VLLM_LATENCY_S", "0.3")
    config = write_config(tmp_path / "job.yaml", {"job_id": "sig", "input_path": str(tmp_path / "inputs"), "models": [_vllm("org/ocr-7b")]})
    tracr = Path(sys.executable).parent / "tracr"
    with open(tmp_path / "tracr.log", "wb") as log:
        proc = subprocess.Popen([str(tracr), "run", str(config), "--outputs", str(tmp_path / "out")], stdout=log, stderr=subprocess.STDOUT)
    try:
        pages = tmp_path / "out/sig/org-ocr-7b/run-1/doc"
        for _ in range(1200):
            await asyncio.sleep(0.1)
            if list(pages.glob("*.md")) if pages.is_dir() else False:
                break
        assert await _usage(1) == {0: 1}
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code != 0
    record = fake.records()[0]
    assert record["stopped_at"] is not None and not group_alive(record["pgid"])
    meta = _run_meta(tmp_path, "org-ocr-7b", job_id="sig")
    assert meta["status"] == "cancelled" and meta["server"]["status"] == "stopped"
    assert await _usage(1) == {0: 0}
    assert not list((tmp_path / "out/.tracr/servers").rglob("*.json"))


async def test_each_server_gets_its_own_key_and_no_other_secret(tmp_path, pdf_factory, fake, monkeypatch):
    """Two local models with keys written in the config: the flow moves each to a TRACR_API_KEY_* variable,
    and each server (the fake records the names of its environment) gets only its own."""
    pdf_factory("doc.pdf", 1)
    fake.gpus("2x80GB")
    for name, value in {
        "OPENAI_API_KEY": "sk-foreign",
        "PREFECT_API_KEY": "pnu_foreign",
        "AWS_SECRET_ACCESS_KEY": "foreign",
        "TRACR_API_KEY_STALE": "foreign",
    }.items():
        monkeypatch.setenv(name, value)
    models = [_vllm("org/a-7b", api_key="key-of-a-1234"), _vllm("org/b-7b", api_key="key-of-b-5678")]
    state = await _run(tmp_path, models)
    assert state.is_completed(), state.message
    names = {r["served_model"]: set(r["env_names"]) for r in fake.records()}
    assert set(names) == {"org/a-7b", "org/b-7b"}
    for model, own, other in (
        ("org/a-7b", "TRACR_API_KEY_ORG_A_7B", "TRACR_API_KEY_ORG_B_7B"),
        ("org/b-7b", "TRACR_API_KEY_ORG_B_7B", "TRACR_API_KEY_ORG_A_7B"),
    ):
        env = names[model]
        assert own in env and other not in env, sorted(env)
        assert not {"OPENAI_API_KEY", "PREFECT_API_KEY", "AWS_SECRET_ACCESS_KEY", "TRACR_API_KEY_STALE", "PREFECT_API_URL"} & env
        assert {"PATH", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"} <= env
