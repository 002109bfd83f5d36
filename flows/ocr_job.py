"""The job flow: validate a config, plan the inputs, run every model at once.

Fan-out is job → model run (subflow) → PDF (task) → pages (asyncio inside the PDF
task). Parameters are a config path, an optional job id and an outputs root: no
key value ever becomes a Prefect parameter.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Cancelled, State

from flows.local_server import local_servers
from flows.model_run import model_run_flow
from tasks.documents.inspection import inspect_inputs
from tasks.documents.render_pool import RenderPool, hold_shared_render_pool, release_shared_render_pool
from tasks.index_outputs import index_outputs_state
from tasks.ocr.model_targets import resolve_model_blocks
from tasks.outputs.storage_check import check_shared_storage
from tasks.run.cancellation import job_tag, run_until_cancelled, tag_flow_run
from tasks.run.claim_liveness import remote_claim_judge
from tasks.run.crash_detection import crash_detection_enabled, ensure_crash_detection
from tasks.run.termination import stop_reason
from tracr.config.job import JobConfig, ModelSpec
from tracr.config.job_request import JobRequest
from tracr.config.models import KeyedModel
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import read_json
from tracr.outputs.inputs import write_job_inputs
from tracr.outputs.layout import OutputLayout
from tracr.outputs.layout import outputs_root as resolve_outputs_root
from tracr.outputs.metrics import write_job_metrics
from tracr.outputs.timestamps import utc_now
from tracr.run.claims import config_digest, release_claim, try_claim, update_claim
from tracr.run.events import failure_threshold
from tracr.run.plan import PdfPlan, RunPlan
from tracr.run.recorder import refresh_job_metadata, refresh_model_metadata
from tracr.run.resume import resumable_run
from tracr.serving.inherited_env import set_for_this_process

__all__ = ["ocr_job_flow", "job_run_name", "JobFailed"]


class JobFailed(TracrError, RuntimeError):
    """At least one run failed; raised after every output is written."""

    default_class = ErrorClass.UNKNOWN  # each run's record names its own class


def job_run_name() -> str:
    """Flow-run name: the job id (from the override or the config)."""
    request = flow_run.parameters.get("request")
    try:
        request = request if isinstance(request, JobRequest) else JobRequest.model_validate(request)
        return request.raw_job_id() or "ocr-job"
    except Exception:
        return "ocr-job"


def _env_name_for(spec: ModelSpec) -> str:
    return "TRACR_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", spec.slug.upper())


def move_literal_keys_to_env(config: JobConfig) -> JobConfig:
    """Models whose key is written in the config get it through a process env var.

    Runs then receive only a variable name, as for keys that came from the
    environment in the first place; local servers inherit nothing they do not need.
    """
    models = []
    for spec in config.models:
        if isinstance(spec, KeyedModel) and spec.api_key is not None:
            name = _env_name_for(spec)
            set_for_this_process(name, spec.api_key.get_secret_value())  # no helper process inherits it
            spec = spec.model_copy(update={"api_key": None, "api_key_env": name})
        models.append(spec)
    return config.model_copy(update={"models": models})


def _run_plans(
    config: JobConfig, pdfs: list[PdfPlan], outputs_root: Path, resume: bool = False, digest: str | None = None
) -> list[RunPlan]:
    """One plan per model: a new run folder, or with ``resume`` the latest unfinished one.

    A model whose latest run completed has nothing to resume and gets no plan.
    """
    layout = OutputLayout(outputs_root)
    logger = get_run_logger()
    plans = []
    pages_total = sum(len(p.pages) for p in pdfs)
    alert_at = failure_threshold(pages_total, config.page_failure_alert_ratio, config.page_failure_alert_count)
    for spec in config.models:
        number, status = resumable_run(layout, config.job_id, spec.slug) if resume else (None, None)
        if resume and number is None and status is not None:
            logger.info("%s: latest run completed; nothing to resume", spec.slug)
            continue
        location = layout.run(config.job_id, spec.slug, number) if number else layout.allocate_run(config.job_id, spec.slug)
        recorded = (read_json(location.run_metadata) or {}).get("config_digest") if number else None
        if recorded and recorded != digest:
            logger.warning(
                "%s run-%s was started from a different config (digest %s…, now %s…); its finished pages are kept as they are",
                spec.slug,
                number,
                recorded[:12],
                (digest or "")[:12],
            )
        plans.append(
            RunPlan(
                job_id=config.job_id,
                outputs_root=str(outputs_root),
                run=location.run,
                model=spec,
                pdfs=pdfs,
                prompt=config.prompt_for(spec),
                max_tokens=config.max_tokens_for(spec),
                temperature=config.temperature_for(spec),
                render=config.render_for(spec),
                adapter=config.adapter_for(spec),
                pdf_concurrency=config.pdf_concurrency,
                resume=number is not None,
                config_digest=digest,
                failure_alert_pages=alert_at,
            )
        )
    return plans


def _job_markdown(job_id: str, outputs_root: Path, runs: list[dict[str, Any]]) -> str:
    lines = [
        f"# {job_id}",
        "",
        f"Outputs: `{outputs_root / job_id}`",
        "",
        "| model | run | status | done | failed | pages/s | error |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        rollup = run.get("rollup") or {}
        lines.append(
            f"| {run['model_slug']} | {run['run']} | {run['status']} | {rollup.get('pages_done', 0)} | "
            f"{rollup.get('pages_failed', 0)} | {rollup.get('pages_per_s', 0)} | {(run.get('error') or '')[:120]} |"
        )
    return "\n".join(lines)


async def _inspect(job: JobConfig, pdf_paths: list[str], pool: RenderPool) -> list[PdfPlan]:
    """Inspect the inputs and log what will be skipped."""
    logger = get_run_logger()
    pdfs = await inspect_inputs(pdf_paths, job.page_selection.describe(), pool)
    for pdf in pdfs:
        if pdf.error:
            logger.warning("PDF %s will be skipped: %s", pdf.slug, pdf.error)
    unselected = [p.slug for p in pdfs if not p.error and not p.pages]
    if unselected:
        logger.warning(
            "%d PDF(s) have no page in selection %r: %s", len(unselected), job.page_selection.describe(), ", ".join(unselected[:10])
        )
    return pdfs


def _record_job_start(layout: OutputLayout, job: JobConfig, config_path: str, pdfs: list[PdfPlan], plans: list[RunPlan]) -> None:
    """Write the input list to ``inputs.jsonl`` and the job's config and the list's summary to ``job_metadata.json``."""
    inputs = write_job_inputs(
        layout,
        job.job_id,
        ({"pdf_slug": p.slug, "path": p.path, "page_count": p.page_count, "pages_selected": len(p.pages), "error": p.error} for p in pdfs),
    )
    refresh_job_metadata(
        layout,
        job.job_id,
        {
            "title": job.title,
            "config": job.public_dict(),
            "config_source": config_path,
            "last_started_at": utc_now(),
            "inputs": inputs,  # the summary; it replaces the list an older tree kept here
        },
    )
    for plan in plans:
        refresh_model_metadata(layout, plan.job_id, plan.model_slug, plan.model.public_dict())


def _public_claim(claim: dict[str, Any]) -> dict[str, Any]:
    return {k: claim.get(k) for k in ("job_id", "digest", "pid", "host", "claimed_at", "flow_run_id", "runs")}


def _run_outcome(plan: RunPlan) -> dict[str, Any]:
    run_meta = read_json(plan.location.run_metadata) or {}
    return {
        "model_slug": plan.model_slug,
        "model": plan.model.model,
        "run": plan.run,
        "status": run_meta.get("status", "failed"),
        "error": run_meta.get("error"),
        "rollup": run_meta.get("rollup"),
        "run_dir": str(plan.location.run_dir),
    }


def _first_failure(runs: list[dict[str, Any]], failed: list[State]) -> str:
    """Why the first failed run failed, so the job's one last line names the cause (a full disk, a dead server)."""
    for run in runs:
        if run["status"] == "failed" and run["error"]:
            return f"{run['model_slug']} run-{run['run']}: {run['error']}"
    return str(failed[0].message)  # its run could not record why (the disk that failed it, say)


async def _refresh_index(outputs_root: Path) -> None:
    """Refresh ``index.duckdb``; the index is derived, so failing to refresh it is a warning, not a failed job."""
    try:
        state = await index_outputs_state(str(outputs_root))
    except Exception as exc:
        get_run_logger().warning("could not refresh the outputs index (tracr index rebuilds it): %s", exc)
        return
    if not state.is_completed():
        get_run_logger().warning("%s (tracr index rebuilds it)", state.message)


async def _ensure_crash_detection() -> None:
    """Make sure a dead job's flow runs will be marked Crashed; a server that refuses only costs a warning."""
    if not crash_detection_enabled():
        return
    try:
        await ensure_crash_detection()
    except Exception as exc:  # automations need a server with the events services; ephemeral ones may lack them
        get_run_logger().warning("could not set up crash detection on the Prefect server: %s", exc)


@flow(name="ocr-job", flow_run_name=job_run_name, validate_parameters=True)
async def ocr_job_flow(request: JobRequest) -> dict[str, Any] | State[Any]:
    """Run a job config end to end; returns where outputs are and how each run ended."""
    logger = get_run_logger()
    loaded = request.load()
    config, pdf_paths = loaded.config, loaded.pdfs
    job = move_literal_keys_to_env(config)
    job = await resolve_model_blocks(job)  # every ModelTarget block named exists, before anything starts
    outputs_root = resolve_outputs_root(request.outputs)
    layout = OutputLayout(outputs_root)
    await check_shared_storage(str(outputs_root))  # one POSIX filesystem, the same on every host (tasks/outputs/storage_check.py)
    digest = config_digest(config)
    await _ensure_crash_detection()
    # Another host's claim is judged by its flow run's state on the server, this host's by its pid; a stale
    # one is taken over, also under --force (so it cannot refuse later submissions), a live one is left alone.
    acquired, holder = try_claim(
        outputs_root,
        digest,
        {"job_id": job.job_id, "flow_run_id": str(flow_run.id or "")},
        remote_live=await remote_claim_judge(outputs_root, digest),
    )
    claim = holder if acquired else None
    if not acquired and not request.force:
        logger.warning(
            "job %s with this config is already running (pid %s on %s, flow run %s); not starting another",
            job.job_id,
            holder.get("pid"),
            holder.get("host"),
            holder.get("flow_run_id"),
        )
        return {"job_id": job.job_id, "job_dir": str(layout.job_dir(job.job_id)), "runs": [], "duplicate_of": _public_claim(holder)}
    await tag_flow_run(job.job_id)
    layout.job_dir(job.job_id).mkdir(parents=True, exist_ok=True)

    pool = hold_shared_render_pool()
    warm_pool = asyncio.create_task(pool.warm())  # workers start while the job is planned
    plans: list[RunPlan] = []
    cancelled = False
    servers = local_servers()  # the job's own: runs with the same serve settings share one server
    try:
        pdfs = await _inspect(job, pdf_paths, pool)
        plans = _run_plans(job, pdfs, outputs_root, resume=request.resume, digest=digest)
        if claim is not None:
            update_claim(outputs_root, claim, runs=[{"model_slug": p.model_slug, "run": p.run} for p in plans])
        _record_job_start(layout, job, request.source, pdfs, plans)
        logger.info("job %s: %d PDF(s), %d model(s), outputs in %s", job.job_id, len(pdfs), len(plans), layout.job_dir(job.job_id))
        servers.expect(plans)
        with tags(job_tag(job.job_id)), servers.bound():  # the runs find their servers through the binding
            states, cancelled = await run_until_cancelled(model_run_flow(plan, return_state=True) for plan in plans)
    finally:
        await asyncio.shield(servers.close())
        await asyncio.gather(warm_pool, return_exceptions=True)
        release_shared_render_pool()  # the last job of this process shuts it down
        refresh_job_metadata(layout, job.job_id, {"config_digest": digest})
        write_job_metrics(layout, job.job_id)
        if claim is not None:
            release_claim(outputs_root, claim)
    if cancelled:
        why = f" ({reason} to the process)" if (reason := stop_reason()) else ""
        # info, not a warning: `tracr run` says it in its own one line, and the flow run's state says Cancelled
        logger.info("job %s cancelled%s; finished pages are kept, `tracr run --resume` continues", job.job_id, why)
        return Cancelled(message=f"job {job.job_id} cancelled{why}; resume with --resume")
    runs = [_run_outcome(plan) for plan in plans]
    if job.scoring is not None and job.scoring.score:
        from flows.score_job import score_after_job  # scores/ is written before the index refresh below reads it

        await score_after_job(outputs_root, job.job_id)
    ended = await asyncio.gather(  # two independent round trips: neither waits for the other
        acreate_markdown_artifact(
            _job_markdown(job.job_id, outputs_root, runs),
            key=re.sub(r"[^a-z0-9-]", "-", f"{job.job_id.lower()}-summary"),
            description=f"job {job.job_id}",
        ),
        _refresh_index(outputs_root),
        return_exceptions=True,  # both finish before either's error is raised
    )
    for outcome in ended:
        if isinstance(outcome, BaseException):
            raise outcome
    failed = [s for s in states if s.is_failed() or s.is_crashed()]
    if failed:
        first = _first_failure(runs, failed)
        raise JobFailed(f"{len(failed)} of {len(states)} runs failed (first: {first}); see {layout.job_dir(job.job_id)}")
    return {
        "job_id": job.job_id,
        "job_dir": str(layout.job_dir(job.job_id)),
        "runs": runs,
        "broken_pdfs": [p.slug for p in pdfs if p.error],
    }
