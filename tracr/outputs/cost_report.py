"""Cost per 1,000 pages of each hosted run, as ``tracr show`` prints it, from ``run_metadata.json``'s ``cost``.

A run with no known price says so; a run that recorded no cost (a local model, or
one from before costs were recorded) is left out rather than shown as free.
"""

from __future__ import annotations

from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.layout import OutputLayout

__all__ = ["cost_rows", "cost_text"]


def _money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.4f} {currency}"


def cost_rows(layout: OutputLayout, job_id: str) -> list[dict[str, Any]]:
    """One row per run that recorded a cost: tokens, total, per 1,000 pages, and the price's date and source."""
    rows = []
    for slug in layout.model_slugs(job_id):
        for number in layout.run_numbers(job_id, slug):
            cost = (read_json(layout.run(job_id, slug, number).run_metadata) or {}).get("cost")
            if not isinstance(cost, dict):
                continue
            price = cost.get("price")
            row: dict[str, Any] = {
                "model": slug,
                "run": number,
                "pages": cost.get("pages_done", 0),
                "tokens in/out": f"{cost.get('input_tokens', 0)}/{cost.get('output_tokens', 0)}",
            }
            if not price:
                row.update({"cost": "no known price", "per 1,000 pages": "no known price", "price": "-"})
            else:
                currency = str(price.get("currency") or "USD")
                when = f" {price['as_of']}" if price.get("as_of") else ""
                row.update(
                    {
                        "cost": _money(cost.get("total"), currency),
                        "per 1,000 pages": _money(cost.get("per_1000_pages"), currency),
                        "price": f"{price.get('mode', 'live')}{when} ({price.get('source') or '?'})",
                    }
                )
            rows.append(row)
    return rows


def cost_text(layout: OutputLayout, job_id: str) -> str:
    """The cost table with its heading, or "" when no run recorded a cost."""
    from tracr.outputs.report import format_table

    rows = cost_rows(layout, job_id)
    return "cost (tokens the replies reported, at the price in force):\n" + format_table(rows) if rows else ""
