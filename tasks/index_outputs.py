"""Refresh the DuckDB index of an outputs root, as a Prefect task.

The work is :func:`tracr.index.store.refresh_index`; the task logs what it did
and returns the stats as a plain dict (a Prefect result must be serialisable).
It runs in a worker thread so a refresh does not stall the event loop of a
flow that is still serving other runs.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

if TYPE_CHECKING:
    from tracr.index.store import IndexStats


__all__ = ["index_outputs"]


@task(name="index-outputs", task_run_name="index {outputs}", cache_policy=NO_CACHE)
async def index_outputs(outputs: str, rebuild: bool = False) -> dict[str, Any]:
    """Bring ``<outputs>/index.duckdb`` up to date; returns :class:`IndexStats` as a dict."""
    stats = await asyncio.to_thread(_refresh, Path(outputs), rebuild)
    get_run_logger().info("%s (%s)", stats.summary(), outputs)
    return asdict(stats)


def _refresh(outputs: Path, rebuild: bool) -> IndexStats:
    """Import and refresh in the worker thread: loading DuckDB takes a few tenths of a second, not to be spent on the event loop."""
    from tracr.index.store import refresh_index  # DuckDB loads only when indexing

    return refresh_index(outputs, rebuild=rebuild)
