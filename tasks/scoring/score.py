"""Scoring a job: read the output tree and the ground truth, score (``tracr.scoring.job``), write ``scores/``.

Plain functions do the I/O (what is read, and its check, is :mod:`tasks.scoring.plan`,
which has no Prefect); the ``@task`` wrappers below them are what the ``score-job``
flow composes. Pages are read through the page journal (the last
record of a page wins; a failed page has no markdown). What is written goes to
``<job>/scores/`` (names from :mod:`tracr.outputs.layout`), every file atomically
replaced, so a rescore rebuilds them from the outputs and readers never see half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.scoring.plan import ScoringPlan, plan_scoring, scored_runs
from tracr.config.scoring import ScoreRequest
from tracr.outputs.files import write_json_atomic, write_text_atomic
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.scoring.bench_tests import ScoringOptions
from tracr.scoring.job import ModelRuns, PageOutput, health_rows, reference_scores, summarise, test_rows

__all__ = [
    "ScoringPlan",
    "plan_scoring",
    "load_markdown",
    "scored_runs",
    "write_scores",
    "score_job_now",
    "plan_scoring_task",
    "load_markdown_task",
    "health_task",
    "tests_task",
    "references_task",
    "write_scores_task",
]


def load_markdown(plan: ScoringPlan) -> list[ModelRuns]:
    """Each done page's markdown from the run folder (a missing file counts as a failed page)."""
    layout = OutputLayout(Path(plan.request.outputs))
    for m in plan.models:
        for key, out in list(m.pages.items()):
            if out.markdown is None:
                continue
            path = layout.run(plan.request.job_id, m.model_slug, out.run).page_markdown(out.pdf_slug, out.page)
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                m.pages[key] = PageOutput(out.model_slug, out.run, out.pdf_slug, out.page, None, out.finish_reason, "missing_markdown")
                continue
            m.pages[key] = PageOutput(
                out.model_slug, out.run, out.pdf_slug, out.page, text, out.finish_reason, None, out.input_tokens, out.output_tokens
            )
    return plan.models


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)


def write_scores(
    outputs: str, job_id: str, health: list[dict[str, Any]], tests: list[dict[str, Any]] | None, summary: dict[str, Any]
) -> dict[str, str]:
    """Replace ``scores/health.jsonl``, ``scores/tests.jsonl`` (when tests were given) and ``scores/summary.json``."""
    layout = OutputLayout(Path(outputs))
    layout.scores_dir(job_id).mkdir(parents=True, exist_ok=True)
    write_text_atomic(layout.scores_health(job_id), _jsonl(health), durable=True)
    written = {"health": str(layout.scores_health(job_id))}
    if tests is not None:
        write_text_atomic(layout.scores_tests(job_id), _jsonl(tests), durable=True)
        written["tests"] = str(layout.scores_tests(job_id))
    elif layout.scores_tests(job_id).exists():
        layout.scores_tests(job_id).unlink()  # stale outcomes of an earlier scoring with tests
    write_json_atomic(layout.scores_summary(job_id), summary)
    written["summary"] = str(layout.scores_summary(job_id))
    return written


def _options(request: ScoreRequest) -> dict[str, Any]:
    return {
        "tests": request.tests,
        "references": request.references,
        "strict_present": request.strict_present,
        "scored_at": utc_now(),
        "n_boot": request.n_boot,
        "seed": request.seed,
    }


def _summary(plan: ScoringPlan, rolled: Any, scores: Any, refs: Any) -> dict[str, Any]:
    request = plan.request
    prices = {slug: price.model_dump() for slug, price in request.prices.items()}
    return summarise(
        request.job_id,
        plan.models,
        rolled,
        scores,
        refs,
        prices=prices,
        options=_options(request),
        n_boot=request.n_boot,
        seed=request.seed,
    )


def score_job_now(request: ScoreRequest) -> dict[str, Any]:
    """Everything in one process without Prefect (benchmarks, and the flow's steps in order)."""
    plan = plan_scoring(request)
    models = load_markdown(plan)
    health, rolled = health_rows(models)
    tests, scores = test_rows(plan.tests, models, ScoringOptions(strict_present=request.strict_present)) if request.tests else (None, None)
    refs = reference_scores(_reference_texts(plan), models) if request.references else None
    summary = _summary(plan, rolled, scores, refs)
    write_scores(request.outputs, request.job_id, health, tests, summary)
    return summary


def _reference_texts(plan: ScoringPlan) -> dict[tuple[str, int], str]:
    return {key: Path(path).read_text(encoding="utf-8", errors="replace") for key, path in plan.references.items()}


# --- Prefect tasks: thin wrappers the score-job flow composes --------------------------------------------


@task(name="plan-scoring", task_run_name="plan scoring of {request.job_id}", cache_policy=NO_CACHE)
def plan_scoring_task(request: ScoreRequest) -> ScoringPlan:
    plan = plan_scoring(request)
    get_run_logger().info(
        "job %s: %d model(s), %d PDF(s), %d test(s), %d reference page(s)",
        request.job_id,
        len(plan.models),
        len(plan.pdfs),
        len(plan.tests),
        len(plan.references),
    )
    return plan


@task(name="load-markdown", cache_policy=NO_CACHE)
def load_markdown_task(plan: ScoringPlan) -> list[ModelRuns]:
    return load_markdown(plan)


@task(name="page-health", cache_policy=NO_CACHE)
def health_task(models: list[ModelRuns]) -> tuple[list[dict[str, Any]], Any]:
    rows, rolled = health_rows(models)
    get_run_logger().info("%d page(s) with health issues", len(rows))
    return rows, rolled


@task(name="bench-tests", cache_policy=NO_CACHE)
def tests_task(plan: ScoringPlan, models: list[ModelRuns]) -> tuple[list[dict[str, Any]], Any]:
    rows, scores = test_rows(plan.tests, models, ScoringOptions(strict_present=plan.request.strict_present))
    get_run_logger().info("%d test outcome(s), %d passed", len(rows), sum(1 for r in rows if r["passed"]))
    return rows, scores


@task(name="reference-scores", cache_policy=NO_CACHE)
def references_task(plan: ScoringPlan, models: list[ModelRuns]) -> dict[str, Any]:
    return reference_scores(_reference_texts(plan), models)


@task(name="write-scores", cache_policy=NO_CACHE)
def write_scores_task(plan: ScoringPlan, health: tuple[list[dict[str, Any]], Any], tests: Any, refs: Any) -> dict[str, Any]:
    rows, rolled = health
    test_outcomes, scores = tests if tests is not None else (None, None)
    summary = _summary(plan, rolled, scores, refs)
    written = write_scores(plan.request.outputs, plan.request.job_id, rows, test_outcomes, summary)
    get_run_logger().info("scores written to %s", Path(written["summary"]).parent)
    return {"summary": summary, "written": written}
