"""Names, resource ids and payloads of tracr's run lifecycle events.

Events go to Prefect (``tasks/run/events.py`` emits them) so automations can react:
notify on ``tracr.run.failed``, page someone on ``tracr.run.page-failures``.
Payloads hold counts, status and error classes only: never a key, never page text.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["RUN_EVENTS", "run_resource", "run_event_payload", "failure_threshold"]

RUN_EVENTS = frozenset({"started", "completed", "failed", "cancelled", "page-failures"})


def run_resource(job_id: str, model_slug: str, run: int, model: str | None = None) -> dict[str, str]:
    """The event's resource: ``tracr.run.<job>.<model>.<n>`` plus labels automations can match on."""
    resource = {
        "prefect.resource.id": f"tracr.run.{job_id}.{model_slug}.{run}",
        "prefect.resource.name": f"{job_id} / {model_slug} / run-{run}",
        "tracr.job-id": job_id,
        "tracr.model-slug": model_slug,
        "tracr.run": str(run),
    }
    if model:
        resource["tracr.model"] = model
    return resource


def run_event_payload(
    status: str, rollup: dict[str, Any], error_counts: dict[str, int], error_class: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Counts and classes only (``error`` messages can quote a server's reply, so they stay on disk)."""
    payload = {
        "status": status,
        "pages_total": rollup.get("pages_total", 0),
        "pages_done": rollup.get("pages_done", 0),
        "pages_failed": rollup.get("pages_failed", 0),
        "input_tokens": rollup.get("input_tokens", 0),
        "output_tokens": rollup.get("output_tokens", 0),
        "wall_seconds": rollup.get("wall_seconds", 0),
        "failures_by_class": dict(error_counts),
    }
    if error_class:
        payload["error_class"] = error_class
    payload.update(extra)
    return payload


def failure_threshold(pages_total: int, ratio: float, count: int | None) -> int:
    """Failed pages at which ``tracr.run.page-failures`` fires: ``count`` if set, else ``ratio`` of the pages (at least 1)."""
    if count is not None:
        return max(1, count)
    return max(1, math.ceil(ratio * pages_total))
