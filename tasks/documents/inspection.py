"""Inspect every input PDF once, before any model starts.

Page counts give runs an honest progress total, and a broken or encrypted PDF is
found here and recorded as failed for that PDF only, not for the job.

Not a Prefect task: it takes milliseconds, and its three state events reached a
SQLite-backed Prefect server just as the job created its model-run subflows; the
two writes collided, and the server's 503 made the client wait ~2 s before the
first model started, in about one job in three (measured with bench/throughput.py).
What it finds is logged by the job flow and kept in ``job_metadata.json``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tracr.config.pages import PageSelection, parse_page_selection
from tracr.documents.pdf import PdfError, inspect_pdf
from tracr.outputs.slugs import pdf_slugs
from tracr.run.plan import PdfPlan

__all__ = ["inspect_inputs", "plan_pdfs"]


def plan_pdfs(paths: list[Path], selection: PageSelection) -> list[PdfPlan]:
    """A :class:`PdfPlan` per path: slug, page count and selected pages, or the error."""
    slugs = pdf_slugs(paths)
    plans = []
    for path in paths:
        try:
            info = inspect_pdf(path)
        except PdfError as exc:
            plans.append(PdfPlan(path=str(path), slug=slugs[path], error=str(exc)))
            continue
        plans.append(
            PdfPlan(
                path=str(path),
                slug=slugs[path],
                page_count=info.page_count,
                pages=tuple(selection.resolve(info.page_count)),
                size_bytes=info.size_bytes,
            )
        )
    return plans


async def inspect_inputs(paths: list[str], selection: str) -> list[PdfPlan]:
    """:func:`plan_pdfs` off the event loop."""
    return await asyncio.to_thread(plan_pdfs, [Path(p) for p in paths], parse_page_selection(selection))
