"""Inspecting the inputs: a folder of thousands goes to the render workers, a few PDFs to a thread; both plan the same."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tasks.documents.inspection import POOL_FROM, inspect_inputs
from tasks.documents.render_pool import RenderPool
from tests.conftest import make_pdf


def test_the_render_workers_plan_a_big_folder_as_a_thread_plans_a_small_one(tmp_path: Path) -> None:
    paths = [str(make_pdf(tmp_path / f"doc-{i:04d}.pdf", 1 + i % 3)) for i in range(POOL_FROM + 4)]
    (tmp_path / "doc-0007.pdf").write_bytes(b"%PDF-1.7 not a PDF at all")
    pool = RenderPool(workers=2)
    try:
        by_workers = asyncio.run(inspect_inputs(paths, "1-2", pool))
    finally:
        pool.shutdown()
    by_thread = [
        plan
        for start in range(0, len(paths), POOL_FROM - 1)
        for plan in asyncio.run(inspect_inputs(paths[start : start + POOL_FROM - 1], "1-2", pool))
    ]
    assert by_workers == by_thread
    assert [p.slug for p in by_workers[:3]] == ["doc-0000", "doc-0001", "doc-0002"]
    assert [tuple(p.pages) for p in by_workers[:3]] == [(1,), (1, 2), (1, 2)] and by_workers[2].page_count == 3
    broken = by_workers[7]
    assert broken.error and "doc-0007.pdf" in broken.error and not broken.pages
    assert sum(p.error is not None for p in by_workers) == 1
