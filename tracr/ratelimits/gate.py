"""The run's requests in flight: a semaphore whose size an :class:`AimdController` moves.

Fixed (``adaptive=False``) it is a plain semaphore of ``ceiling``, as runs always had.
Adaptive, a 429 halves it, so the run backs off as one instead of each request
retrying on its own while the others keep firing; the throttled request itself
waits its ``Retry-After`` (``with_retries``). Once halving has nothing left to give
(one request in flight), a ``Retry-After`` holds every new request of the run.
Holding the run on every 429 instead idled it: in a storm that lets 4 requests
through, pausing the run for each 429 served 7.5 pages/s where halving alone
served about twice that (bench/rate_limits.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tracr.ratelimits.aimd import AimdController, ConcurrencyChange

__all__ = ["AdaptiveGate", "MAX_PAUSE_S"]

#: A Retry-After longer than this is not believed (a provider's header can say hours).
MAX_PAUSE_S = 60.0


class AdaptiveGate:
    """Admits requests up to the controller's allowed count; told how each one ended."""

    def __init__(
        self,
        ceiling: int,
        *,
        adaptive: bool = False,
        latency_limit_s: float | None = None,
        on_change: Callable[[ConcurrencyChange], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.controller = AimdController(ceiling, latency_limit_s=latency_limit_s)
        self.adaptive = adaptive
        self.on_change = on_change
        self.clock = clock
        self.in_flight = 0
        self.paused_until = 0.0
        self.changes = 0
        self.throttled = 0
        self.lowest = ceiling
        self._freed = asyncio.Event()

    @property
    def allowed(self) -> int:
        return self.controller.allowed

    async def acquire(self) -> float:
        """Wait for a place (and past any Retry-After pause); returns when the request starts."""
        while True:
            pause = self.paused_until - self.clock()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self.in_flight < self.allowed:
                self.in_flight += 1
                return self.clock()
            self._freed.clear()
            await self._freed.wait()

    def release(self, started_at: float, *, throttled: bool = False, retry_after_s: float | None = None, ok: bool = False) -> None:
        """The request ended: ``throttled`` (429/503), ``ok`` (a reply), or neither (another failure)."""
        now = self.clock()
        change: ConcurrencyChange | None = None
        if throttled:
            self.throttled += 1
        if self.adaptive and throttled:
            change = self.controller.on_throttle(started_at, now, retry_after_s)
            if retry_after_s and self.allowed == self.controller.floor:
                # Nothing left to give back by halving: the whole run waits out the Retry-After.
                self.paused_until = max(self.paused_until, now + min(retry_after_s, MAX_PAUSE_S))
        elif self.adaptive and ok:
            change = self.controller.on_success(started_at, now - started_at, now)
        self.in_flight -= 1
        self._freed.set()
        if change is not None:
            self.changes += 1
            self.lowest = min(self.lowest, change.new)
            if self.on_change is not None:
                self.on_change(change)

    def snapshot(self) -> dict[str, Any]:
        """For the run's metadata: the concurrency now and the last move, with its reason."""
        last = self.controller.last_change
        return {
            "adaptive": self.adaptive,
            "allowed": self.allowed,
            "max": self.controller.ceiling,
            "in_flight": self.in_flight,
            "throttled": self.throttled,
            "changes": self.changes,
            "lowest": self.lowest,
            "last_change": None if last is None else {"from": last.old, "to": last.new, "reason": last.reason},
        }
