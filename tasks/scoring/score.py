"""Scoring a job: read the output tree and the ground truth, score (``tracr.scoring.job``), write ``scores/``.

Plain functions do the I/O; the ``@task`` wrappers below them are what the
``score-job`` flow composes. Pages are read through the page journal (the last
record of a page wins; a failed page has no markdown). What is written goes to
``<job>/scores/`` (names from :mod:`tracr.outputs.layout`), every file atomically
replaced, so a rescore rebuilds them from the outputs and readers never see half a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tracr.config.scoring import ScoreRequest
from tracr.outputs.files import read_json, write_json_atomic, write_text_atomic
from tracr.outputs.journal import latest_entries
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.scoring.bench_tests import ScoringOptions
from tracr.scoring.job import (
    JobPdf,
    LocatedTest,
    ModelRuns,
    PageOutput,
    ScoringInputError,
    check_references,
    health_rows,
    load_located_tests,
    reference_scores,
    resolve_tests,
    summarise,
    test_rows,
)

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


@dataclass
class ScoringPlan:
    """What a scoring will read: the job's PDFs, each model's scored runs and pages, tests and references."""

    request: ScoreRequest
    pdfs: list[JobPdf]
    models: list[ModelRuns]
    pages: dict[str, set[int]]
    tests: list[tuple[LocatedTest, str]] = field(default_factory=list)
    references: dict[tuple[str, int], str] = field(default_factory=dict)  # (pdf, page) -> reference file path


def _job_pdfs(layout: OutputLayout, job_id: str) -> list[JobPdf]:
    meta = read_json(layout.job_metadata(job_id))
    if meta is None:
        raise ScoringInputError(f"no job {job_id!r} under {layout.root} (no {layout.job_metadata(job_id).name})")
    pdfs = []
    for item in meta.get("inputs") or []:
        if isinstance(item, dict) and item.get("pdf_slug"):
            pdfs.append(JobPdf(str(item["pdf_slug"]), str(item.get("path") or item["pdf_slug"]), item.get("page_count")))
    return pdfs


def scored_runs(layout: OutputLayout, job_id: str, model_slug: str) -> list[int]:
    """The latest run, or, when it is an import with repeats, every run of that import (its repeats)."""
    numbers = layout.run_numbers(job_id, model_slug)
    if not numbers:
        return []
    latest = numbers[-1]
    meta = read_json(layout.run(job_id, model_slug, latest).run_metadata) or {}
    repeats = (meta.get("import") or {}).get("repeat_runs") if isinstance(meta.get("import"), dict) else None
    if isinstance(repeats, list) and all(isinstance(r, int) and r in numbers for r in repeats) and repeats:
        return sorted(repeats)
    return [latest]


def _pages_per_s(layout: OutputLayout, job_id: str, model_slug: str, run: int) -> float | None:
    meta = read_json(layout.run(job_id, model_slug, run).run_metadata) or {}
    rollup = meta.get("rollup") or {}
    value = rollup.get("pages_per_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def plan_scoring(request: ScoreRequest) -> ScoringPlan:
    """Read metadata, journals, tests and the reference tree, and check they fit; no markdown is read yet.

    Raises :class:`ScoringInputError` naming the file and line of bad ground truth.
    """
    layout = OutputLayout(Path(request.outputs))
    pdfs = _job_pdfs(layout, request.job_id)
    slugs = {p.pdf_slug for p in pdfs}
    models: list[ModelRuns] = []
    pages: dict[str, set[int]] = {}
    for model_slug in layout.model_slugs(request.job_id):
        runs = scored_runs(layout, request.job_id, model_slug)
        if not runs:
            continue
        m = ModelRuns(model_slug, runs, pages_per_s=_pages_per_s(layout, request.job_id, model_slug, runs[0]))
        for run in runs:
            location = layout.run(request.job_id, model_slug, run)
            for pdf_slug in sorted(slugs):
                for page, record in latest_entries(location.page_journal(pdf_slug)).items():
                    done = record.get("status") == "done"
                    m.pages[(run, pdf_slug, page)] = PageOutput(
                        model_slug,
                        run,
                        pdf_slug,
                        page,
                        "" if done else None,  # filled by load_markdown
                        finish_reason=record.get("finish_reason"),
                        error_class=None if done else (record.get("error_class") or "failed"),
                        input_tokens=record.get("input_tokens"),
                        output_tokens=record.get("output_tokens"),
                    )
                    pages.setdefault(pdf_slug, set()).add(page)
        models.append(m)
    plan = ScoringPlan(request, pdfs, models, pages)
    if request.tests:
        plan.tests = resolve_tests(load_located_tests(request.tests), pdfs, pages, job_id=request.job_id)
    if request.references:
        plan.references = _reference_files(Path(request.references), slugs)
        check_references(plan.references, models, pages, job_id=request.job_id)  # done pages carry "" until read
    return plan


def _reference_files(root: Path, slugs: set[str]) -> dict[tuple[str, int], str]:
    if not root.is_dir():
        raise ScoringInputError(f"references folder {root} does not exist")
    found: dict[tuple[str, int], str] = {}
    for path in sorted(root.rglob("*.md")):
        relative = path.relative_to(root)
        if len(relative.parts) != 2 or not relative.stem.isdigit() or int(relative.stem) < 1:
            raise ScoringInputError(f"{path}: a reference page must be <pdf_slug>/<page>.md (e.g. report/3.md)")
        pdf_slug = relative.parts[0]
        if pdf_slug not in slugs:
            raise ScoringInputError(
                f"{path}: reference for PDF {pdf_slug!r}, which is not in the job (its PDF slugs: {', '.join(sorted(slugs)[:8])})"
            )
        found[(pdf_slug, int(relative.stem))] = str(path)
    return found


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
