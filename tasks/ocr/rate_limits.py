"""A provider's per-minute budget held in Prefect global concurrency limits with slot decay.

Every run, job and host that uses one key takes its requests and tokens from the
same two limits (:mod:`tracr.ratelimits.budget` names and sizes them), which the
Prefect UI shows and lets an operator adjust. A limit is created on first use
(an existing one is left as it is: the UI's edits stand). Tokens are taken before
a request at an estimate and settled once its usage is known: the difference is
taken, or given back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx
from prefect import get_run_logger
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import MissingContextError, ObjectAlreadyExists, ObjectNotFound

from tracr.errors import ErrorClass, TracrError
from tracr.ratelimits.budget import SLOTS_PER_REQUEST, LimitSize, RateBudget

__all__ = ["ProviderPacer", "RateLimitMissing", "ensure_rate_limits"]

_KNOWN: set[str] = set()
#: How long a hiccup of the Prefect server is waited out before the page's own retry policy sees it.
PREFECT_OUTAGE_S = 60.0


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


_CREATE_LOCK: asyncio.Lock | None = None


async def ensure_rate_limits(sizes: list[LimitSize]) -> None:
    """Create the limits that do not exist yet (a racing process may create one first: that is fine)."""
    global _CREATE_LOCK
    if _CREATE_LOCK is None:
        _CREATE_LOCK = asyncio.Lock()
    async with _CREATE_LOCK, get_client() as client:
        for size in sizes:
            if size.name in _KNOWN:
                continue
            try:
                existing = await client.read_global_concurrency_limit_by_name(size.name)
            except ObjectNotFound:
                try:
                    await client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=size.name, limit=size.limit, slot_decay_per_second=size.slot_decay_per_second)
                    )
                except ObjectAlreadyExists:  # created meanwhile by another run or host
                    pass
            else:
                if existing.limit != size.limit or abs(existing.slot_decay_per_second - size.slot_decay_per_second) > 1e-6:
                    _logger().warning(
                        "rate limit %s exists as %d slots decaying %.3f/s (this config would make %d and %.3f/s): "
                        "the existing limit stands; edit it in the Prefect UI, or delete it to have it made from the config",
                        size.name,
                        existing.limit,
                        existing.slot_decay_per_second,
                        size.limit,
                        size.slot_decay_per_second,
                    )
            _KNOWN.add(size.name)


class RateLimitMissing(TracrError, RuntimeError):
    """A limit the run draws from was deleted while it ran: its pages fail rather than go unpaced."""

    default_class = ErrorClass.UNKNOWN


class ProviderPacer:
    """Takes a request's share of the key's budget before it is sent, and settles its tokens after."""

    def __init__(self, budget: RateBudget) -> None:
        self.budget = budget
        self.requests = budget.requests_limit()
        self.tokens = budget.tokens_limit()
        self.waited_s = 0.0
        self.tokens_taken = 0
        self._client: PrefectClient | None = None  # one client for every call, not one per request
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def names(self) -> list[str]:
        return [size.name for size in (self.requests, self.tokens) if size is not None]

    def snapshot(self) -> dict[str, Any]:
        """The limits this run draws from (names only: never the key) and how long it waited for them."""
        return {"rate_limits": self.names, "rate_limit_wait_s": round(self.waited_s, 3)}

    async def ensure(self) -> None:
        await ensure_rate_limits([size for size in (self.requests, self.tokens) if size is not None])

    async def before(self, estimate_tokens: int) -> int:
        """Wait for a request's slot and its estimated tokens; returns the tokens taken."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.requests is not None:
            await self._take(self.requests, SLOTS_PER_REQUEST)
        taken = 0
        if self.tokens is not None:
            taken = max(1, min(estimate_tokens, self.tokens.limit))
            await self._take(self.tokens, taken)
        self.waited_s += loop.time() - started
        self.tokens_taken += taken
        return taken

    async def settle(self, taken: int, used: int | None) -> None:
        """Correct the tokens taken to the reply's usage (``used`` 0 for a request that was refused)."""
        if self.tokens is None or used is None or used == taken:
            return
        if used > taken:
            extra = min(used - taken, self.tokens.limit)
            await self._take(self.tokens, extra)
            self.tokens_taken += extra
            return
        client = await self._api()
        await client.release_concurrency_slots([self.tokens.name], slots=taken - used, occupancy_seconds=0.0)
        self.tokens_taken -= taken - used

    async def _api(self) -> PrefectClient:
        if self._client is None:
            self._client = await get_client().__aenter__()
        return self._client

    async def _take(self, size: LimitSize, slots: int) -> None:
        """Occupy ``slots`` of a rate limit (Prefect's ``/v2/concurrency_limits/increment``, mode ``rate_limit``).

        The wait is paced here, one caller of this process at a time, by how long the
        limit takes to free ``slots``: Prefect's own Retry-After grows with every denied
        caller's slots and is drawn at random, which left a fifth of the budget idle
        (bench/rate_limits.py measured 0.78 of it with ``prefect.concurrency.asyncio.rate_limit``).
        """
        lock = self._locks.setdefault(size.name, asyncio.Lock())
        async with lock:
            client = await self._api()
            loop = asyncio.get_running_loop()
            give_up_at = loop.time() + PREFECT_OUTAGE_S
            while True:
                try:
                    response = await client.increment_concurrency_slots(names=[size.name], slots=slots, mode="rate_limit")
                except httpx.HTTPStatusError as exc:
                    status = exc.response.status_code
                    if status == 423:  # locked: not enough slots yet
                        await asyncio.sleep(slots / max(size.slot_decay_per_second, 1e-6) * random.uniform(0.5, 1.0))
                        continue
                    if status < 500 or loop.time() > give_up_at:
                        raise
                    await asyncio.sleep(0.5)  # the Prefect server busy (a locked database): the page was not sent, so try again
                    continue
                except httpx.TransportError:
                    if loop.time() > give_up_at:
                        raise
                    await asyncio.sleep(0.5)
                    continue
                if not response.json():
                    raise RateLimitMissing(f"rate limit {size.name} does not exist any more (deleted while the run went on?)")
                return

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)
