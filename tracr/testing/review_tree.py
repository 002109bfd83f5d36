"""Write a small job's output tree from given page texts, for the reviewer's tests and screenshots.

Unlike :mod:`tracr.testing.output_tree` (synthetic text at benchmark scale), the
caller says exactly what each model wrote on each page, or that the page failed,
and the PDFs are real files, so the reviewer can render page images. Paths,
metadata and journals are written with the same helpers a job uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymupdf

from tracr.outputs.files import write_text_atomic
from tracr.outputs.inputs import write_job_inputs
from tracr.outputs.journal import PageRecord, append_record, pdf_metadata_text
from tracr.outputs.layout import OutputLayout
from tracr.outputs.rollup import Rollup
from tracr.outputs.timestamps import iso_utc
from tracr.run.journal_totals import JournalTotals, PdfOutcome
from tracr.run.recorder import RunRecorder, refresh_job_metadata, refresh_model_metadata
from tracr.run.state import RunStatus

__all__ = ["Failure", "ModelOutputs", "write_review_job"]


@dataclass(frozen=True)
class Failure:
    """A page that failed, with the error a run would record."""

    error: str
    error_class: str = "timeout"


@dataclass(frozen=True)
class ModelOutputs:
    """What one model produced: ``pages[(pdf_slug, page)]`` is Markdown or a :class:`Failure`."""

    slug: str
    pages: dict[tuple[str, int], str | Failure]
    latency_s: float = 1.0
    provider: str = "openai-compatible"


def write_review_job(root: Path, job_id: str, pdfs: dict[str, Path], models: list[ModelOutputs], *, title: str | None = None) -> Path:
    """Lay out ``job_id`` under ``root`` as a finished job; returns the job folder."""
    layout = OutputLayout(Path(root))
    layout.job_dir(job_id).mkdir(parents=True, exist_ok=True)
    inputs = []
    for slug, path in pdfs.items():
        with pymupdf.open(path) as doc:
            inputs.append(
                {"pdf_slug": slug, "path": str(path), "page_count": doc.page_count, "pages_selected": doc.page_count, "error": None}
            )
    summary = write_job_inputs(layout, job_id, inputs)
    refresh_job_metadata(layout, job_id, {"title": title or job_id, "inputs": summary})
    clock = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for model_number, model in enumerate(models):
        model_dict = {"model": f"vendor/{model.slug}", "provider": model.provider, "mode": "api", "slug": model.slug}
        location = layout.allocate_run(job_id, model.slug)
        recorder = RunRecorder(location, {"model": model_dict, "settings": {"max_tokens": 4096}})
        recorder.set_status(RunStatus.RUNNING)
        run_rollup = Rollup()
        documents = JournalTotals()
        pdf_seconds = 0.0
        for pdf_slug, path in pdfs.items():
            pages = sorted(page for (slug, page) in model.pages if slug == pdf_slug)
            if not pages:
                continue
            pdf_dir = location.pdf_dir(pdf_slug)
            pdf_dir.mkdir(parents=True, exist_ok=True)
            rollup = Rollup(pages_total=len(pages))
            lines = []
            started = iso_utc(clock)
            for page in pages:
                outcome = model.pages[(pdf_slug, page)]
                latency = round(model.latency_s * (1 + 0.1 * ((page + model_number) % 5)), 3)
                clock += timedelta(seconds=latency)
                if isinstance(outcome, Failure):
                    record = PageRecord(
                        page=page,
                        status="failed",
                        attempts=5,
                        latency_s=latency,
                        error=outcome.error,
                        error_class=outcome.error_class,
                        finished_at=iso_utc(clock),
                    )
                else:
                    (pdf_dir / f"{page}.md").write_text(outcome, encoding="utf-8")
                    record = PageRecord(
                        page=page,
                        status="done",
                        attempts=1,
                        latency_s=latency,
                        ttft_s=round(latency / 3, 3),
                        input_tokens=900 + 10 * page,
                        output_tokens=max(1, len(outcome) // 4),
                        finish_reason="stop",
                        chars=len(outcome),
                        finished_at=iso_utc(clock),
                    )
                line = append_record(location.page_journal(pdf_slug), record)
                lines.append(line)
                rollup.add_page(record)
            rollup.wall_seconds = sum(json.loads(line)["latency_s"] or 0 for line in lines)
            with pymupdf.open(path) as doc:
                page_count = doc.page_count
            status = "completed"  # as the PDF task writes it: failed pages are counted, not a PDF status
            header = {
                "pdf_slug": pdf_slug,
                "source_path": str(Path(path).resolve()),
                "size_bytes": Path(path).stat().st_size,
                "page_count": page_count,
                "pages_selected": len(pages),
                "status": status,
                "error": None,
                "started_at": started,
                "ended_at": iso_utc(clock),
                "rollup": rollup.to_dict(),
            }
            write_text_atomic(location.pdf_metadata(pdf_slug), pdf_metadata_text(header, lines))
            run_rollup.add(rollup)
            documents.add(PdfOutcome(pdf_slug, status, None, rollup))
            pdf_seconds += rollup.wall_seconds
        run_rollup.wall_seconds = pdf_seconds
        recorder.update(run_rollup, documents=documents.record())
        recorder.set_status(RunStatus.COMPLETED)
        refresh_model_metadata(layout, job_id, model.slug, model_dict)
    refresh_job_metadata(layout, job_id)
    return layout.job_dir(job_id)
