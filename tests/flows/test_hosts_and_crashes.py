"""Several hosts on one server: crash detection by heartbeats, claims judged by flow-run state, children that die with their job.

All against the session's real Prefect server; the death tests SIGKILL real processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from tracr.outputs.files import write_json_atomic
from tracr.run.claims import claim_path, try_claim

pytestmark = pytest.mark.usefixtures("prefect_server")

REPO = Path(__file__).resolve().parents[2]


async def _flow_run(name: str = "ocr-job") -> UUID:
    """A flow run of a flow named like tracr's, set Running, as a job on some host would leave it."""
    from prefect import flow, get_client
    from prefect.states import Running

    @flow(name=name)
    def stand_in() -> None:  # never called: only its flow run is created
        pass

    async with get_client() as client:
        run = await client.create_flow_run(stand_in)
        await client.set_flow_run_state(run.id, Running(), force=True)
    return run.id


async def _state(run_id: UUID) -> str:
    from prefect import get_client

    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    return run.state.type.value if run.state else "?"


async def test_the_automation_is_created_once_and_only_ever_widened() -> None:
    from prefect.automations import Automation
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    import tasks.run.crash_detection as crash

    try:
        await (await Automation.aread(name=crash.AUTOMATION_NAME)).adelete()
    except ValueError:
        pass
    windows = []
    try:
        for beat in (30, 60, 30):
            crash._ensured_window_s = None  # a new process
            with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: beat}):
                windows.append(await crash.ensure_crash_detection())
        assert windows == [90.0, 180.0, 180.0]  # a slower-beating process widened it; a faster one did not narrow it
        automation = await Automation.aread(name=crash.AUTOMATION_NAME)
        assert automation.trigger.within == timedelta(seconds=180)
        assert set(automation.trigger.match_related.get("prefect.resource.name")) == set(crash.TRACR_FLOWS)  # tracr's flows only
        assert automation.actions[0].state.value == "CRASHED"
    finally:  # the suite's other flows share this server
        crash._ensured_window_s = None
        await (await Automation.aread(name=crash.AUTOMATION_NAME)).adelete()


async def test_a_silent_flow_run_is_marked_crashed_and_a_finished_one_is_not() -> None:
    """The trigger as ensure_crash_detection builds it, with a 15 s window and limited to two flow runs of this test."""
    from prefect.events import emit_event
    from prefect.events.schemas.events import ResourceSpecification

    import tasks.run.crash_detection as crash

    silent, finished = await _flow_run(), await _flow_run()
    automation = crash._automation(15)
    automation.name = f"test crash detection {silent}"
    automation.trigger.match = ResourceSpecification(
        {"prefect.resource.id": [f"prefect.flow-run.{silent}", f"prefect.flow-run.{finished}"]}
    )
    created = await automation.acreate()
    try:
        await asyncio.sleep(2)  # the trigger service loads the new automation
        related = [{"prefect.resource.id": "prefect.flow.x", "prefect.resource.role": "flow", "prefect.resource.name": "ocr-job"}]
        for run in (silent, finished):
            emit_event("prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{run}"}, related=related)
        from prefect import get_client
        from prefect.states import Completed

        async with get_client() as client:
            await client.set_flow_run_state(finished, Completed(), force=True)  # ends normally: its end state is the expected event
        deadline = time.monotonic() + 90
        while await _state(silent) != "CRASHED":
            assert time.monotonic() < deadline, f"still {await _state(silent)} after 90 s"
            await asyncio.sleep(1)
        await asyncio.sleep(3)
        assert await _state(finished) == "COMPLETED"
    finally:
        await created.adelete()


async def test_another_hosts_claim_is_judged_by_its_flow_run_not_by_a_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.run.claim_liveness import remote_claim_judge

    monkeypatch.setenv("TRACR_GPU_HOST", "node-a")
    run_id = await _flow_run()
    theirs = {"digest": "d1", "token": "t-node-b", "pid": 1, "host": "node-b", "flow_run_id": str(run_id), "job_id": "j"}
    claim_path(tmp_path, "d1").parent.mkdir(parents=True)
    write_json_atomic(claim_path(tmp_path, "d1"), theirs)

    acquired, holder = try_claim(tmp_path, "d1", {"job_id": "j"}, remote_live=await remote_claim_judge(tmp_path, "d1"))
    assert not acquired and holder["host"] == "node-b"  # its flow run is Running: refused from this host

    from prefect import get_client
    from prefect.states import Crashed

    async with get_client() as client:
        await client.set_flow_run_state(run_id, Crashed(), force=True)
    acquired, mine = try_claim(tmp_path, "d1", {"job_id": "j"}, remote_live=await remote_claim_judge(tmp_path, "d1"))
    assert acquired and mine["host"] == "node-a" and mine["took_over"]["host"] == "node-b"


RENDER_OWNER = textwrap.dedent(
    """
    import asyncio, os, time
    from tasks.documents.render_pool import RenderPool

    async def main():
        pool = RenderPool(2)
        await pool.warm()
        print("WORKERS", *[p.pid for p in pool._executor._processes.values()], flush=True)
        time.sleep(3600)

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_render_workers_exit_when_the_job_process_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", RENDER_OWNER], stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    try:
        line = owner.stdout.readline() if owner.stdout else ""
        assert line.startswith("WORKERS "), line
        workers = [int(p) for p in line.split()[1:]]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)], "render workers outlived the job process"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
