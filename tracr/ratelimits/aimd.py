"""Additive increase, multiplicative decrease of a run's requests in flight.

A hosted endpoint says "too many" with 429 (or slows down): the run halves its
requests in flight, then adds one per round of successes (a round being as many
successes as requests allowed) until it is back at ``max_concurrent_requests``.
One burst of 429s is one signal: only a request started after the last decrease
can cause another, so a full window of throttled requests halves once, not to one.
Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AimdController", "ConcurrencyChange"]


@dataclass(frozen=True, slots=True)
class ConcurrencyChange:
    """A move of the allowed requests in flight, and why (shown in progress and logs)."""

    old: int
    new: int
    reason: str
    at: float


class AimdController:
    """The allowed requests in flight, between ``floor`` and ``ceiling``."""

    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 1,
        decrease: float = 0.5,
        latency_limit_s: float | None = None,
    ) -> None:
        if ceiling < 1 or not 1 <= floor <= ceiling:
            raise ValueError("need 1 <= floor <= ceiling")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        self.ceiling, self.floor, self.decrease, self.latency_limit_s = ceiling, floor, decrease, latency_limit_s
        self.window = ceiling
        self.credit = 0  # successes since the last step up
        self.last_decrease_at = float("-inf")
        self.last_change: ConcurrencyChange | None = None

    @property
    def allowed(self) -> int:
        return max(self.floor, min(self.ceiling, self.window))

    def on_success(self, started_at: float, latency_s: float, now: float) -> ConcurrencyChange | None:
        """A reply came: one more allowed per round of successes, unless it came too slowly."""
        if self.latency_limit_s is not None and latency_s > self.latency_limit_s:
            return self._decrease(started_at, now, f"latency {latency_s:.1f} s over {self.latency_limit_s:g} s")
        old = self.allowed
        self.credit += 1
        if self.credit >= self.window:
            self.credit = 0
            self.window = min(self.ceiling, self.window + 1)
        return self._changed(old, "endpoint recovered", now)

    def on_throttle(self, started_at: float, now: float, retry_after_s: float | None = None) -> ConcurrencyChange | None:
        """A 429 (or 503): halve, once per burst."""
        wait = f", Retry-After {retry_after_s:g} s" if retry_after_s is not None else ""
        return self._decrease(started_at, now, f"rate limited (429{wait})")

    def _decrease(self, started_at: float, now: float, reason: str) -> ConcurrencyChange | None:
        if started_at < self.last_decrease_at:
            return None  # sent before the last decrease: the same burst
        old = self.allowed
        self.last_decrease_at = now
        self.window = max(self.floor, int(self.window * self.decrease))
        self.credit = 0
        return self._changed(old, reason, now)

    def _changed(self, old: int, reason: str, now: float) -> ConcurrencyChange | None:
        if self.allowed == old:
            return None
        self.last_change = ConcurrencyChange(old, self.allowed, reason, now)
        return self.last_change
