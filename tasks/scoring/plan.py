"""What a scoring will read, checked before anything runs: the job's PDFs, runs, pages, tests and references.

Kept apart from :mod:`tasks.scoring.score` (whose tasks import Prefect) so that
``tracr score`` can name bad ground truth before it connects to Prefect: Prefect
must not be imported before the command has chosen its server (``cli/prefect_server.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracr.config.scoring import ScoreRequest
from tracr.outputs.files import read_json
from tracr.outputs.inputs import iter_job_inputs
from tracr.outputs.journal import latest_entries
from tracr.outputs.layout import OutputLayout
from tracr.scoring.job import (
    JobPdf,
    LocatedTest,
    ModelRuns,
    PageOutput,
    ScoringInputError,
    check_references,
    load_located_tests,
    resolve_tests,
)

__all__ = ["ScoringPlan", "plan_scoring", "scored_runs"]


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
    for item in iter_job_inputs(layout, job_id):
        if item.get("pdf_slug"):
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
