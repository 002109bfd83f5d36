"""GPU slots as Prefect global concurrency limits: one limit per GPU, limit 1.

A count alone cannot say *which* GPU a server gets, so each GPU of a host has its
own limit (``tracr-gpu-<host>-<index>``) and a server needing N GPUs takes N of
them in one all-or-nothing call. Candidates are the GPUs whose limits show a free
slot; the server grants the set atomically, so two servers never share a GPU even
when they race for the same one (the loser sees 423 and tries again).

Slots are held under a Prefect lease that a background thread renews; they are
released when the holder's context exits (success, failure, exception, cancel)
and come back by lease expiry when the holder dies without exiting.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from tracr.errors import ErrorClass, TracrError
from tracr.serving.gpu_queue import GpuTicket
from tracr.serving.gpus import GpuInventory
from tracr.serving.host import host_id

__all__ = [
    "GpuReservation",
    "GpuRequestTooLarge",
    "gpu_limit_name",
    "gpu_host",
    "ensure_gpu_limits",
    "reserve_gpus",
    "gpu_slot_usage",
    "lease_seconds",
]

LEASE_ENV = "TRACR_GPU_LEASE_S"
#: Prefect's minimum lease is 60 s; 120 s means a crashed holder's GPUs come back within ~2 minutes.
DEFAULT_LEASE_S = 120.0
POLL_S = 1.0


class GpuRequestTooLarge(TracrError, ValueError):
    """A model needs more GPUs than the host has."""

    default_class = ErrorClass.NOT_ENOUGH_GPUS


@dataclass(frozen=True)
class GpuReservation:
    """The GPUs a server got, by index and by limit name."""

    indices: tuple[int, ...]
    limit_names: tuple[str, ...]
    waited_s: float

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(i) for i in self.indices)


def gpu_host() -> str:
    """The host part of limit names: this host's id (``TRACR_GPU_HOST`` overrides the hostname)."""
    return host_id()


def gpu_limit_name(index: int, host: str | None = None) -> str:
    return f"tracr-gpu-{host or gpu_host()}-{index}"


def lease_seconds() -> float:
    return max(60.0, float(os.environ.get(LEASE_ENV, DEFAULT_LEASE_S)))


_KNOWN_LIMITS: set[str] = set()
_CREATE_LOCK: asyncio.Lock | None = None


async def ensure_gpu_limits(inventory: GpuInventory, host: str | None = None) -> list[str]:
    """Create the per-GPU limits on first use (an existing limit is left as it is)."""
    global _CREATE_LOCK
    names = [gpu_limit_name(g.index, host) for g in inventory.gpus]
    if _CREATE_LOCK is None:
        _CREATE_LOCK = asyncio.Lock()
    async with _CREATE_LOCK, get_client() as client:  # sibling runs of one job do not race to create
        for name in names:
            if name in _KNOWN_LIMITS:
                continue
            try:
                await client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
                except ObjectAlreadyExists:  # created meanwhile by another process
                    pass
            _KNOWN_LIMITS.add(name)
    return names


async def gpu_slot_usage(inventory: GpuInventory, host: str | None = None) -> dict[int, int]:
    """Active slots per GPU index, as the Prefect server sees them now."""
    usage: dict[int, int] = {}
    async with get_client() as client:
        for gpu in inventory.gpus:
            try:
                limit = await client.read_global_concurrency_limit_by_name(gpu_limit_name(gpu.index, host))
                usage[gpu.index] = int(limit.active_slots)
            except Exception:
                usage[gpu.index] = 0
    return usage


def _is_locked(exc: BaseException) -> bool:
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423


@asynccontextmanager
async def reserve_gpus(
    inventory: GpuInventory,
    count: int,
    *,
    holder_flow_run_id: UUID | None = None,
    on_wait: Callable[[dict[int, int]], Awaitable[None]] | None = None,
    host: str | None = None,
    poll_s: float = POLL_S,
    queue_dir: Path | None = None,
) -> AsyncIterator[GpuReservation]:
    """Hold ``count`` distinct GPUs of ``inventory`` until the block exits.

    Waits (calling ``on_wait`` once, with the current usage) while too few are
    free; cancelling the waiting task stops the wait with nothing held. With
    ``queue_dir`` (the host's queue under the outputs root) waiting is first come,
    first served: only the oldest waiter asks for GPUs, so a large request is not
    starved by small ones that keep arriving.
    """
    if count > inventory.count:
        raise GpuRequestTooLarge(f"needs {count} GPU(s) but this host has {inventory.count}")
    await ensure_gpu_limits(inventory, host)
    holder = ConcurrencyLeaseHolder(type="flow_run", id=holder_flow_run_id) if holder_flow_run_id else None
    lease = lease_seconds()
    loop = asyncio.get_running_loop()
    started = loop.time()
    ticket = GpuTicket(queue_dir, count) if queue_dir is not None else None
    try:
        async with _reserve_in_turn(inventory, count, ticket, host, holder, lease, poll_s, on_wait) as reservation:
            yield GpuReservation(reservation.indices, reservation.limit_names, round(loop.time() - started, 3))
    finally:
        if ticket is not None:
            ticket.leave()


@asynccontextmanager
async def _reserve_in_turn(
    inventory: GpuInventory,
    count: int,
    ticket: GpuTicket | None,
    host: str | None,
    holder: ConcurrencyLeaseHolder | None,
    lease: float,
    poll_s: float,
    on_wait: Callable[[dict[int, int]], Awaitable[None]] | None,
) -> AsyncIterator[GpuReservation]:
    """The wait itself: poll usage, ask the limits when it is this waiter's turn and enough GPUs are free."""
    announced = False
    while True:
        usage = await gpu_slot_usage(inventory, host)
        free = [g.index for g in inventory.gpus if usage.get(g.index, 0) == 0]
        if ticket is not None:
            ticket.refresh()
        in_turn = ticket is None or ticket.is_first()
        if in_turn and len(free) >= count:
            chosen = tuple(sorted(free)[:count])
            names = [gpu_limit_name(i, host) for i in chosen]
            stack = AsyncExitStack()
            try:
                await stack.enter_async_context(
                    concurrency(
                        names,
                        occupy=1,
                        max_retries=0,
                        lease_duration=lease,
                        strict=True,
                        holder=holder,
                        raise_on_lease_renewal_failure=False,
                    )
                )
            except ConcurrencySlotAcquisitionError as exc:
                if not _is_locked(exc):
                    raise
                await stack.aclose()
            else:
                if ticket is not None:
                    ticket.leave()  # served: the next waiter's turn
                async with stack:
                    yield GpuReservation(chosen, tuple(names), 0.0)
                return
        if not announced and on_wait is not None:
            announced = True
            await on_wait(usage)
        await asyncio.sleep(poll_s)
