"""GPU slots: per-GPU Prefect global concurrency limits against a real Prefect server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tasks.serving.gpu_slots import GpuRequestTooLarge, gpu_limit_name, gpu_slot_usage, reserve_gpus
from tracr.serving.gpus import parse_declared_gpus
from tracr.testing.processes import ServerStartError, stop_process_group, wait_until_http_ok

pytestmark = pytest.mark.usefixtures("prefect_server")

TWO = parse_declared_gpus("2x80GB")


def _host() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


async def test_servers_get_distinct_gpus_and_a_third_waits_for_one():
    host = _host()
    waits: list[dict[int, int]] = []

    async def on_wait(usage):
        waits.append(usage)

    async with reserve_gpus(TWO, 1, host=host) as first, reserve_gpus(TWO, 1, host=host) as second:
        assert {first.indices, second.indices} == {(0,), (1,)}
        assert await gpu_slot_usage(TWO, host) == {0: 1, 1: 1}
        third = asyncio.create_task(_hold(reserve_gpus(TWO, 1, host=host, on_wait=on_wait, poll_s=0.2)))
        for _ in range(300):
            if waits:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert not third.done() and waits == [{0: 1, 1: 1}]  # told once that it waits, with the usage it saw
    got = await asyncio.wait_for(third, 30)
    assert got in ((0,), (1,))
    assert await gpu_slot_usage(TWO, host) == {0: 0, 1: 0}


async def _hold(cm, seconds: float = 0.0):
    async with cm as reservation:
        await asyncio.sleep(seconds)
        return reservation.indices


async def test_two_gpu_request_is_all_or_nothing():
    host = _host()
    async with reserve_gpus(TWO, 1, host=host) as one:
        both = asyncio.create_task(_hold(reserve_gpus(TWO, 2, host=host, poll_s=0.2)))
        await asyncio.sleep(1.0)
        assert not both.done()
        # the free GPU was not taken by the waiting 2-GPU request
        assert await gpu_slot_usage(TWO, host) == {one.indices[0]: 1, 1 - one.indices[0]: 0}
    assert await asyncio.wait_for(both, 30) == (0, 1)


async def test_a_request_larger_than_the_host_fails_at_once():
    with pytest.raises(GpuRequestTooLarge, match="needs 3 GPU"):
        async with reserve_gpus(TWO, 3, host=_host()):
            pass


async def test_slots_are_released_on_exception_and_on_cancel():
    host = _host()
    with pytest.raises(RuntimeError, match="boom"):
        async with reserve_gpus(TWO, 2, host=host):
            raise RuntimeError("boom")
    assert await gpu_slot_usage(TWO, host) == {0: 0, 1: 0}

    holding = asyncio.create_task(_hold(reserve_gpus(TWO, 2, host=host), seconds=60))
    while (await gpu_slot_usage(TWO, host)) != {0: 1, 1: 1}:
        await asyncio.sleep(0.1)
    holding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holding
    assert await gpu_slot_usage(TWO, host) == {0: 0, 1: 0}

    async with reserve_gpus(TWO, 2, host=host):  # cancelled while waiting: nothing is taken
        waiting = asyncio.create_task(_hold(reserve_gpus(TWO, 1, host=host, poll_s=0.2)))
        await asyncio.sleep(0.8)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert await gpu_slot_usage(TWO, host) == {0: 0, 1: 0}


async def test_limits_are_created_per_gpu_with_limit_one():
    from prefect.client.orchestration import get_client

    host = _host()
    async with reserve_gpus(TWO, 1, host=host):
        pass
    async with get_client() as client:
        for index in (0, 1):
            limit = await client.read_global_concurrency_limit_by_name(gpu_limit_name(index, host))
            assert limit.limit == 1 and limit.active_slots == 0


# --- a crashed holder's slots come back through lease expiry -------------------------------


def _free_port() -> int:
    from tasks.serving.process import find_free_port

    return find_free_port()


@pytest.fixture
def prefect_server_with_services(tmp_path):
    """A second, non-ephemeral Prefect server: the test harness does not run the lease repossessor."""
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
        "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "1",
        "PREFECT_UI_ENABLED": "false",
    }
    for service in (
        "SCHEDULER",
        "LATE_RUNS",
        "FOREMAN",
        "CANCELLATION_CLEANUP",
        "PAUSE_EXPIRATIONS",
        "TRIGGERS",
        "EVENT_LOGGER",
        "DB_VACUUM",
    ):
        env[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "false"
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "prefect-server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_http_ok(f"{url}/health", proc, what="prefect server")
    except ServerStartError as exc:
        raise AssertionError(f"{exc}\n{(tmp_path / 'prefect-server.log').read_text()}") from None
    yield url
    stop_process_group(proc)
    log.close()


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from tasks.serving.gpu_slots import reserve_gpus
    from tracr.serving.gpus import parse_declared_gpus

    async def main():
        async with reserve_gpus(parse_declared_gpus("2x80GB"), 1, host=sys.argv[1]) as r:
            print("HELD", r.indices[0], flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_killed_holders_gpu_comes_back_when_its_lease_expires(prefect_server_with_services):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    host = _host()
    env = {**os.environ, "PREFECT_API_URL": prefect_server_with_services, "TRACR_GPU_LEASE_S": "60"}  # Prefect's minimum lease
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, host],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 120)
        assert line.startswith("HELD "), line
        held = int(line.split()[1])
        with temporary_settings({PREFECT_API_URL: prefect_server_with_services}):
            assert (await gpu_slot_usage(TWO, host))[held] == 1
            os.killpg(holder.pid, signal.SIGKILL)  # a crash: no release, no cleanup
            holder.wait()
            await asyncio.sleep(2)
            assert (await gpu_slot_usage(TWO, host))[held] == 1  # still held: only the lease can free it
            killed_at = time.monotonic()
            while (await gpu_slot_usage(TWO, host))[held] != 0:
                assert time.monotonic() - killed_at < 150, "slot not freed after the lease expired"
                await asyncio.sleep(1)
            async with reserve_gpus(TWO, 2, host=host) as both:  # the whole host is usable again
                assert both.indices == (0, 1)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()


async def test_waiting_is_first_come_first_served_so_a_two_gpu_request_is_not_starved(tmp_path: Path) -> None:
    """One GPU busy; a 2-GPU request queues, then a 1-GPU request arrives: the free GPU waits for the 2-GPU one."""
    host = _host()
    queue = tmp_path / ".tracr" / "gpu-queue" / host
    served: list[str] = []

    async def wait_for(name: str, count: int) -> None:
        async with reserve_gpus(TWO, count, host=host, poll_s=0.1, queue_dir=queue):
            served.append(name)
            await asyncio.sleep(0.5)

    async with reserve_gpus(TWO, 1, host=host, queue_dir=queue):  # GPU 0 busy, GPU 1 free
        big = asyncio.create_task(wait_for("two-gpus", 2))
        while not list(queue.glob("*.ticket")):
            await asyncio.sleep(0.05)
        small = asyncio.create_task(wait_for("one-gpu", 1))
        await asyncio.sleep(2.0)  # the small one could have taken GPU 1 many times over by now
        assert served == [] and len(list(queue.glob("*.ticket"))) == 2
    await asyncio.wait_for(asyncio.gather(big, small), 60)
    assert served == ["two-gpus", "one-gpu"]
    assert not list(queue.glob("*.ticket"))  # served waiters leave the queue


def test_a_dead_waiters_ticket_is_passed_over(tmp_path: Path) -> None:
    from tracr.serving.gpu_queue import STALE_AFTER_S, GpuTicket

    dead = GpuTicket(tmp_path, 2)
    mine = GpuTicket(tmp_path, 1)
    assert not mine.is_first()  # the older ticket is ahead while its waiter polls
    os.utime(dead.path, (time.time() - STALE_AFTER_S - 5,) * 2)  # its waiter stopped polling
    assert mine.is_first() and not dead.path.exists()
    mine.leave()
    assert not list(tmp_path.glob("*.ticket"))
