"""Retry policy for OCR requests: which failures are worth retrying, and how long to wait.

Exponential backoff with jitter keeps many concurrent page requests from retrying
in lock-step against a rate-limited provider; a server's ``Retry-After`` wins when
it is longer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tracr.errors import ErrorClass

__all__ = ["RetryPolicy", "RETRYABLE", "FATAL_FOR_RUN"]

RETRYABLE = frozenset({ErrorClass.RATE_LIMITED, ErrorClass.SERVER_ERROR, ErrorClass.TIMEOUT, ErrorClass.CONNECTION, ErrorClass.MALFORMED})
#: Errors that would fail every page alike (bad key, unknown model): stop the run early.
FATAL_FOR_RUN = frozenset({ErrorClass.AUTH, ErrorClass.NOT_FOUND})


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` retries after the first attempt, delays ``base * 2**n`` capped, with jitter."""

    retries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def should_retry(self, error_class: ErrorClass, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) that failed with ``error_class`` gets another go."""
        return error_class in RETRYABLE and attempt < self.max_attempts

    def delay(self, attempt: int, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt``: half fixed, half random ("equal jitter")."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        draw = (rng or random).uniform(0.5, 1.0)
        delay = ceiling * draw
        if retry_after_s is not None and retry_after_s > delay:
            delay = min(retry_after_s, max(self.max_delay_s, ceiling))
        return delay
