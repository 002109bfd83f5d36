"""Jobs of one process share the render pool: the last one to end shuts it down, not the first."""

from __future__ import annotations

import asyncio

from tasks.documents.render_pool import hold_shared_render_pool, release_shared_render_pool, shared_render_pool
from tests.conftest import make_pdf
from tracr.config.job import RenderSettings


def test_the_pool_outlives_the_first_of_two_jobs(tmp_path):
    pdf = str(make_pdf(tmp_path / "a.pdf", 1))
    first, second = hold_shared_render_pool(), hold_shared_render_pool()
    assert first is second
    release_shared_render_pool()  # the first job ends
    assert shared_render_pool() is first
    url = asyncio.run(first.data_url(pdf, 1, RenderSettings()))  # the second job still renders
    assert url.startswith("data:image/")
    release_shared_render_pool()  # the last job ends: the pool is shut down, the next job gets a new one
    assert shared_render_pool() is not first
    release_shared_render_pool()
