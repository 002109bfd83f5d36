"""A run's PDFs in batches: one Prefect task run per batch, not per PDF.

A task run costs a few API round trips and some milliseconds of the event loop,
which is nothing next to a 600-page PDF and most of the time of a one-page
invoice. So consecutive small PDFs share one task run until the batch holds
``BATCH_PAGES`` selected pages or ``BATCH_PDFS`` PDFs, and a PDF at least that
large is a batch of its own (its task run is named by it, as before). Inside a
batch each PDF still ends alone: a broken PDF fails that PDF, its own
``pdf_metadata.json`` and journal say so, and resume skips finished pages by
the same journals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracr.run.plan import PdfPlan

__all__ = ["BATCH_PAGES", "BATCH_PDFS", "PdfBatch", "batch_pdfs"]

#: Selected pages that fill a batch: enough that a task run's cost is small per page.
BATCH_PAGES = 64
#: PDFs in one batch at most (PDFs with no page selected, or broken ones, count too).
BATCH_PDFS = 64


@dataclass(frozen=True)
class PdfBatch:
    """Consecutive PDFs of one run that one task run processes."""

    pdfs: tuple[PdfPlan, ...]

    @property
    def name(self) -> str:
        """The task run's name: the PDF's slug, or the first and last slug and how many."""
        if len(self.pdfs) == 1:
            return self.pdfs[0].slug
        return f"{self.pdfs[0].slug} … {self.pdfs[-1].slug} ({len(self.pdfs)} PDFs)"

    @property
    def pages(self) -> int:
        return sum(len(pdf.pages) for pdf in self.pdfs)


def batch_pdfs(pdfs: Sequence[PdfPlan], max_pages: int = BATCH_PAGES, max_pdfs: int = BATCH_PDFS) -> list[PdfBatch]:
    """``pdfs`` in order, cut into batches of at most ``max_pdfs`` PDFs that close once they hold ``max_pages`` pages."""
    batches: list[PdfBatch] = []
    current: list[PdfPlan] = []
    pages = 0
    for pdf in pdfs:
        if current and (pages + len(pdf.pages) > max_pages or len(current) >= max_pdfs):
            batches.append(PdfBatch(tuple(current)))
            current, pages = [], 0
        current.append(pdf)
        pages += len(pdf.pages)
    if current:
        batches.append(PdfBatch(tuple(current)))
    return batches
