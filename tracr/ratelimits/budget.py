"""A provider's per-minute budget as Prefect rate limits: names, sizes and token estimates.

Every run, job and host using one key must draw from one budget, so the limits are
named by provider and key, but never with the key: a digest of it, or a name the
user gives (``rate_limit_key``). A rate limit in Prefect is a bucket of ``limit``
slots that drain at ``slot_decay_per_second``; the sizes here keep any sliding
minute at or under the budget (a small burst plus the decay over a minute and a
margin), and count requests in thousandths so the server's whole-slot decay loses
nothing that matters.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from urllib.parse import urlparse

__all__ = [
    "SLOTS_PER_REQUEST",
    "WINDOW_S",
    "LimitSize",
    "RateBudget",
    "budget_base_name",
    "estimate_request_tokens",
    "image_tokens",
]

#: A request is this many slots of the requests limit: Prefect decays whole slots only.
SLOTS_PER_REQUEST = 1000
#: The minute a budget is spent over, plus a margin for the time between taking a slot and the request reaching the provider.
WINDOW_S = 60.5
_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


def _slug(text: str) -> str:
    return _NAME_UNSAFE.sub("-", text.lower()).strip("-")[:40] or "endpoint"


def budget_base_name(provider: str, base_url: str, api_key: str, name: str | None = None) -> str:
    """``tracr-rate-<provider>-<name or key digest>``: the same for every run using this key, and never the key.

    A ``custom`` provider is named by its endpoint's host, so two custom endpoints do not share a budget by accident.
    """
    where = provider if provider not in ("", "custom", "block") else (urlparse(base_url).hostname or provider)
    who = _slug(name) if name else "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return f"tracr-rate-{_slug(where)}-{who}"


@dataclass(frozen=True, slots=True)
class LimitSize:
    """One Prefect rate limit: its name, bucket size and decay, and the unit one slot stands for."""

    name: str
    limit: int
    slot_decay_per_second: float


@dataclass(frozen=True, slots=True)
class RateBudget:
    """Requests and tokens per minute for one key (either may be unset)."""

    base_name: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def requests_limit(self) -> LimitSize | None:
        """A burst of one second's requests (at least one), the rest spread so no sliding minute goes over."""
        rpm = self.requests_per_minute
        if not rpm:
            return None
        burst = min(max(1, math.ceil(rpm / 60)), rpm)
        # A request needs all its slots back: a minute may free just under one more request's worth than it allows.
        decay = (rpm - burst + 0.999) * SLOTS_PER_REQUEST / WINDOW_S
        return LimitSize(f"{self.base_name}-requests", burst * SLOTS_PER_REQUEST, _floor6(decay))

    def tokens_limit(self) -> LimitSize | None:
        """A burst of a tenth of the minute's tokens (one request's estimate is capped to it)."""
        tpm = self.tokens_per_minute
        if not tpm:
            return None
        burst = max(1, tpm // 10)
        return LimitSize(f"{self.base_name}-tokens", burst, _floor6(max(tpm - burst, 1) / WINDOW_S))


def _floor6(value: float) -> float:
    """Rounded down to a millionth: a decay rounded up could let a minute hold more than the budget."""
    return math.floor(value * 1e6) / 1e6


def image_tokens(width: int, height: int) -> int:
    """Tokens an image costs, as OpenAI counts a high-detail one: 85 plus 170 per 512-pixel tile."""
    if width <= 0 or height <= 0:
        return 85
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def estimate_request_tokens(text_chars: int, image_sizes: list[tuple[int, int]], max_tokens: int | None) -> int:
    """Tokens a request may use before its reply says: the prompt (4 characters a token), the images and ``max_tokens``."""
    prompt = math.ceil(text_chars / 4) + sum(image_tokens(w, h) for w, h in image_sizes)
    return max(1, prompt + (max_tokens or 0))
