"""The ``score-job`` flow: page health, olmOCR-Bench tests and reference scores of one job.

It only composes the tasks of :mod:`tasks.scoring.score`; results land in
``<outputs>/<job_id>/scores/`` (docs/scoring.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from tasks.scoring.report import report_artifact_task
from tasks.scoring.score import health_task, load_markdown_task, plan_scoring_task, references_task, tests_task, write_scores_task
from tracr.config.scoring import ScoreRequest, score_request

__all__ = ["score_job_flow", "score_after_job"]


@flow(name="score-job", flow_run_name="score {request.job_id}", validate_parameters=True)
async def score_job_flow(request: ScoreRequest) -> dict[str, Any]:
    """Score every model's latest run of a job; returns the summary and the files written."""
    plan = plan_scoring_task(request)
    models = load_markdown_task(plan)
    health = health_task(models)
    tests = tests_task(plan, models) if request.tests else None
    refs = references_task(plan, models) if request.references else None
    written = write_scores_task(plan, health, tests, refs)
    written["report_artifact"] = report_artifact_task(request.outputs, request.job_id, request.n_boot, request.seed)
    return written


async def score_after_job(outputs_root: Path, job_id: str) -> None:
    """``scoring: {score: true}`` in a job config: score when the job ends; a failure is a warning, not a failed job."""
    try:
        await score_job_flow(score_request(outputs_root, job_id))
    except Exception as exc:
        get_run_logger().warning("could not score job %s (`tracr score %s` retries): %s", job_id, job_id, exc)
