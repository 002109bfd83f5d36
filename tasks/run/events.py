"""Emitting tracr's run lifecycle events to Prefect (see ``tracr/run/events.py``).

Events are best effort: a failure to emit is logged and never fails the run.
Prefect relates each event to the flow run that emitted it.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

from tracr.run.events import RUN_EVENTS, run_resource
from tracr.run.plan import RunPlan

__all__ = ["emit_run_event"]

_log = logging.getLogger("tracr.events")


def emit_run_event(kind: str, plan: RunPlan, payload: dict[str, Any]) -> None:
    """Emit ``tracr.run.<kind>`` for the plan's run."""
    if kind not in RUN_EVENTS:
        raise ValueError(f"unknown run event {kind!r} (known: {', '.join(sorted(RUN_EVENTS))})")
    try:
        emit_event(
            event=f"tracr.run.{kind}",
            resource=run_resource(plan.job_id, plan.model_slug, plan.run, plan.model.model),
            payload=payload,
        )
    except Exception as exc:  # observability must not break the run
        _log.warning("could not emit tracr.run.%s: %s", kind, exc)
