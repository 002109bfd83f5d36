"""Everything a report needs about one job, read from its output tree (no Prefect, no index).

Each model's latest run is read (as ``tracr score`` scores it): per page its status,
latency and tokens from the page journal; votes (human and judge) from ``elo/``;
test outcomes and health issues from ``scores/``; collections from the config the job
recorded, the PDFs' paths and the reviewer's tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracr.config.collections import CollectionSpec, PageCollections, assign_collections
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import read_json
from tracr.outputs.identifiers import validate_job_id
from tracr.outputs.inputs import iter_job_inputs
from tracr.outputs.journal import latest_entries
from tracr.outputs.layout import OutputLayout
from tracr.review.judged import is_judge
from tracr.review.tags import read_tags, tags_in_effect
from tracr.review.votes import Vote, read_votes

__all__ = ["ReportInputError", "ModelInfo", "PageStat", "JobData", "load_job_data", "load_collections"]


class ReportInputError(TracrError):
    """A job that cannot be reported on (not there, or nothing ran)."""

    default_class = ErrorClass.INPUT


@dataclass(frozen=True)
class ModelInfo:
    """One model of the job and how it was asked."""

    slug: str
    model: str
    provider: str
    mode: str
    run: int
    prompt: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class PageStat:
    """One page of one model's latest run, from its journal."""

    status: str
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error_class: str | None = None
    finish_reason: str | None = None


@dataclass
class JobData:
    job_id: str
    title: str
    config: dict[str, Any]
    models: list[ModelInfo]
    pdfs: dict[str, str]
    pages: dict[tuple[str, str, int], PageStat]  # (model, pdf, page)
    collections: PageCollections
    human_votes: list[Vote] = field(default_factory=list)
    judge_votes: list[Vote] = field(default_factory=list)
    test_rows: list[dict[str, Any]] = field(default_factory=list)
    health_rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    def page_keys(self) -> list[tuple[str, int]]:
        """Every (PDF, page) some model attempted, sorted."""
        return sorted({(pdf, page) for (_, pdf, page) in self.pages})

    def prices(self) -> dict[str, dict[str, Any]]:
        return dict(((self.config.get("scoring") or {}).get("prices")) or {})


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for line in raw.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _model_info(layout: OutputLayout, job_id: str, slug: str, run: int, config: dict[str, Any]) -> ModelInfo:
    meta = read_json(layout.model_metadata(job_id, slug)) or {}
    run_meta = read_json(layout.run(job_id, slug, run).run_metadata) or {}
    model = meta.get("model") if isinstance(meta.get("model"), dict) else run_meta.get("model")
    model = model if isinstance(model, dict) else {}
    spec = next((m for m in config.get("models") or [] if isinstance(m, dict) and m.get("slug") == slug), {})
    raw_settings = run_meta.get("settings")
    settings: dict[str, Any] = raw_settings if isinstance(raw_settings, dict) else {}
    prompt = spec.get("prompt") or config.get("prompt")
    max_tokens = spec.get("max_tokens") or settings.get("max_tokens") or config.get("max_tokens")
    return ModelInfo(
        slug=slug,
        model=str(model.get("model") or spec.get("model") or slug),
        provider=str(model.get("provider") or spec.get("provider") or "-"),
        mode=str(model.get("mode") or spec.get("mode") or "-"),
        run=run,
        prompt=str(prompt) if prompt else None,
        max_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
    )


def _input_paths(layout: OutputLayout, job_id: str) -> dict[str, str]:
    """PDF slug -> source path of each input PDF (its slug when no path was recorded)."""
    return {
        str(item["pdf_slug"]): str(item.get("path") or item["pdf_slug"]) for item in iter_job_inputs(layout, job_id) if item.get("pdf_slug")
    }


def load_job_data(outputs_root: Path, job_id: str) -> JobData:
    """Read one job for a report; a job that is not there is a one-line :class:`ReportInputError`."""
    try:
        job_id = validate_job_id(job_id)
    except ValueError as exc:
        raise ReportInputError(str(exc)) from None
    layout = OutputLayout(Path(outputs_root))
    meta = read_json(layout.job_metadata(job_id))
    if meta is None:
        raise ReportInputError(f"no job {job_id!r} under {layout.root} (no {layout.job_metadata(job_id).name})")
    raw_config = meta.get("config")
    config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
    pdfs = _input_paths(layout, job_id)
    models: list[ModelInfo] = []
    pages: dict[tuple[str, str, int], PageStat] = {}
    for slug in layout.model_slugs(job_id):
        numbers = layout.run_numbers(job_id, slug)
        if not numbers:
            continue
        run = numbers[-1]
        models.append(_model_info(layout, job_id, slug, run, config))
        location = layout.run(job_id, slug, run)
        for pdf_slug in pdfs:
            for page, record in latest_entries(location.page_journal(pdf_slug)).items():
                pages[(slug, pdf_slug, page)] = PageStat(
                    status=str(record.get("status") or "unknown"),
                    latency_s=record.get("latency_s"),
                    input_tokens=record.get("input_tokens"),
                    output_tokens=record.get("output_tokens"),
                    error_class=record.get("error_class"),
                    finish_reason=record.get("finish_reason"),
                )
    if not models:
        raise ReportInputError(f"job {job_id!r} has no model runs to report on")
    specs = [CollectionSpec.model_validate(c) for c in config.get("collections") or [] if isinstance(c, dict)]
    pages_of: dict[str, set[int]] = {}
    for _, pdf, page in pages:
        pages_of.setdefault(pdf, set()).add(page)
    collections = assign_collections(pdfs, specs, tags_in_effect(read_tags(layout.root, job_id)), pages_of)
    votes = read_votes(layout.root, job_id)
    return JobData(
        job_id=job_id,
        title=str(meta.get("title") or config.get("title") or job_id),
        config=config,
        models=models,
        pdfs=pdfs,
        pages=pages,
        collections=collections,
        human_votes=[v for v in votes if not is_judge(v.voter)],
        judge_votes=[v for v in votes if is_judge(v.voter)],
        test_rows=_jsonl(layout.scores_tests(job_id)),
        health_rows=_jsonl(layout.scores_health(job_id)),
        summary=read_json(layout.scores_summary(job_id)),
    )


def load_collections(outputs_root: Path, job_id: str) -> PageCollections:
    """The job's collections from its metadata and the reviewer's tags only (no journals: cheap on a large job).

    A whole-PDF tag joins the PDF's collections; page tags stay per page.
    """
    layout = OutputLayout(Path(outputs_root))
    meta = read_json(layout.job_metadata(validate_job_id(job_id))) or {}
    raw_config = meta.get("config")
    config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
    pdfs = _input_paths(layout, job_id)
    specs = [CollectionSpec.model_validate(c) for c in config.get("collections") or [] if isinstance(c, dict)]
    return assign_collections(pdfs, specs, tags_in_effect(read_tags(layout.root, job_id)))
