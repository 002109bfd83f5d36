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
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import rate_limit
from prefect.exceptions import MissingContextError, ObjectAlreadyExists, ObjectNotFound

from tracr.ratelimits.budget import SLOTS_PER_REQUEST, LimitSize, RateBudget

__all__ = ["ProviderPacer", "ensure_rate_limits"]

_KNOWN: set[str] = set()


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


class ProviderPacer:
    """Takes a request's share of the key's budget before it is sent, and settles its tokens after."""

    def __init__(self, budget: RateBudget) -> None:
        self.budget = budget
        self.requests = budget.requests_limit()
        self.tokens = budget.tokens_limit()
        self.waited_s = 0.0
        self.tokens_taken = 0
        self._client: PrefectClient | None = None  # for giving tokens back: one client, not one per request

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
            await rate_limit(self.requests.name, occupy=SLOTS_PER_REQUEST, strict=True)
        taken = 0
        if self.tokens is not None:
            taken = max(1, min(estimate_tokens, self.tokens.limit))
            await rate_limit(self.tokens.name, occupy=taken, strict=True)
        self.waited_s += loop.time() - started
        self.tokens_taken += taken
        return taken

    async def settle(self, taken: int, used: int | None) -> None:
        """Correct the tokens taken to the reply's usage (``used`` 0 for a request that was refused)."""
        if self.tokens is None or used is None or used == taken:
            return
        if used > taken:
            extra = min(used - taken, self.tokens.limit)
            await rate_limit(self.tokens.name, occupy=extra, strict=True)
            self.tokens_taken += extra
            return
        if self._client is None:
            self._client = await get_client().__aenter__()
        await self._client.release_concurrency_slots([self.tokens.name], slots=taken - used, occupancy_seconds=0.0)
        self.tokens_taken -= taken - used

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)
