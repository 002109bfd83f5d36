"""A run's final counts, read back from its page journals once every page has stopped.

The live counters of a run are kept in memory while pages finish; its final
``run_metadata.json`` is built from the journals instead, so the two can never
disagree, whatever ended the run (a failure, a cancel, a PDF that never started).
Only the planned pages count, each by its last journal line, as resume reads them.
A PDF that ended in this session hands its summary back instead: it was built
from the very records its journal got, and reading 20,000 journals back would
make the end of a run over many small PDFs take longer than their pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.journal import PageRecord, latest_entries
from tracr.outputs.layout import RunLocation
from tracr.outputs.rollup import Rollup
from tracr.run.plan import PdfPlan

__all__ = ["JournalTotals", "journal_totals"]

#: PDF statuses that say the PDF's work ended (a ``running`` left behind does not).
_ENDED = frozenset({"completed", "failed", "cancelled"})


@dataclass
class JournalTotals:
    """What the journals of one run say: the run's rollup, each PDF's entry, failures by class."""

    rollup: Rollup
    pdfs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_counts: dict[str, int] = field(default_factory=dict)


def _pdf_rollup(location: RunLocation, pdf: PdfPlan) -> tuple[Rollup, list[PageRecord]]:
    wanted = set(pdf.pages)
    entries = latest_entries(location.page_journal(pdf.slug))
    records = [PageRecord.from_dict(entries[page]) for page in sorted(entries) if page in wanted]
    rollup = Rollup(pages_total=len(pdf.pages))
    for record in records:
        rollup.add_page(record)
    return rollup, records


def _from_summary(totals: JournalTotals, summary: dict[str, Any]) -> None:
    """A PDF that ended in this session, by the summary it returned (its rollup covers exactly its journal's planned pages)."""
    rollup = Rollup.from_dict(summary["rollup"])
    totals.rollup.add(replace(rollup, wall_seconds=0.0))  # as a journal-read PDF adds: the run measures its own wall time
    for error_class, count in (summary.get("error_counts") or {}).items():
        totals.error_counts[error_class] = totals.error_counts.get(error_class, 0) + count
    totals.pdfs[summary["pdf_slug"]] = {"status": summary["status"], "error": summary["error"], **rollup.to_dict()}


def journal_totals(
    location: RunLocation, pdfs: list[PdfPlan], unended_status: str, ended: dict[str, dict[str, Any]] | None = None
) -> JournalTotals:
    """The run's totals from its journals; a PDF whose own record did not end is given ``unended_status``.

    Each PDF keeps the status and error its ``pdf_metadata.json`` recorded; one
    that never started (or was stopped before it could say so) gets the run's ending.
    ``ended`` holds the summaries of PDFs that ended in this session, by slug: those are not read back.
    """
    total = Rollup()
    totals = JournalTotals(rollup=total)
    ended = ended or {}
    for pdf in pdfs:
        if (summary := ended.get(pdf.slug)) is not None:
            _from_summary(totals, summary)
            continue
        rollup, records = _pdf_rollup(location, pdf)
        total.add(rollup)
        for record in records:
            if record.status == "failed" and record.error_class:
                totals.error_counts[record.error_class] = totals.error_counts.get(record.error_class, 0) + 1
        meta = read_json(location.pdf_metadata(pdf.slug)) or {}
        status = meta.get("status") if meta.get("status") in _ENDED else unended_status
        error = meta.get("error") if status == meta.get("status") else None
        pdf_rollup = rollup.to_dict()
        pdf_rollup["wall_seconds"] = float((meta.get("rollup") or {}).get("wall_seconds") or 0.0)
        pdf_rollup["pages_per_s"] = Rollup.from_dict(pdf_rollup).pages_per_s
        totals.pdfs[pdf.slug] = {"status": status, "error": error, **pdf_rollup}
    return totals
