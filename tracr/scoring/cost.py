"""Cost per 1,000 pages, the number users want beside quality.

Hosted models bill tokens (input and output at their own per-million prices); local
models cost GPU time, so their price follows from measured pages/s and the GPU-hour
price (times how many GPUs the server holds).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenPrices", "cost_per_1000_pages_from_tokens", "cost_per_1000_pages_from_throughput"]


@dataclass(frozen=True)
class TokenPrices:
    """Prices per million tokens, in any currency."""

    input_per_million: float
    output_per_million: float


def cost_per_1000_pages_from_tokens(input_tokens: int, output_tokens: int, pages: int, prices: TokenPrices) -> float:
    """Measured tokens over ``pages`` pages, scaled to 1,000 pages."""
    if pages <= 0:
        raise ValueError("pages must be positive")
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts must not be negative")
    total = input_tokens * prices.input_per_million / 1e6 + output_tokens * prices.output_per_million / 1e6
    return total / pages * 1000


def cost_per_1000_pages_from_throughput(pages_per_second: float, gpu_hour_price: float, gpus: int = 1) -> float:
    """GPU time for 1,000 pages at the measured rate: ``1000 / pps / 3600 * price * gpus``."""
    if pages_per_second <= 0:
        raise ValueError("pages_per_second must be positive")
    if gpus < 1:
        raise ValueError("gpus must be at least 1")
    return 1000 / pages_per_second / 3600 * gpu_hour_price * gpus
