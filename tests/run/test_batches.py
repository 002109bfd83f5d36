"""Small PDFs share a task run; a big PDF has its own; order and every PDF are kept."""

from __future__ import annotations

from tracr.run.batches import BATCH_PAGES, BATCH_PDFS, batch_pdfs
from tracr.run.plan import PdfPlan


def _pdf(slug: str, pages: int, error: str | None = None) -> PdfPlan:
    return PdfPlan(path=f"/in/{slug}.pdf", slug=slug, page_count=pages, pages=list(range(1, pages + 1)) if not error else [], error=error)


def test_one_page_pdfs_fill_batches_of_the_page_budget():
    pdfs = [_pdf(f"doc-{i:05d}", 1) for i in range(2000)]
    batches = batch_pdfs(pdfs)
    assert len(batches) == -(-2000 // min(BATCH_PAGES, BATCH_PDFS))
    assert [p for b in batches for p in b.pdfs] == pdfs  # every PDF once, in order
    assert batches[0].name == f"doc-00000 … doc-{BATCH_PDFS - 1:05d} ({BATCH_PDFS} PDFs)"


def test_a_big_pdf_is_a_batch_of_its_own_named_by_it():
    pdfs = [_pdf("a", 3), _pdf("big", 600), _pdf("b", 2), _pdf("c", 70), _pdf("d", 1)]
    batches = batch_pdfs(pdfs)
    assert [[p.slug for p in b.pdfs] for b in batches] == [["a"], ["big"], ["b"], ["c"], ["d"]]
    assert batches[1].name == "big" and batches[1].pages == 600


def test_pdfs_without_pages_count_against_the_pdf_limit_and_a_batch_closes_before_its_budget_overflows():
    broken = [_pdf(f"bad-{i}", 0, error="not a PDF") for i in range(BATCH_PDFS + 1)]
    assert [len(b.pdfs) for b in batch_pdfs(broken)] == [BATCH_PDFS, 1]
    mixed = [_pdf("x", 40), _pdf("y", 30), _pdf("z", 24)]
    assert [[p.slug for p in b.pdfs] for b in batch_pdfs(mixed)] == [["x"], ["y", "z"]]
    assert batch_pdfs([]) == []
