"""Placement I/O: publish this host's GPUs, read every host's, submit a job to the host that fits.

A host publishes its inventory by creating its per-GPU limits (``tracr gpus publish``
at worker start; ``tasks/serving/gpu_slots.py`` would create them on first use anyway).
``tracr submit`` reads all limits, chooses with :func:`tracr.serving.placement.choose_host`
and runs the ``ocr-job`` deployment on that host's work queue (each host's worker
polls a queue named after it, ``prefect worker start --work-queue <host>``).
Jobs with no local model go to ``--cpu-queue`` (default ``default``).
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentTaskRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterWorkQueueName,
)
from prefect.client.schemas.objects import StateType

from tasks.serving.gpu_slots import ensure_gpu_limits, gpu_host
from tracr.serving.gpus import current_inventory
from tracr.serving.placement import HostGpus, choose_host, hosts_from_limits

__all__ = ["publish_gpus", "read_hosts", "place", "submit_job"]


async def publish_gpus() -> tuple[str, list[str]]:
    """Create this host's per-GPU limits (its published inventory); returns the host and limit names."""
    inventory = current_inventory()
    return gpu_host(), await ensure_gpu_limits(inventory) if inventory.count else []


async def read_hosts() -> dict[str, HostGpus]:
    """Every published host's GPUs, how many are busy now and how many runs wait on its queue, from the Prefect server."""
    pairs: list[tuple[str, int]] = []
    async with get_client() as client:
        offset = 0
        while True:
            page = await client.read_global_concurrency_limits(limit=200, offset=offset)
            pairs += [(limit.name, int(limit.active_slots)) for limit in page]
            if len(page) < 200:
                break
            offset += 200
        hosts = hosts_from_limits(pairs)
        runs = (
            await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING])),
                    work_queue_name=FlowRunFilterWorkQueueName(any_=list(hosts)),
                    parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=True),  # jobs, not their subflows
                ),
                limit=200,
            )
            if hosts
            else []
        )
    queued: dict[str, int] = {}
    for run in runs:
        if run.work_queue_name:
            queued[run.work_queue_name] = queued.get(run.work_queue_name, 0) + 1
    return hosts_from_limits(pairs, queued)


async def place(needed: int, cpu_queue: str = "default") -> str:
    """The work queue for a job whose largest local server needs ``needed`` GPUs."""
    if needed <= 0:
        return cpu_queue
    return choose_host(needed, await read_hosts())


async def submit_job(
    request: dict[str, Any], needed: int, *, deployment: str = "ocr-job/process", cpu_queue: str = "default"
) -> tuple[str, str]:
    """Create a flow run of ``deployment`` on the chosen host's queue (not waiting for it); returns (queue, flow run id)."""
    from prefect.deployments import arun_deployment

    queue = await place(needed, cpu_queue)
    run = await arun_deployment(deployment, parameters={"request": request}, work_queue_name=queue, timeout=0)
    return queue, str(run.id)
