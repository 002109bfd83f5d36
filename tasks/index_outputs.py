"""Refresh the DuckDB index of an outputs root, as a Prefect task.

The work is :func:`tracr.index.store.refresh_index`; the task logs what it did
and returns the stats as a plain dict (a Prefect result must be serialisable).
It runs in a worker thread so a refresh does not stall the event loop of a
flow that is still serving other runs. An index that cannot be written (a full
disk, a read-only or missing outputs root) ends the task run Failed with that
one line as its message, not as an exception whose traceback Prefect would log.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

if TYPE_CHECKING:
    from tracr.index.store import IndexStats


__all__ = ["index_outputs", "index_outputs_state"]


class _IndexUnwritable(Exception):
    """The index's files cannot be read or written; the message says which and why."""


@task(name="index-outputs", task_run_name="index {outputs}", cache_policy=NO_CACHE)
async def index_outputs(outputs: str, rebuild: bool = False) -> dict[str, Any] | State:
    """Bring ``<outputs>/index.duckdb`` up to date; returns :class:`IndexStats` as a dict, or a Failed state."""
    try:
        stats = await asyncio.to_thread(_refresh, Path(outputs), rebuild)
    except _IndexUnwritable as exc:
        return Failed(message=f"could not refresh the outputs index: {exc}")
    get_run_logger().info("%s (%s)", stats.summary(), outputs)
    return asdict(stats)


async def index_outputs_state(outputs: str, rebuild: bool = False) -> State:
    """Run :func:`index_outputs` and return its final state, Completed or Failed, for the caller to judge."""
    call: Any = index_outputs(outputs, rebuild=rebuild, return_state=True)  # a coroutine (Prefect's overload says State)
    state: State = await call
    return state


def _refresh(outputs: Path, rebuild: bool) -> IndexStats:
    """Import and refresh in the worker thread: loading DuckDB takes a few tenths of a second, not to be spent on the event loop."""
    import duckdb  # DuckDB loads only when indexing

    from tracr.index.store import refresh_index

    try:
        return refresh_index(outputs, rebuild=rebuild)
    except (OSError, duckdb.Error) as exc:
        raise _IndexUnwritable(str(exc)) from exc
