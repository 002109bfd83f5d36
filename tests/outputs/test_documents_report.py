"""``tracr show``'s documents: counts and failures from a run's record, and any one PDF, also one its record does not name."""

from __future__ import annotations

import json
from pathlib import Path

from tracr.outputs.documents_report import document_count_rows, document_rows, failed_document_rows
from tracr.outputs.inputs import write_job_inputs
from tracr.outputs.layout import OutputLayout


def _run(layout: OutputLayout, job_id: str, record: dict) -> Path:
    location = layout.run(job_id, "model", 1)
    location.run_dir.mkdir(parents=True)
    location.run_metadata.write_text(json.dumps(record))
    return location.run_dir


def test_a_run_recorded_with_documents_and_one_with_every_pdf_read_alike(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path)
    failed = {"pdf_slug": "bad", "status": "failed", "error": "not a PDF", "pages_done": 0, "pages_failed": 0}
    documents = {"total": 9, "by_status": {"completed": 2, "failed": 7}, "not_completed": [failed], "not_completed_unlisted": 6}
    _run(layout, "new", {"status": "completed", "documents": documents})
    _run(layout, "old", {"status": "completed", "pdfs": {"a": {"status": "completed"}, "bad": {"status": "failed", "error": "not a PDF"}}})

    assert document_count_rows(layout, "new") == [{"model": "model", "run": 1, "documents": 9, "completed": 2, "failed": 7, "other": "-"}]
    assert document_count_rows(layout, "old") == [{"model": "model", "run": 1, "documents": 2, "completed": 1, "failed": 1, "other": "-"}]
    shown = failed_document_rows(layout, "new")
    assert [row["pdf"] for row in shown] == ["bad", "… 6 more"] and shown[0]["error"] == "not a PDF"
    assert [row["pdf"] for row in failed_document_rows(layout, "old")] == ["bad"]


def test_a_pdf_the_run_never_started_is_shown_as_such_not_as_unknown(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path)
    documents = {"total": 500, "by_status": {"completed": 1, "cancelled": 499}, "not_completed": [], "not_completed_unlisted": 499}
    run_dir = _run(layout, "big", {"status": "cancelled", "documents": documents})
    write_job_inputs(layout, "big", [{"pdf_slug": "doc-0450", "path": "/in/doc-0450.pdf", "page_count": 2, "pages_selected": 2}])

    rows = document_rows(layout, "big", "doc-0450")
    assert [(r["status"], r["done"], r["of"]) for r in rows] == [("not started", 0, 2)] and "ended before" in rows[0]["error"]
    assert document_rows(layout, "big", "no-such-doc") == []  # not an input of the job: nothing to say
    (run_dir.parent.parent / "model" / "run-1" / "run_metadata.json").write_text(json.dumps({"status": "running", "documents": documents}))
    assert document_rows(layout, "big", "doc-0450") == []  # a run still going may yet start it
