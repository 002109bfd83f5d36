"""Inspect every input PDF once, before any model starts.

Page counts give runs an honest progress total, and a broken or encrypted PDF is
found here and recorded as failed for that PDF only, not for the job.

Not a Prefect task: it takes milliseconds, and its three state events reached a
SQLite-backed Prefect server just as the job created its model-run subflows; the
two writes collided, and the server's 503 made the client wait ~2 s before the
first model started, in about one job in three (measured with bench/throughput.py).
What it finds is logged by the job flow and kept in ``inputs.jsonl``.

A few PDFs are opened in a thread while the render workers start; a folder of
thousands is opened by the render workers themselves (:data:`POOL_FROM`): every
core counts pages, and PyMuPDF's memory for 20,000 opened documents stays in
the workers instead of in the job process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tasks.documents.render_pool import RenderPool
from tracr.config.pages import PageSelection, parse_page_selection
from tracr.documents.pdf import inspect_pdfs
from tracr.outputs.slugs import pdf_slugs
from tracr.run.plan import PdfPlan

__all__ = ["POOL_FROM", "inspect_inputs", "plan_pdfs"]

#: PDFs from which the render workers inspect them (fewer: a thread, without waiting for the workers to start).
POOL_FROM = 256


def plan_pdfs(paths: Sequence[str], found: Sequence[tuple[int, int] | str], selection: PageSelection) -> list[PdfPlan]:
    """A :class:`PdfPlan` per path from what inspecting it ``found``: slug, page count and selected pages, or the error."""
    slugs = pdf_slugs(paths)
    plans = []
    for path, result in zip(paths, found, strict=True):
        slug = slugs[path]
        if isinstance(result, str):
            plans.append(PdfPlan(path=path, slug=slug, error=result))
            continue
        page_count, size_bytes = result
        plans.append(
            PdfPlan(path=path, slug=slug, page_count=page_count, pages=tuple(selection.resolve(page_count)), size_bytes=size_bytes)
        )
    return plans


async def inspect_inputs(paths: list[str], selection: str, pool: RenderPool | None = None) -> list[PdfPlan]:
    """Every path's :class:`PdfPlan`, inspected off the event loop (by ``pool``'s workers for :data:`POOL_FROM` PDFs or more)."""
    found = await pool.inspect(paths) if pool is not None and len(paths) >= POOL_FROM else await asyncio.to_thread(inspect_pdfs, paths)
    return await asyncio.to_thread(plan_pdfs, paths, found, parse_page_selection(selection))
