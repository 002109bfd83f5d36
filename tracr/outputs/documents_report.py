"""Documents in ``tracr show``: how many of a job's PDFs each run finished, and any one PDF's outcome.

A job over 20,000 one-page PDFs has no use for a row per PDF; it needs the
counts, the PDFs that failed, and a way to look one up by name
(``tracr show JOB --pdf SLUG``). Reads metadata files only, like the rest of
``tracr show``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.identifiers import validate_slug
from tracr.outputs.inputs import iter_job_inputs
from tracr.outputs.journal import latest_page_records, read_page_journal
from tracr.outputs.layout import OutputLayout

__all__ = ["document_count_rows", "failed_document_rows", "document_rows"]

#: Failed documents listed per run in ``tracr show`` (the rest are counted).
FAILED_SHOWN = 5
#: Run statuses after which a PDF without a folder will not get one.
_ENDED = frozenset({"completed", "failed", "cancelled"})


def _runs(layout: OutputLayout, job_id: str) -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (slug, number, read_json(layout.run(job_id, slug, number).run_metadata) or {})
        for slug in layout.model_slugs(job_id)
        for number in layout.run_numbers(job_id, slug)
    ]


def _documents(meta: dict[str, Any]) -> dict[str, Any]:
    """``run_metadata.json``'s ``documents`` (counts by status, the PDFs that did not complete), also from a run that listed every PDF."""
    documents = meta.get("documents")
    if isinstance(documents, dict):
        return documents
    pdfs = meta.get("pdfs") or {}  # a run recorded before ``documents``: every PDF by slug
    by_status = Counter(str(entry.get("status")) for entry in pdfs.values())
    not_completed = [{"pdf_slug": slug, **entry} for slug, entry in pdfs.items() if entry.get("status") != "completed"]
    return {"total": len(pdfs), "by_status": dict(by_status), "not_completed": not_completed, "not_completed_unlisted": 0}


def document_count_rows(layout: OutputLayout, job_id: str) -> list[dict[str, Any]]:
    """Per run: its documents by how they ended (from ``run_metadata.json``'s ``documents``, written when the run ends)."""
    rows = []
    for slug, number, meta in _runs(layout, job_id):
        documents = _documents(meta)
        if not documents["total"]:
            continue
        by_status = Counter(documents.get("by_status") or {})
        rows.append(
            {
                "model": slug,
                "run": number,
                "documents": documents["total"],
                "completed": by_status.pop("completed", 0),
                "failed": by_status.pop("failed", 0),
                "other": " ".join(f"{k}:{v}" for k, v in sorted(by_status.items())) or "-",
            }
        )
    return rows


def failed_document_rows(layout: OutputLayout, job_id: str, shown: int = FAILED_SHOWN) -> list[dict[str, Any]]:
    """The first ``shown`` failed documents of each run, with why, and how many more there are."""
    rows = []
    for slug, number, meta in _runs(layout, job_id):
        documents = _documents(meta)
        failed = [entry for entry in documents.get("not_completed") or [] if entry.get("status") == "failed"]
        for entry in failed[:shown]:
            rows.append({"model": slug, "run": number, "pdf": entry.get("pdf_slug"), "error": str(entry.get("error") or "")[:100]})
        more = int((documents.get("by_status") or {}).get("failed", 0)) - min(shown, len(failed))
        if more > 0:
            rows.append({"model": slug, "run": number, "pdf": f"… {more} more", "error": ""})
    return rows


def _not_started_row(model: str, run: int, planned: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "run": run,
        "status": "not started",
        "done": 0,
        "failed": 0,
        "of": planned.get("pages_selected") or 0,
        "page": "-",
        "error": "this run ended before the PDF started (no pdf_metadata.json in its folder)",
    }


def document_rows(layout: OutputLayout, job_id: str, pdf_slug: str, failed_pages_shown: int = 10) -> list[dict[str, Any]]:
    """One PDF's outcome in every run of the job: status, pages done and failed, its error, its failed pages' errors."""
    validate_slug(pdf_slug, "PDF slug")
    rows = []
    planned: dict[str, Any] | None = None  # the PDF's line in the job's inputs, read once if needed
    for slug, number, meta in _runs(layout, job_id):
        location = layout.run(job_id, slug, number)
        pdf_meta = read_json(location.pdf_metadata(pdf_slug)) or {}
        listed = (e for e in _documents(meta).get("not_completed") or [] if e.get("pdf_slug") == pdf_slug)
        entry = next(listed, None) or {}
        if not pdf_meta and not entry:
            if meta.get("status") not in _ENDED:
                continue
            if planned is None:
                planned = next((row for row in iter_job_inputs(layout, job_id) if row.get("pdf_slug") == pdf_slug), {})
            if planned:  # an input of the job that this run holds nothing of (beyond the 200 its record names)
                rows.append(_not_started_row(slug, number, planned))
            continue
        rollup = pdf_meta.get("rollup") or entry
        status = entry.get("status") or pdf_meta.get("status") or "unknown"
        rows.append(
            {
                "model": slug,
                "run": number,
                "status": status,
                "done": rollup.get("pages_done", 0),
                "failed": rollup.get("pages_failed", 0),
                "of": rollup.get("pages_total", pdf_meta.get("pages_selected", 0)),
                "page": "-",
                "error": str(entry.get("error") or pdf_meta.get("error") or "")[:100],
            }
        )
        failed = [r for r in latest_page_records(read_page_journal(location.page_journal(pdf_slug))) if r.status == "failed"]
        for record in failed[:failed_pages_shown]:
            error = f"[{record.error_class}] {record.error or ''}"[:100]
            rows.append(
                {"model": slug, "run": number, "status": "", "done": "", "failed": "", "of": "", "page": record.page, "error": error}
            )
    return rows
