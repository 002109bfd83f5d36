"""Cancelling a job through Prefect: tags, a cancel request, and the watcher that obeys it.

Flow runs of a job carry the tag ``tracr-job:<job_id>``, so ``tracr cancel JOB_ID``
(or the Prefect UI) can find them and set them ``Cancelling``. A job started by
``tracr run`` has no worker or runner to kill it, so the job flow watches its own
state and, once it is ``Cancelling``, cancels its model runs: each records
``cancelled`` and keeps every finished page, and the flow ends ``Cancelled``.
Under a runner (served deployments) the runner's own cancellation reaches the
flow as an asyncio cancellation, with the same records (tested); a run killed
outright before it records anything stays ``running``, and ``--resume``
continues it all the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentTaskRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import TagsContext
from prefect.runtime import flow_run
from prefect.states import Cancelled, Cancelling

from tasks.run.termination import stop_reason, stop_requested
from tracr.outputs.layout import OutputLayout
from tracr.run.claims import claim_is_live, claim_of_flow_run, release_claim
from tracr.run.recorder import record_abandoned_runs

__all__ = ["job_tag", "tag_flow_run", "untagged_task_runs", "run_until_cancelled", "cancel_job", "CANCEL_POLL_S"]

CANCEL_POLL_S = 1.0
_STOPPING = (StateType.CANCELLING, StateType.CANCELLED)
_ACTIVE = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING]


def job_tag(job_id: str) -> str:
    return f"tracr-job:{job_id}"


async def tag_flow_run(job_id: str) -> None:
    """Add the job tag to the current flow run (a deployment's run may not have it yet)."""
    run_id = flow_run.id
    if not run_id:
        return
    async with get_client() as client:
        current = await client.read_flow_run(UUID(str(run_id)))
        if job_tag(job_id) not in current.tags:
            await client.update_flow_run(current.id, tags=[*current.tags, job_tag(job_id)])


@contextmanager
def untagged_task_runs() -> Iterator[None]:
    """Task runs created inside carry no tags, not even the job tag of their flow run.

    Prefect takes a tag concurrency slot (``tag:<tag>``) for every tag of a task
    run, limit or not: two more server writes per task, which on a SQLite server
    collide with the writes that record task states and come back as 503s, each
    stalling the task about 2 s (measured). The job tag is needed on flow runs
    only: ``tracr cancel`` and the UI find jobs by their flow runs.
    """
    with TagsContext(current_tags=set()):
        yield


async def _cancel_requested(run_id: str, poll_s: float) -> None:
    """Return once the flow run is Cancelling or Cancelled (polled: no runner tells a local process)."""
    async with get_client() as client:
        while True:
            await asyncio.sleep(poll_s)
            try:
                state = (await client.read_flow_run(UUID(run_id))).state
            except Exception:  # the API being briefly away is not a cancel request
                continue
            if state is not None and state.type in _STOPPING:
                return


async def run_until_cancelled(coros: Iterable[Awaitable[Any]], poll_s: float = CANCEL_POLL_S) -> tuple[list[Any], bool]:
    """Await ``coros`` together unless the current flow run is cancelled; returns ``(results, cancelled)``.

    A cancel is a ``Cancelling`` state on the API (``tracr cancel``, the UI) or a
    stop this process asked for (SIGTERM or Ctrl-C to ``tracr run``,
    :mod:`tasks.run.termination`). Every coroutine is then cancelled and awaited, so
    each records its own ending before this returns; a stop asked before the
    work starts starts none of it.
    """
    coros = list(coros)
    if stop_reason() is not None:
        for coro in coros:
            getattr(coro, "close", lambda: None)()  # never started: no "never awaited" warning
        return [], True
    work = asyncio.ensure_future(asyncio.gather(*coros))
    run_id = str(flow_run.id) if flow_run.id else None
    watchers: list[asyncio.Task[Any]] = [asyncio.create_task(stop_requested())]
    if run_id:
        watchers.append(asyncio.create_task(_cancel_requested(run_id, poll_s)))
    try:
        await asyncio.wait({work, *watchers}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        raise
    finally:
        for watcher in watchers:
            watcher.cancel()
    if work.done():
        return work.result(), False
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    return [], True


async def cancel_job(job_id: str, wait_s: float = 60.0, outputs_root: Path | None = None) -> list[dict[str, Any]]:
    """Set the job's active top-level flow runs ``Cancelling`` and wait for them to stop.

    A flow run whose job process is gone (its claim under ``outputs_root`` names
    a dead pid on this host: killed, or the machine rebooted) has nothing left to
    obey a cancel request, so it is set ``Cancelled`` at once instead, its
    unfinished runs are recorded ``cancelled`` and its stale claim removed.
    Returns one ``{id, name, state}`` per flow run found (the state when waiting ended).
    """
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[job_tag(job_id)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_ACTIVE)),
                parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True),
            )
        )
        found = {}
        for run in runs:
            claim = claim_of_flow_run(outputs_root, str(run.id)) if outputs_root is not None else None
            if claim is not None and outputs_root is not None and not claim_is_live(claim):
                await _cancel_abandoned(client, run, claim, job_id, outputs_root)
            elif run.state is None or run.state.type != StateType.CANCELLING:
                await client.set_flow_run_state(run.id, Cancelling(message=f"tracr cancel {job_id}"), force=True)
            found[run.id] = run
        deadline = time.monotonic() + wait_s
        while found and time.monotonic() < deadline:
            current = [await client.read_flow_run(run_id) for run_id in found]
            found = {run.id: run for run in current}
            if all(run.state is not None and run.state.is_final() for run in current):
                break
            await asyncio.sleep(0.5)
        return [{"id": str(run.id), "name": run.name, "state": run.state.name if run.state else "?"} for run in found.values()]


async def _cancel_abandoned(client: Any, run: FlowRun, claim: dict[str, Any], job_id: str, outputs_root: Path) -> None:
    """Settle a flow run whose process died: ``Cancelled`` in Prefect and in its run records."""
    reason = f"the job's process (pid {claim.get('pid')} on {claim.get('host')}) is gone; cancelled by tracr cancel"
    marked = record_abandoned_runs(OutputLayout(outputs_root), job_id, list(claim.get("runs") or []), reason)
    await client.set_flow_run_state(
        run.id, Cancelled(message=f"{reason}; runs recorded cancelled: {', '.join(marked) or 'none'}"), force=True
    )
    release_claim(outputs_root, claim)
