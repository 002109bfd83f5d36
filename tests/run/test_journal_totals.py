"""A run's final totals: folded PDF by PDF, bounded in what they keep, and read back for the PDFs that did not end."""

from __future__ import annotations

import json
from pathlib import Path

from tracr.outputs.journal import PageRecord, append_record
from tracr.outputs.layout import RunLocation
from tracr.outputs.rollup import Rollup
from tracr.run.journal_totals import DOCUMENTS_LISTED, JournalTotals, PdfOutcome, journal_totals
from tracr.run.plan import PdfPlan


def _outcome(number: int, status: str) -> PdfOutcome:
    failed = status != "completed"
    rollup = Rollup(pages_total=2, pages_done=1 if failed else 2, pages_failed=int(failed), input_tokens=10, wall_seconds=3.0)
    return PdfOutcome(f"doc-{number:05d}", status, "bad page" if failed else None, rollup, {"http": 1} if failed else {})


def test_many_pdfs_fold_into_counts_and_a_bounded_list_with_the_failures_first() -> None:
    totals = JournalTotals()
    for number in range(2_000):
        totals.add(_outcome(number, "failed" if number % 7 == 3 else "completed"))
    failed = len([n for n in range(2_000) if n % 7 == 3])
    assert totals.documents == 2_000 and totals.by_status == {"completed": 2_000 - failed, "failed": failed}
    assert (totals.rollup.pages_done, totals.rollup.pages_failed) == (4_000 - failed, failed)
    assert totals.rollup.wall_seconds == 0.0  # the run measures its own span; PDFs' spans overlap
    assert totals.error_counts == {"http": failed}
    assert len(totals.not_completed) == DOCUMENTS_LISTED and len(totals.completed) == DOCUMENTS_LISTED
    shown = totals.listed(DOCUMENTS_LISTED)
    assert [o.status for o in shown] == ["failed"] * DOCUMENTS_LISTED and shown[0].slug == "doc-00003"
    record = totals.record()
    assert record["total"] == 2_000 and record["by_status"] == {"completed": 2_000 - failed, "failed": failed}
    assert len(record["not_completed"]) == DOCUMENTS_LISTED and record["not_completed_unlisted"] == failed - DOCUMENTS_LISTED
    first = record["not_completed"][0]
    assert first | {"pdf_slug": "doc-00003", "status": "failed", "error": "bad page", "wall_seconds": 3.0} == first
    assert len(json.dumps(record)) < 100_000  # the run's record does not grow with its PDFs


def test_a_small_run_lists_every_pdf_the_failed_one_first() -> None:
    totals = JournalTotals()
    for number, status in enumerate(["completed", "completed", "cancelled", "completed"]):
        totals.add(_outcome(number, status))
    assert [o.slug for o in totals.listed()] == ["doc-00002", "doc-00000", "doc-00001", "doc-00003"]
    assert totals.record()["not_completed_unlisted"] == 0


def _pdf(slug: str, pages: list[int]) -> PdfPlan:
    return PdfPlan(path=f"/in/{slug}.pdf", slug=slug, page_count=max(pages, default=0), pages=pages)


def test_pdfs_that_did_not_end_in_this_session_are_read_back(tmp_path: Path) -> None:
    location = RunLocation(tmp_path, "job", "model", 1)
    ended = JournalTotals()
    ended.add(_outcome(0, "completed"))
    # stopped: two planned pages done, one failed, and page 9 (not planned any more) left in its journal
    stopped = location.pdf_dir("stopped")
    stopped.mkdir(parents=True)
    for page, status in ((1, "done"), (2, "failed"), (2, "done"), (3, "failed"), (9, "done")):
        error_class = "http" if status == "failed" else None
        append_record(location.page_journal("stopped"), PageRecord(page=page, status=status, error_class=error_class))  # type: ignore[arg-type]
    location.pdf_metadata("stopped").write_text(json.dumps({"status": "cancelled", "error": None, "rollup": {"wall_seconds": 4.5}}))
    # failed before this session: its record keeps its status and error
    location.pdf_dir("broken").mkdir(parents=True)
    location.pdf_metadata("broken").write_text(json.dumps({"status": "failed", "error": "not a PDF", "rollup": {}}))
    pdfs = [_pdf("doc-00000", [1, 2]), _pdf("stopped", [1, 2, 3]), _pdf("broken", []), _pdf("never", [1])]

    totals = journal_totals(location, pdfs, "cancelled", ended=ended, ended_slugs={"doc-00000"})

    assert totals.by_status == {"completed": 1, "cancelled": 2, "failed": 1}
    listed = {o.slug: o for o in totals.not_completed}
    assert (listed["stopped"].rollup.pages_done, listed["stopped"].rollup.pages_failed) == (2, 1)
    assert listed["stopped"].rollup.wall_seconds == 4.5 and listed["stopped"].error_counts == {"http": 1}
    assert (listed["broken"].status, listed["broken"].error) == ("failed", "not a PDF")
    assert (listed["never"].status, listed["never"].rollup.pages_total) == ("cancelled", 1)
    assert (totals.rollup.pages_total, totals.rollup.pages_done, totals.rollup.pages_failed) == (6, 4, 1)
    assert ended.documents == 1  # the session's own totals are left as they were
