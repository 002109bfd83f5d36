"""A run's final counts, folded PDF by PDF into totals whose size does not grow with the run.

The live counters of a run are kept in memory while pages finish; its final
``run_metadata.json`` is built from the PDFs' own outcomes instead, so the two can
never disagree, whatever ended the run (a failure, a cancel, a PDF that never started).
A PDF that ended in this session folds in the outcome it returned, built from the
very records its journal got; any other planned PDF is read back from its journal
(only the planned pages count, each by its last line, as resume reads them).

What is kept per PDF is bounded: the run's record counts documents by how they
ended and names the first :data:`DOCUMENTS_LISTED` that did not complete; each
PDF's own outcome stays in its ``pdf_metadata.json``. A run over 20,000 one-page
PDFs therefore ends in the same memory, and writes the same size of record, as
one over 200.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.journal import PageRecord, latest_entries
from tracr.outputs.layout import RunLocation
from tracr.outputs.rollup import Rollup
from tracr.run.plan import PdfPlan

__all__ = ["DOCUMENTS_LISTED", "PdfOutcome", "JournalTotals", "journal_totals"]

#: PDFs named in a run's record and summary table (those that did not complete first); the rest are counted.
DOCUMENTS_LISTED = 200
#: PDF statuses that say the PDF's work ended (a ``running`` left behind does not).
_ENDED = frozenset({"completed", "failed", "cancelled"})


@dataclass(slots=True)
class PdfOutcome:
    """How one PDF ended: its status and error, its rollup (with its own wall time), its failed pages by class."""

    slug: str
    status: str
    error: str | None
    rollup: Rollup
    error_counts: dict[str, int] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        """The PDF as the run's record and ``tracr show`` list it."""
        return {"pdf_slug": self.slug, "status": self.status, "error": self.error, **self.rollup.to_dict()}


@dataclass
class JournalTotals:
    """What one run's PDFs add up to: the rollup, failures by class, documents by status, a bounded list of them."""

    rollup: Rollup = field(default_factory=Rollup)
    error_counts: dict[str, int] = field(default_factory=dict)
    by_status: Counter[str] = field(default_factory=Counter)
    #: The first PDFs that did not complete, then the first that did, each list at most ``DOCUMENTS_LISTED`` long.
    not_completed: list[PdfOutcome] = field(default_factory=list)
    completed: list[PdfOutcome] = field(default_factory=list)

    def add(self, outcome: PdfOutcome) -> None:
        """Fold one PDF in; the run measures its own wall time, so the PDF's is left out of the total."""
        self.rollup.add(replace(outcome.rollup, wall_seconds=0.0))
        for error_class, count in outcome.error_counts.items():
            self.error_counts[error_class] = self.error_counts.get(error_class, 0) + count
        self.by_status[outcome.status] += 1
        listed = self.completed if outcome.status == "completed" else self.not_completed
        if len(listed) < DOCUMENTS_LISTED:
            listed.append(outcome)

    def copy(self) -> JournalTotals:
        return JournalTotals(
            replace(self.rollup), dict(self.error_counts), Counter(self.by_status), list(self.not_completed), list(self.completed)
        )

    @property
    def documents(self) -> int:
        return sum(self.by_status.values())

    def listed(self, limit: int = DOCUMENTS_LISTED) -> list[PdfOutcome]:
        """PDFs to show by name: those that did not complete first, at most ``limit``."""
        return [*self.not_completed, *self.completed][:limit]

    def record(self) -> dict[str, Any]:
        """``run_metadata.json``'s ``documents``: counts by status and the PDFs that did not complete, by name."""
        return {
            "total": self.documents,
            "by_status": dict(sorted(self.by_status.items())),
            "not_completed": [outcome.entry() for outcome in self.not_completed],
            "not_completed_unlisted": self.documents - self.by_status["completed"] - len(self.not_completed),
        }


def _read_back(location: RunLocation, pdf: PdfPlan, unended_status: str) -> PdfOutcome:
    """A PDF that did not end in this session, from its journal and ``pdf_metadata.json``."""
    wanted = set(pdf.pages)
    entries = latest_entries(location.page_journal(pdf.slug))
    rollup = Rollup(pages_total=len(pdf.pages))
    error_counts: dict[str, int] = {}
    for page in sorted(entries):
        if page not in wanted:
            continue
        record = PageRecord.from_dict(entries[page])
        rollup.add_page(record)
        if record.status == "failed" and record.error_class:
            error_counts[record.error_class] = error_counts.get(record.error_class, 0) + 1
    meta = read_json(location.pdf_metadata(pdf.slug)) or {}
    status = meta.get("status") if meta.get("status") in _ENDED else unended_status
    error = meta.get("error") if status == meta.get("status") else None
    rollup.wall_seconds = float((meta.get("rollup") or {}).get("wall_seconds") or 0.0)
    return PdfOutcome(pdf.slug, str(status), error, rollup, error_counts)


def journal_totals(
    location: RunLocation,
    pdfs: Iterable[PdfPlan],
    unended_status: str,
    ended: JournalTotals | None = None,
    ended_slugs: Mapping[str, object] | set[str] | frozenset[str] = frozenset(),
) -> JournalTotals:
    """The run's totals: ``ended`` (the PDFs in ``ended_slugs``, folded as they ended) plus every other PDF read back.

    Each read-back PDF keeps the status and error its ``pdf_metadata.json``
    recorded; one that never started (or was stopped before it could say so)
    gets ``unended_status``, the run's ending.
    """
    totals = ended.copy() if ended is not None else JournalTotals()
    for pdf in pdfs:
        if pdf.slug not in ended_slugs:
            totals.add(_read_back(location, pdf, unended_status))
    return totals
