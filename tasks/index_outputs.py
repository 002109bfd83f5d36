"""Refresh the DuckDB index of an outputs root, as a Prefect task.

The work is :func:`tracr.index.store.refresh_index`; the task logs what it did
and returns the stats as a plain dict (a Prefect result must be serialisable).
It runs in a short-lived child process: DuckDB's memory for a refresh grows with
the pages it reads (some 120 MiB for 20,000 new pages), and in the job process
that would make the end of a job over many PDFs its memory peak, kept by DuckDB's
allocator after the refresh too. The child costs about a quarter of a second
to start, starts from the allow-listed environment (it needs no key), and the
flow's event loop stays free meanwhile. An index that cannot be written (a full
disk, a read-only or missing outputs root) ends the task run Failed with that
one line as its message, not as an exception whose traceback Prefect would log.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from tracr.index.refresh import IndexUnwritable, refresh_as_data
from tracr.serving.child_env import child_environment, host_pass_env
from tracr.serving.process_group import start_pool_worker
from tracr.serving.spawn_env import EnvSpawnContext

__all__ = ["index_outputs", "index_outputs_state"]


@task(name="index-outputs", task_run_name="index {outputs}", cache_policy=NO_CACHE)
async def index_outputs(outputs: str, rebuild: bool = False) -> dict[str, Any] | State:
    """Bring ``<outputs>/index.duckdb`` up to date; returns :class:`IndexStats` as a dict, or a Failed state."""
    try:
        summary, stats = await _refresh_in_child(Path(outputs), rebuild)
    except IndexUnwritable as exc:
        return Failed(message=f"could not refresh the outputs index: {exc}")
    get_run_logger().info("%s (%s)", summary, outputs)
    return stats


async def index_outputs_state(outputs: str, rebuild: bool = False) -> State:
    """Run :func:`index_outputs` and return its final state, Completed or Failed, for the caller to judge."""
    call: Any = index_outputs(outputs, rebuild=rebuild, return_state=True)  # a coroutine (Prefect's overload says State)
    state: State = await call
    return state


async def _refresh_in_child(outputs: Path, rebuild: bool) -> tuple[str, dict[str, Any]]:
    """:func:`refresh_as_data` in a process of its own, which exits with the memory the refresh took."""
    env = child_environment(os.environ, wanted=host_pass_env(os.environ))
    pool = ProcessPoolExecutor(1, mp_context=EnvSpawnContext(env), initializer=start_pool_worker, initargs=(os.getpid(),))
    try:
        return await asyncio.wrap_future(pool.submit(refresh_as_data, outputs, rebuild))
    finally:
        await asyncio.to_thread(pool.shutdown)
