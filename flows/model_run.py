"""One run of one model over the job's PDFs, as a Prefect (sub)flow.

It obtains an endpoint (the hosted API, or a local server it starts and always
stops), fans out one ``ocr-pdfs`` task per batch of PDFs (a big PDF alone, small
ones together: :mod:`tracr.run.batches`), ``pdf_concurrency`` PDFs feeding
pages at once, keeps a progress artifact and ``run_metadata.json`` current on a
timer, and ends with a table artifact summarising the run.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.states import Cancelled, State
from prefect.utilities.annotations import quote

from flows.local_server import serve_local_model
from tasks.documents.render_pool import shared_render_pool
from tasks.ocr.page_engines import PageEngine, engine_for
from tasks.ocr.pdf_task import FeedTicket, RunContext, ocr_pdfs
from tasks.ocr.request import FatalModelError
from tasks.run.cancellation import untagged_task_runs
from tasks.run.events import emit_run_event
from tasks.run.progress import RunProgress
from tasks.run.sibling_work import all_or_none
from tasks.run.termination import TerminationSignal
from tasks.serving.process import ServerStartError
from tracr.adapters.records import adapter_record
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import OutputWriteError, read_json
from tracr.outputs.layout import OutputLayout
from tracr.outputs.metrics import write_run_metrics
from tracr.outputs.rollup import Rollup
from tracr.run.batches import PdfBatch, batch_pdfs
from tracr.run.events import run_event_payload
from tracr.run.journal_totals import journal_totals
from tracr.run.plan import RunPlan
from tracr.run.recorder import RunRecorder, host_info, refresh_model_metadata
from tracr.run.state import RunStatus
from tracr.serving.gpus import gpu_info
from tracr.serving.server_errors import ServerDeath, ServerDied

__all__ = ["model_run_flow", "RunFailed"]

#: How often a run checks that its local server still runs.
SERVER_WATCH_S = 0.25
#: Pages rendered ahead of the requests, per render worker, so requests never wait for images.
RENDER_AHEAD_PER_WORKER = 4
#: What ends a run, in the order a failed group of PDFs is reported by.
_RUN_ENDERS: tuple[type[BaseException], ...] = (TerminationSignal, ServerDied, FatalModelError, OutputWriteError)


class RunFailed(TracrError, RuntimeError):
    """The run ended ``failed``; raised so Prefect shows the flow run as Failed."""

    default_class = ErrorClass.UNKNOWN  # raised with the class of the failure that ended the run


def _engine(plan: RunPlan, recorder: RunRecorder) -> AbstractAsyncContextManager[tuple[PageEngine, ServerDeath]]:
    """The page engine for the plan's model kind; a local server lives exactly as long as the engine."""
    return engine_for(plan, shared_render_pool(), lambda: serve_local_model(plan, plan.location, recorder=recorder))


def _open_recorder(plan: RunPlan) -> tuple[RunRecorder, bool, float]:
    """The run's recorder, and whether it resumes an earlier session (then also that session's wall time)."""
    location = plan.location
    resuming = plan.resume and location.run_metadata.is_file()
    previous_wall = float(((read_json(location.run_metadata) or {}).get("rollup") or {}).get("wall_seconds") or 0.0) if resuming else 0.0
    settings = {
        "prompt": plan.prompt,
        "max_tokens": plan.max_tokens,
        "temperature": plan.temperature,
        "render": plan.render.model_dump(),
        "pdf_concurrency": plan.pdf_concurrency,
    }
    if plan.adapter is not None:
        settings["adapter"] = adapter_record(plan.adapter, plan.model.keep_furniture)
    recorder = RunRecorder(
        location, {"model": plan.model.public_dict(), "settings": settings, "host": host_info(), "config_digest": plan.config_digest}
    )
    if resuming:
        resumed_from = recorder.resume()
        get_run_logger().info("resuming run-%s of %s (was %s)", plan.run, plan.model_slug, resumed_from.value)
    refresh_model_metadata(OutputLayout(location.root), plan.job_id, plan.model_slug, plan.model.public_dict())
    return recorder, resuming, previous_wall


def _run_context(plan: RunPlan) -> RunContext:
    """What the PDF tasks share; enough page slots that rendering runs ahead of the requests."""
    slots = asyncio.Semaphore(plan.model.max_concurrent_requests + RENDER_AHEAD_PER_WORKER * shared_render_pool().workers)
    return RunContext(
        engine=None,
        location=plan.location,
        slots=slots,
        rollup=Rollup(pages_total=plan.pages_total),
        feeding=asyncio.Semaphore(plan.pdf_concurrency),
        resume=plan.resume,
        max_page_chars=plan.model.max_page_chars,
    )


@dataclass(frozen=True)
class _RunEnd:
    """How a run ended: its status, the error it records, and the class its event carries."""

    status: RunStatus = RunStatus.FAILED
    error: str | None = None
    #: An :class:`ErrorClass` value, or the exception type of a bug (events have always said which).
    error_class: str | None = None

    @classmethod
    def failed(cls, exc: TracrError) -> _RunEnd:
        """A failure tracr names. A server that did not start is ``server_start`` here; its cause is under ``server``."""
        if isinstance(exc, FatalModelError):
            return cls(error=f"model rejected the requests: {exc}", error_class=exc.error_class.value)
        error_class = ErrorClass.SERVER_START if isinstance(exc, ServerStartError) else exc.error_class
        return cls(error=str(exc), error_class=error_class.value)


async def _run_pdfs(plan: RunPlan, ctx: RunContext, recorder: RunRecorder, progress: RunProgress, resuming: bool) -> None:
    """Get the endpoint, then every batch of PDFs through ``ocr-pdfs`` until done or the server dies.

    ``pdf_concurrency`` PDFs feed pages at once, and a PDF whose pages all have
    a slot lets the next one feed, so small PDFs keep the requests in flight.
    Batches start in order, each once the one before has started all its PDFs.
    """
    if not plan.model.serves_locally:  # a local server's lifecycle records waiting_resources/starting itself
        recorder.set_status(RunStatus.STARTING)  # the endpoint: the API client
    async with _engine(plan, recorder) as (engine, server_death):
        ctx.engine = engine
        recorder.set_status(RunStatus.RUNNING)
        emit_run_event("started", plan, run_event_payload("running", ctx.rollup.to_dict(), ctx.error_counts, resumed=resuming))
        get_run_logger().info("run-%s of %s: %d PDF(s), %d page(s)", plan.run, plan.model_slug, len(plan.pdfs), plan.pages_total)
        turn = asyncio.Semaphore(1)  # the batch starting its PDFs

        async def one_batch(batch: PdfBatch) -> dict[str, int]:
            await turn.acquire()
            ticket = FeedTicket(turn)
            try:
                with untagged_task_runs():
                    # quoted: Prefect passes them as they are, without walking into the shared context or the PDFs
                    call: Any = ocr_pdfs(
                        cast(PdfBatch, quote(batch)),
                        cast(RunContext, quote(ctx)),
                        plan.model_slug,
                        cast(FeedTicket, quote(ticket)),
                        return_state=True,
                    )
                    state: State[Any] = await call  # an async task's call is awaited, whatever its stub says
            finally:
                ticket.release()  # the task did not get to (it failed to start, or was cancelled first)
            if state.is_cancelled():  # the task caught our cancel to end Cancelled, not Crashed: carry it on
                raise asyncio.CancelledError(state.message)
            return cast(dict[str, int], await state.aresult())

        batches = batch_pdfs(plan.pdfs)
        async with progress.ticking():  # a failure or cancel stops every PDF before the endpoint closes
            await all_or_none([one_batch(batch) for batch in batches], server_death, SERVER_WATCH_S, prefer=_RUN_ENDERS)
        if ctx.rollup.pages_failed and (died := server_death()) is not None:
            raise died  # it died after its last request: the pages it failed say so


async def _record_end(plan: RunPlan, ctx: RunContext, recorder: RunRecorder, progress: RunProgress, end: _RunEnd, resuming: bool) -> None:
    """Every record of the run's end, whatever the end: metadata, metrics, the last event, the artifacts.

    Called once every PDF has stopped; the counts are the PDFs' own outcomes (read
    back from the journals for those that did not end in this session), so the
    run's record agrees with them by construction.
    """
    totals = journal_totals(plan.location, plan.pdfs, end.status.value, ended=ctx.ended, ended_slugs=ctx.ended_slugs)
    ctx.rollup, ctx.error_counts = totals.rollup, totals.error_counts
    progress.write()
    recorder.update(ctx.rollup, documents=totals.record())
    recorder.set_status(end.status, error=end.error)
    refresh_model_metadata(OutputLayout(plan.location.root), plan.job_id, plan.model_slug)
    metrics = write_run_metrics(plan.location, ctx.rollup.wall_seconds, {**recorder.data.get("host", {}), "gpus": gpu_info()})
    progress.alert_on_failures()
    payload = run_event_payload(
        end.status.value,
        ctx.rollup.to_dict(),
        ctx.error_counts,
        end.error_class,
        pages_skipped=ctx.pages_skipped,
        latency_p50_s=metrics["latency_s"]["p50"],
        resumed=resuming,
    )
    emit_run_event(end.status.value, plan, payload)
    await progress.finish(end.status, totals)


def _summary(plan: RunPlan, ctx: RunContext, end: _RunEnd) -> dict[str, Any]:
    """The flow's return value; a failed run raises :class:`RunFailed` instead, so Prefect shows it Failed."""
    logger = get_run_logger()
    if end.status == RunStatus.FAILED:
        logger.error("run-%s of %s failed: %s", plan.run, plan.model_slug, end.error)
        raise RunFailed(
            f"{plan.model_slug} run-{plan.run} failed: {end.error}", error_class=ErrorClass(end.error_class or ErrorClass.UNKNOWN)
        )
    logger.info(
        "run-%s of %s %s: %d done, %d failed, %.2f pages/s",
        plan.run,
        plan.model_slug,
        end.status.value,
        ctx.rollup.pages_done,
        ctx.rollup.pages_failed,
        ctx.rollup.pages_per_s,
    )
    return {
        "job_id": plan.job_id,
        "model_slug": plan.model_slug,
        "run": plan.run,
        "status": end.status.value,
        "error": end.error,
        "rollup": ctx.rollup.to_dict(),
        "run_dir": str(plan.location.run_dir),
    }


@flow(
    name="ocr-model-run",
    flow_run_name="{plan.job_id} · {plan.model_slug} · run-{plan.run}",
    validate_parameters=False,
)
async def model_run_flow(plan: RunPlan) -> dict[str, Any] | State[Any]:
    """Run one model over every planned PDF and record the outcome at every level, however the run ends.

    A cancelled run (``tracr cancel``, SIGTERM or Ctrl-C to ``tracr run``) returns
    a ``Cancelled`` state once its records say ``cancelled``, so Prefect shows the
    same ending rather than ``Crashed``.
    """
    recorder, resuming, previous_wall = _open_recorder(plan)
    ctx = _run_context(plan)
    progress = RunProgress(plan, ctx, recorder, get_run_logger(), previous_wall)
    end = _RunEnd()
    try:
        await _run_pdfs(plan, ctx, recorder, progress, resuming)
        end = _RunEnd(RunStatus.COMPLETED)
    except TracrError as exc:
        end = _RunEnd.failed(exc)
    except asyncio.CancelledError:
        end = _RunEnd(RunStatus.CANCELLED, "cancelled")
    except TerminationSignal:  # a runner's cancel: recorded as one, then Prefect's engine ends the run Cancelled
        end = _RunEnd(RunStatus.CANCELLED, "cancelled")
        raise
    except Exception as exc:  # a bug or an I/O error: recorded, then shown by Prefect as a failure
        end = _RunEnd(error=f"unexpected error: {exc!r}", error_class=type(exc).__name__)
        raise
    finally:
        await _record_end(plan, ctx, recorder, progress, end, resuming)
    if end.status == RunStatus.CANCELLED:
        get_run_logger().info("run-%s of %s cancelled; finished pages are kept", plan.run, plan.model_slug)
        return Cancelled(message=f"{plan.model_slug} run-{plan.run} cancelled; finished pages are kept, --resume continues")
    return _summary(plan, ctx, end)
