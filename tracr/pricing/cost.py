"""A run's cost from the tokens its replies reported, at the price in force."""

from __future__ import annotations

from typing import Any

from tracr.pricing.prices import Price

__all__ = ["NO_PRICE", "cost_record"]

NO_PRICE = "no known price"


def cost_record(input_tokens: int, output_tokens: int, pages_done: int, price: Price | None, *, batch: bool = False) -> dict[str, Any]:
    """Tokens, total cost and cost per 1,000 pages done, with the price used; without a price, says so (never 0).

    Tokens of failed pages are in the total (they were billed); pages without a result are not in the divisor.
    """
    record: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens, "pages_done": pages_done}
    if price is None:
        record.update(price=None, total=None, per_1000_pages=None, note=NO_PRICE)
        return record
    factor = price.batch_factor if batch else 1.0
    if price.per_1000_pages is not None:
        total = pages_done * price.per_1000_pages / 1000 * factor
    else:
        total = (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6 * factor
    record.update(
        price={**price.to_dict(), "mode": "batch" if batch else "live"},
        total=round(total, 6),
        per_1000_pages=round(total / pages_done * 1000, 6) if pages_done else None,
    )
    return record
