"""A job's first pages rendered on one worker while ``tracr run`` is still starting.

Until the job's flow asks for its first page, ``tracr run`` is importing Prefect
and creating flow runs: one core's work. One render worker uses the other core
meanwhile (about 50 pages on 2 cores); the flow then takes those pages instead of
rendering them. Only one worker renders, one page at a time: two competing with
the imports on 2 cores made the start slower than the pages it saved.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Executor, Future

from tracr.documents.pdf import render_page_data_url

__all__ = ["RenderAhead", "RenderArgs"]

#: ``render_page_data_url``'s settings: longest side in pixels, format, JPEG quality.
RenderArgs = tuple[int, str, int, float | None, int | None, int | None, int | None, int | None, int]


class RenderAhead:
    """Renders ``pages`` of one PDF in order, one at a time, until :meth:`take` or :meth:`stop` is called."""

    def __init__(self, executor: Executor, pdf_path: str, pages: Iterable[int], args: RenderArgs) -> None:
        self._executor, self.pdf_path, self.args = executor, pdf_path, args
        self._lock = threading.Lock()
        self._queue = deque(pages)
        self._futures: dict[int, Future[str]] = {}
        self._stopped = False
        self._next()

    def _next(self, _: object = None) -> None:
        with self._lock:
            if self._stopped or not self._queue:
                return
            page = self._queue.popleft()
            try:
                future = self._executor.submit(render_page_data_url, self.pdf_path, page, *self.args)
            except RuntimeError:  # the pool, or the interpreter, is shutting down
                self._stopped = True
                return
            self._futures[page] = future
        future.add_done_callback(self._next)  # the next page once this one is done: one worker busy, not all

    def take(self, pdf_path: str, page: int, args: RenderArgs) -> Future[str] | None:
        """The page's render when it was started ahead; the job asking for pages ends the rendering ahead."""
        with self._lock:
            self._stopped = True
            if (pdf_path, args) != (self.pdf_path, self.args):
                return None
            return self._futures.pop(page, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
