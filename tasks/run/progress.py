"""What a model run shows while it works: the progress artifact, the summary table, the page-failure alert.

All of it goes to the Prefect API and is best effort: the run's own records
(``run_metadata.json``, the page journals) stay the truth, so a failed update
is logged and the pages go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from prefect.artifacts import acreate_progress_artifact, acreate_table_artifact, aupdate_progress_artifact

from tasks.run.events import emit_run_event
from tracr.config.job import JobConfig
from tracr.config.models import ProviderLimits
from tracr.outputs.rollup import Rollup
from tracr.outputs.slugs import slugify
from tracr.pricing.cost import cost_record
from tracr.pricing.prices import resolve_price
from tracr.ratelimits.gate import AdaptiveGate
from tracr.run.events import failure_threshold, run_event_payload
from tracr.run.journal_totals import DOCUMENTS_LISTED, JournalTotals
from tracr.run.plan import RunPlan
from tracr.run.recorder import RunRecorder
from tracr.run.state import RunStatus

__all__ = ["RunProgress", "PROGRESS_INTERVAL_S"]

PROGRESS_INTERVAL_S = 2.0
#: PDF rows in a run's summary table at most: a table artifact of 20,000 rows helps nobody in the UI.
SUMMARY_PDF_ROWS = DOCUMENTS_LISTED


class RunContext(Protocol):
    """What progress reads of a run's live state (the OCR tasks' context has it)."""

    rollup: Rollup
    error_counts: dict[str, int]
    ended: JournalTotals  # the PDFs that ended so far
    engine: Any


def request_state(engine: object) -> dict[str, Any] | None:
    """The engine's requests in flight, its last move and why, and the budget it draws from (an engine without a gate: None)."""
    snapshot = getattr(engine, "snapshot", None)
    if callable(snapshot):  # the batch engine says how its batches stand
        return dict(snapshot())
    client = getattr(engine, "client", None)
    gate = getattr(client, "in_flight", None) or getattr(engine, "in_flight", None)
    if not isinstance(gate, AdaptiveGate):
        return None
    state = gate.snapshot()
    pacer = getattr(client, "pacer", None)
    if pacer is not None:
        state.update(pacer.snapshot())
    return state


def _artifact_key(plan: RunPlan, suffix: str) -> str:
    return slugify(f"{plan.job_id}-{plan.model_slug}-run-{plan.run}-{suffix}", max_length=120).replace(".", "-").replace("_", "-")


def _summary_row(name: str, status: str, rollup: dict[str, Any], error: str | None) -> dict[str, Any]:
    return {
        "pdf": name,
        "status": status,
        "pages done": rollup["pages_done"],
        "pages failed": rollup["pages_failed"],
        "input tokens": rollup["input_tokens"],
        "output tokens": rollup["output_tokens"],
        "pages/s": rollup["pages_per_s"],
        "error": error or "",
    }


def summary_table(ctx: RunContext, status: str, totals: JournalTotals, job_id: str) -> list[dict[str, Any]]:
    """Rows of the run's table artifact: PDFs (those that did not complete first, at most ``SUMMARY_PDF_ROWS``), then the total."""
    listed = totals.listed(SUMMARY_PDF_ROWS)
    rows = [_summary_row(o.slug, o.status, o.rollup.to_dict(), o.error) for o in listed]
    if (more := totals.documents - len(listed)) > 0:
        empty = {"pages_done": "", "pages_failed": "", "input_tokens": "", "output_tokens": "", "pages_per_s": ""}
        rows.append(_summary_row(f"… {more:,} more PDFs", "", empty, f"tracr show {job_id} --pdf SLUG shows any one"))
    rows.append(_summary_row("TOTAL", status, ctx.rollup.to_dict(), None))
    return rows


class RunProgress:
    """One run's live view: wall clock, progress artifact, rollup on disk, one page-failure alert.

    Created when the run starts (the progress artifact is requested then, without
    waiting for it); :meth:`ticking` keeps it current while the pages run;
    :meth:`finish` writes the summary table when the run ends.
    """

    def __init__(
        self,
        plan: RunPlan,
        ctx: RunContext,
        recorder: RunRecorder,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        previous_wall: float = 0.0,
    ) -> None:
        self.plan, self.ctx, self.recorder, self.logger = plan, ctx, recorder, logger
        # A plan made outside a job (no threshold given) alerts at the config's default share.
        default_ratio = JobConfig.model_fields["page_failure_alert_ratio"].default
        self.alert_at = plan.failure_alert_pages or failure_threshold(plan.pages_total, default_ratio, None)
        self.alerted = False
        spec = plan.model
        # Hosted models record their cost (or that no price is known); local ones cost GPU time, not tokens.
        self.priced = isinstance(spec, ProviderLimits)
        self.batch = isinstance(spec, ProviderLimits) and spec.batch
        self.price = resolve_price(spec.model, spec.price.to_price() if spec.price else None) if isinstance(spec, ProviderLimits) else None
        self.previous_wall = previous_wall  # a resumed run's earlier sessions
        self.started = time.perf_counter()
        self._artifact = asyncio.create_task(
            acreate_progress_artifact(
                0.0, key=_artifact_key(plan, "progress"), description=f"{plan.model_slug} run-{plan.run}: pages finished / planned"
            )
        )

    def write(self) -> None:
        """The rollup (with the wall time so far, earlier sessions included) into ``run_metadata.json``."""
        self.ctx.rollup.wall_seconds = self.previous_wall + time.perf_counter() - self.started
        extra: dict[str, Any] = {"error_counts": dict(self.ctx.error_counts)}
        requests = request_state(self.ctx.engine)
        if requests is not None:
            extra["requests"] = requests
        if self.priced:
            rollup = self.ctx.rollup
            extra["cost"] = cost_record(rollup.input_tokens, rollup.output_tokens, rollup.pages_done, self.price, batch=self.batch)
        self.recorder.update(self.ctx.rollup, **extra)

    def alert_on_failures(self) -> None:
        """Emit ``page-failures`` once, when the failed pages reach the threshold."""
        if not self.alerted and self.ctx.rollup.pages_failed >= self.alert_at:
            self.alerted = True
            payload = run_event_payload("running", self.ctx.rollup.to_dict(), self.ctx.error_counts, threshold=self.alert_at)
            emit_run_event("page-failures", self.plan, payload)

    def documents(self) -> str:
        """Pages and documents so far, as the progress artifact's description says them."""
        ctx, plan = self.ctx, self.plan
        done, failed = ctx.ended.by_status["completed"], ctx.ended.by_status["failed"]
        left = len(plan.pdfs) - done - failed
        text = (
            f"{plan.model_slug} run-{plan.run}: pages {ctx.rollup.pages_finished:,} of {plan.pages_total:,} finished; "
            f"documents {done:,} done, {failed:,} failed, {left:,} left"
        )
        requests = request_state(ctx.engine)
        if requests is not None and requests.get("adaptive") and requests.get("last_change") is not None:
            text += f"; requests in flight {requests['allowed']} of {requests['max']} ({requests['last_change']['reason']})"
        return text

    async def report(self) -> None:
        """Move the progress artifact to pages finished / planned, and say how many documents are done, failed and left."""
        share = 100.0 * self.ctx.rollup.pages_finished / max(1, self.plan.pages_total)
        await aupdate_progress_artifact(await self._artifact, min(100.0, share), description=self.documents())

    @asynccontextmanager
    async def ticking(self, interval_s: float = PROGRESS_INTERVAL_S) -> AsyncIterator[None]:
        """Restart the wall clock (pages start now) and refresh everything every ``interval_s``."""
        self.started = time.perf_counter()
        tick = asyncio.create_task(self._tick(interval_s))
        try:
            yield
        finally:  # stopped and awaited: no tick writes the record after the run's end is written
            tick.cancel()
            await asyncio.gather(tick, return_exceptions=True)

    async def _tick(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.write()
                self.alert_on_failures()
                await self.report()
            except Exception as exc:  # progress is best effort; the run's own work goes on
                self.logger.warning("progress update failed: %s", exc)

    async def finish(self, status: RunStatus, totals: JournalTotals) -> None:
        """Last progress and the summary table; a cancelled run drops its artifact request instead."""
        if status == RunStatus.CANCELLED:
            self._artifact.cancel()
            return
        plan = self.plan
        await asyncio.gather(
            self.report(),
            acreate_table_artifact(
                summary_table(self.ctx, status.value, totals, plan.job_id),
                key=_artifact_key(plan, "summary"),
                description=f"{plan.job_id} / {plan.model_slug} / run-{plan.run}: {status.value}",
            ),
        )
