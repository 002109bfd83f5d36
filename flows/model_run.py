"""One run of one model over the job's PDFs, as a Prefect (sub)flow.

It obtains an endpoint (the hosted API, or a local server it starts and always
stops), fans out one ``ocr-pdf`` task per PDF with bounded concurrency, keeps a
progress artifact and ``run_metadata.json`` current on a timer, and ends with a
table artifact summarising the run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_progress_artifact, acreate_table_artifact, aupdate_progress_artifact
from prefect.utilities.annotations import quote

from tasks.cancellation import untagged_task_runs
from flows.local_server import ServerDeath, never_dies, serve_local_model, serves_locally
from tasks.local_server import ServerDied, ServerStartError
from tasks.model_targets import block_endpoint
from tasks.ocr_pdf import RunContext, ocr_pdf
from tasks.ocr_request import FatalModelError, OcrClient
from tasks.page_engines import ChatPageEngine, PageEngine, TextLayerEngine
from tasks.render_pool import shared_render_pool
from tasks.run_events import emit_run_event
from tracr.config.job import JobConfig
from tracr.hardware import gpu_info
from tracr.outputs.layout import OutputLayout
from tracr.outputs.journal import Rollup, read_json
from tracr.outputs.metrics import write_run_metrics
from tracr.run.plan import RunPlan
from tracr.outputs.recorder import RunRecorder, host_info, refresh_model_metadata
from tracr.run.retry import ErrorClass, RetryPolicy
from tracr.run.events import failure_threshold, run_event_payload
from tracr.run.state import RunStatus
from tracr.outputs.slugs import slugify

__all__ = ["model_run_flow", "RunFailed"]

PROGRESS_INTERVAL_S = 2.0
#: How often a run checks that its local server still runs.
SERVER_WATCH_S = 0.25
#: Pages rendered ahead of the requests, per render worker, so requests never wait for images.
RENDER_AHEAD_PER_WORKER = 4

T = TypeVar("T")


class RunFailed(RuntimeError):
    """The run ended ``failed``; raised so Prefect shows the flow run as Failed."""


def _api_key(plan: RunPlan) -> str:
    """The key, read from the environment inside the run (never a parameter)."""
    spec = plan.model
    if spec.mode == "local":
        return os.environ.get(spec.api_key_env, "EMPTY") if spec.api_key_env else "EMPTY"
    if not spec.api_key_env:
        return "EMPTY"
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise FatalModelError(f"environment variable {spec.api_key_env} is not set", ErrorClass.AUTH)
    return key


@asynccontextmanager
async def _engine(plan: RunPlan, recorder: RunRecorder) -> AsyncIterator[tuple[PageEngine, ServerDeath]]:
    """The page engine for the plan's model, and how to tell that its local server died.

    A local server lives exactly as long as the engine.
    """
    spec = plan.model
    pool = shared_render_pool()
    if spec.mode == "local" and spec.provider == "pdf-text":
        yield TextLayerEngine(pool, spec.timeout_s), never_dies
        return
    async with AsyncExitStack() as stack:
        base_url = spec.base_url or ""
        death: ServerDeath = never_dies
        block = await block_endpoint(spec) if spec.block else None  # ModelTarget block: read here, inside the run
        if block is not None:
            base_url = block.base_url
        if spec.mode == "local":
            endpoint = await stack.enter_async_context(serve_local_model(plan, plan.location, recorder=recorder))
            base_url, death = endpoint.base_url, endpoint.death
        client = OcrClient(
            base_url=base_url,
            api_key=block.api_key if block is not None else _api_key(plan),
            model=spec.model,
            max_concurrent_requests=spec.max_concurrent_requests,
            timeout_s=spec.timeout_s,
            policy=RetryPolicy(spec.retries, spec.retry_backoff_s, spec.retry_backoff_max_s),
        )
        stack.push_async_callback(client.aclose)  # closed before the server stops
        yield ChatPageEngine(pool, client, plan.render, plan.prompt, plan.max_tokens, plan.temperature), death


async def _unless_server_dies(work: Awaitable[T], death: ServerDeath) -> T:
    """Await ``work``, but stop it and raise :class:`ServerDied` as soon as the local server is gone.

    Without this a dead server fails every remaining page one by one (each after
    its retries), and the run would end ``completed`` with them all failed.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=SERVER_WATCH_S)
            if done:
                return task.result()
            if (died := death()) is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise died
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise


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


def _summary_table(ctx: RunContext, status: str, pdf_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the run's table artifact: one per PDF, then the total."""
    rows = [_summary_row(r["pdf_slug"], r["status"], r["rollup"], r.get("error")) for r in pdf_results]
    rows.append(_summary_row("TOTAL", status, ctx.rollup.to_dict(), None))
    return rows


def _artifact_key(plan: RunPlan, suffix: str) -> str:
    return slugify(f"{plan.job_id}-{plan.model_slug}-run-{plan.run}-{suffix}", max_length=120).replace(".", "-").replace("_", "-")


@flow(
    name="ocr-model-run",
    flow_run_name="{plan.job_id} · {plan.model_slug} · run-{plan.run}",
    validate_parameters=False,
)
async def model_run_flow(plan: RunPlan) -> dict[str, Any]:
    """Run one model over every planned PDF and record the outcome at every level."""
    logger = get_run_logger()
    location = plan.location
    layout = OutputLayout(location.root)
    resuming = plan.resume and location.run_metadata.is_file()
    previous_wall = float(((read_json(location.run_metadata) or {}).get("rollup") or {}).get("wall_seconds") or 0.0) if resuming else 0.0
    recorder = RunRecorder(
        location,
        {
            "model": plan.model.public_dict(),
            "settings": {
                "prompt": plan.prompt,
                "max_tokens": plan.max_tokens,
                "temperature": plan.temperature,
                "render": plan.render.model_dump(),
                "pdf_concurrency": plan.pdf_concurrency,
            },
            "host": host_info(),
            "config_digest": plan.config_digest,
        },
    )
    if resuming:
        resumed_from = recorder.resume()
        logger.info("resuming run-%s of %s (was %s)", plan.run, plan.model_slug, resumed_from.value)
    refresh_model_metadata(layout, plan.job_id, plan.model_slug, plan.model.public_dict())
    pool = shared_render_pool()
    slots = asyncio.Semaphore(plan.model.max_concurrent_requests + RENDER_AHEAD_PER_WORKER * pool.workers)
    ctx = RunContext(engine=None, location=location, slots=slots, rollup=Rollup(pages_total=plan.pages_total), resume=plan.resume)
    # A plan made outside a job (no threshold given) alerts at the config's default share.
    alert_at = plan.failure_alert_pages or failure_threshold(plan.pages_total, JobConfig.model_fields["page_failure_alert_ratio"].default, None)
    alerted = False
    error_class: str | None = None
    pdf_results: list[dict[str, Any]] = []
    status = RunStatus.FAILED
    error: str | None = None
    started = time.perf_counter()
    # Artifact calls go to the Prefect API; none of them waits in front of the first page.
    progress_artifact = asyncio.create_task(
        acreate_progress_artifact(0.0, key=_artifact_key(plan, "progress"), description=f"{plan.model_slug} run-{plan.run}: pages finished / planned")
    )

    async def report_progress() -> None:
        await aupdate_progress_artifact(await progress_artifact, min(100.0, 100.0 * ctx.rollup.pages_finished / max(1, plan.pages_total)))

    def write_progress() -> None:
        ctx.rollup.wall_seconds = previous_wall + time.perf_counter() - started
        recorder.update(ctx.rollup, error_counts=dict(ctx.error_counts))

    def alert_on_failures() -> None:
        nonlocal alerted
        if not alerted and ctx.rollup.pages_failed >= alert_at:
            alerted = True
            emit_run_event("page-failures", plan, run_event_payload("running", ctx.rollup.to_dict(), ctx.error_counts, threshold=alert_at))

    async def ticker() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            try:
                write_progress()
                alert_on_failures()
                await report_progress()
            except Exception as exc:  # progress is best effort; the run's own work goes on
                logger.warning("progress update failed: %s", exc)

    try:
        if not serves_locally(plan.model):  # a local server's lifecycle records waiting_resources/starting itself
            recorder.set_status(RunStatus.STARTING)  # the endpoint: the API client
        async with _engine(plan, recorder) as (engine, server_death):
            ctx.engine = engine
            recorder.set_status(RunStatus.RUNNING)
            emit_run_event("started", plan, run_event_payload("running", ctx.rollup.to_dict(), ctx.error_counts, resumed=resuming))
            logger.info("run-%s of %s: %d PDF(s), %d page(s)", plan.run, plan.model_slug, len(plan.pdfs), plan.pages_total)
            started = time.perf_counter()
            tick = asyncio.create_task(ticker())
            pdf_gate = asyncio.Semaphore(plan.pdf_concurrency)

            async def one_pdf(pdf):  # noqa: ANN001, ANN202
                async with pdf_gate:
                    with untagged_task_runs():
                        return await ocr_pdf(pdf, quote(ctx), plan.model_slug)

            try:
                pdf_results = list(await _unless_server_dies(asyncio.gather(*(one_pdf(pdf) for pdf in plan.pdfs)), server_death))
            finally:
                tick.cancel()
            if ctx.rollup.pages_failed and (died := server_death()) is not None:
                raise died  # it died after its last request: the pages it failed say so
        status = RunStatus.COMPLETED
    except FatalModelError as exc:
        error = f"model rejected the requests: {exc}"
        error_class = exc.error_class.value
    except ServerStartError as exc:
        error = str(exc)
        error_class = "server_start"
    except ServerDied as exc:
        error = str(exc)
        error_class = exc.error_class.value
    except asyncio.CancelledError:
        status = RunStatus.CANCELLED
        error = "cancelled"
        raise
    except Exception as exc:  # a bug or an I/O error: recorded, then shown by Prefect as a failure
        error = f"unexpected error: {exc!r}"
        error_class = type(exc).__name__
        raise
    finally:
        write_progress()
        recorder.update(ctx.rollup, pdfs={r["pdf_slug"]: {"status": r["status"], "error": r.get("error"), **r["rollup"]} for r in pdf_results})
        recorder.set_status(status, error=error)
        refresh_model_metadata(layout, plan.job_id, plan.model_slug)
        metrics = write_run_metrics(location, ctx.rollup.wall_seconds, {**recorder.data.get("host", {}), "gpus": gpu_info()})
        alert_on_failures()
        emit_run_event(
            status.value,
            plan,
            run_event_payload(status.value, ctx.rollup.to_dict(), ctx.error_counts, error_class, pages_skipped=ctx.pages_skipped,
                              latency_p50_s=metrics["latency_s"]["p50"], resumed=resuming),
        )  # fmt: skip
        if status != RunStatus.CANCELLED:
            await asyncio.gather(
                report_progress(),
                acreate_table_artifact(
                    _summary_table(ctx, status.value, pdf_results),
                    key=_artifact_key(plan, "summary"),
                    description=f"{plan.job_id} / {plan.model_slug} / run-{plan.run}: {status.value}",
                ),
            )
        else:
            progress_artifact.cancel()
    summary = {
        "job_id": plan.job_id,
        "model_slug": plan.model_slug,
        "run": plan.run,
        "status": status.value,
        "error": error,
        "rollup": ctx.rollup.to_dict(),
        "run_dir": str(location.run_dir),
    }
    if status == RunStatus.FAILED:
        logger.error("run-%s of %s failed: %s", plan.run, plan.model_slug, error)
        raise RunFailed(f"{plan.model_slug} run-{plan.run} failed: {error}")
    logger.info(
        "run-%s of %s %s: %d done, %d failed, %.2f pages/s",
        plan.run, plan.model_slug, status.value, ctx.rollup.pages_done, ctx.rollup.pages_failed, ctx.rollup.pages_per_s,
    )  # fmt: skip
    return summary
