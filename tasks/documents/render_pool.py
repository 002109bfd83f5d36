"""A process pool that renders pages ahead of the OCR requests.

PyMuPDF keeps the GIL while it renders, so a thread pool gives one core; worker
processes give all of them, which on a small machine is the throughput ceiling
(see docs/architecture.md, "Throughput"). One pool serves every run of a job.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Future, ProcessPoolExecutor

from tasks.documents.render_ahead import RenderAhead, RenderArgs
from tracr.config.job import RenderSettings
from tracr.documents.pdf import (
    inspect_pdfs,
    page_anchor_text,
    page_pdf_data_url,
    page_text_markdown,
    render_clip_data_url,
    render_page_data_url,
    timed_page_text_markdown,
    worker_count,
    worker_ready,
)
from tracr.serving.child_env import child_environment, host_pass_env
from tracr.serving.process_group import start_pool_worker
from tracr.serving.spawn_env import EnvSpawnContext

__all__ = ["RenderPool", "shared_render_pool", "shutdown_shared_render_pool", "hold_shared_render_pool", "release_shared_render_pool"]


class RenderPool:
    """Async front of a spawn-context process pool running :mod:`tracr.documents.pdf` functions."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or worker_count()
        # spawn, not fork: forking a process that runs Prefect's threads can deadlock. Workers parse
        # untrusted PDFs and need no key: they start from the allow-listed environment, not ours.
        env = child_environment(os.environ, wanted=host_pass_env(os.environ))
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=EnvSpawnContext(env), initializer=start_pool_worker, initargs=(os.getpid(),)
        )
        self._ahead: RenderAhead | None = None

    def start(self) -> list[Future[int]]:
        """Start every worker and import PyMuPDF there, without waiting (``tracr run`` does, while Prefect is imported)."""
        return [self._executor.submit(worker_ready) for _ in range(self.workers)]

    def render_ahead(self, pdf_path: str, pages: list[int], render: RenderSettings) -> None:
        """Render these pages on one worker until the first :meth:`data_url` (see ``tasks/documents/render_ahead.py``)."""
        self._ahead = RenderAhead(self._executor, pdf_path, pages, _render_args(render))

    async def warm(self) -> None:
        """:meth:`start`, waited for: the workers are up before the first page waits on them."""
        await asyncio.gather(*(asyncio.wrap_future(ready) for ready in self.start()))

    async def data_url(self, pdf_path: str, page: int, render: RenderSettings) -> str:
        args = _render_args(render)
        ahead = self._ahead.take(pdf_path, page, args) if self._ahead is not None else None
        if ahead is not None:
            return await asyncio.wrap_future(ahead)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, render_page_data_url, pdf_path, page, *args)

    async def crop_data_url(
        self,
        pdf_path: str,
        page: int,
        clip: tuple[float, float, float, float],
        render: RenderSettings,
        *,
        angle: int = 0,
        min_side_px: int = 28,
        max_aspect: float | None = None,
    ) -> str:
        """Part of the page (``clip`` in fractions of it) at the page's zoom; see :func:`render_clip_data_url`."""
        loop = asyncio.get_running_loop()
        args = (pdf_path, page, clip, angle, min_side_px, max_aspect, *_render_args(render))
        return await loop.run_in_executor(self._executor, render_clip_data_url, *args)

    async def page_pdf_data_url(self, pdf_path: str, page: int) -> str:
        """The page alone as a one-page PDF ``data:`` URL."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, page_pdf_data_url, pdf_path, page)

    async def anchor_text(self, pdf_path: str, page: int) -> str:
        """The page's text layer as olmOCR v1's prompt wants it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, page_anchor_text, pdf_path, page)

    async def text_markdown(self, pdf_path: str, page: int) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, page_text_markdown, pdf_path, page)

    async def timed_text_markdown(self, pdf_path: str, page: int) -> tuple[str, float]:
        """The text layer and the seconds its extraction took in the worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, timed_page_text_markdown, pdf_path, page)

    async def inspect(self, paths: list[str], chunk: int = 500) -> list[tuple[int, int] | str]:
        """:func:`inspect_pdfs` of ``paths`` in chunks across the workers: every core opens PDFs, and PyMuPDF's memory stays there."""
        loop = asyncio.get_running_loop()
        parts = [paths[start : start + chunk] for start in range(0, len(paths), chunk)]
        done = await asyncio.gather(*(loop.run_in_executor(self._executor, inspect_pdfs, part) for part in parts))
        return [found for part in done for found in part]

    def shutdown(self) -> None:
        if self._ahead is not None:
            self._ahead.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _render_args(render: RenderSettings) -> RenderArgs:
    return render.args()


_shared: RenderPool | None = None
_holders = 0  # jobs of this process using the shared pool


def shared_render_pool() -> RenderPool:
    """The process-wide pool, created on first use."""
    global _shared
    if _shared is None:
        _shared = RenderPool()
    return _shared


def shutdown_shared_render_pool() -> None:
    global _shared, _holders
    _holders = 0
    if _shared is not None:
        _shared.shutdown()
        _shared = None


def hold_shared_render_pool() -> RenderPool:
    """The process-wide pool, held by one job until :func:`release_shared_render_pool`.

    Jobs in one process (a deployment's runner, a test, a notebook) share the
    pool, so the first job to end must not shut it down under the others.
    """
    global _holders
    _holders += 1
    return shared_render_pool()


def release_shared_render_pool() -> None:
    """One job is done with the pool; the last one shuts it down."""
    global _holders
    _holders = max(0, _holders - 1)
    if _holders == 0:
        shutdown_shared_render_pool()
