"""A new run's first pages rendered while ``tracr run`` starts: one at a time, taken by the job, stopped by it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tasks.documents.render_ahead import RenderAhead
from tasks.documents.render_pool import RenderPool
from tests.conftest import make_pdf
from tracr.config.render import RenderSettings
from tracr.documents.pdf import render_page_data_url

SMALL = (200, "png", 90)


class CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that records how many of its renders ran at once."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.submitted = 0
        self.running = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        def counted() -> Any:
            with self._count:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            try:
                return fn(*args, **kwargs)
            finally:
                with self._count:
                    self.running -= 1

        with self._count:
            self.submitted += 1
        return super().submit(counted)


def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_pages_are_rendered_one_at_a_time_in_order_and_handed_over(tmp_path):
    pdf = str(make_pdf(tmp_path / "a.pdf", 6))
    executor = CountingExecutor()
    ahead = RenderAhead(executor, pdf, [1, 2, 3, 4, 5, 6], SMALL)
    _wait_for(lambda: executor.submitted == 6 and executor.running == 0)
    assert executor.most_at_once == 1  # one worker busy, the other core left to the start-up
    third = ahead.take(pdf, 3, SMALL)
    assert third is not None and third.result() == render_page_data_url(pdf, 3, *SMALL)
    assert ahead.take(pdf, 3, SMALL) is None  # handed over once
    executor.shutdown()


def test_the_job_asking_for_a_page_stops_the_rendering_ahead(tmp_path):
    pdf = str(make_pdf(tmp_path / "a.pdf", 40))
    executor = CountingExecutor()
    ahead = RenderAhead(executor, pdf, range(1, 41), SMALL)
    assert ahead.take(pdf, 1, SMALL) is not None
    time.sleep(0.5)
    assert executor.submitted <= 2  # the render under way may still start its successor's check, no more
    executor.shutdown()


def test_other_settings_or_another_pdf_get_nothing_from_ahead(tmp_path):
    pdf = str(make_pdf(tmp_path / "a.pdf", 2))
    executor = CountingExecutor()
    ahead = RenderAhead(executor, pdf, [1, 2], SMALL)
    assert ahead.take(pdf, 1, (400, "png", 90)) is None
    assert ahead.take(str(tmp_path / "other.pdf"), 1, SMALL) is None
    executor.shutdown()


def test_a_pool_stopping_while_pages_render_ahead_ends_quietly(tmp_path, caplog):
    pdf = str(make_pdf(tmp_path / "a.pdf", 30))
    executor = CountingExecutor()
    RenderAhead(executor, pdf, range(1, 31), SMALL)
    executor.shutdown(wait=True)  # the next page's submit is refused: no exception escapes the callback
    assert executor.submitted < 30
    assert not [r for r in caplog.records if "exception calling callback" in r.getMessage()]


async def test_the_render_pool_serves_a_page_rendered_ahead_as_it_would_render_it(tmp_path):
    pdf = str(make_pdf(tmp_path / "a.pdf", 3))
    render = RenderSettings(longest_side_px=200)
    pool = RenderPool(2)
    try:
        pool.start()
        pool.render_ahead(pdf, [1, 2, 3], render)
        ahead = await pool.data_url(pdf, 2, render)
        assert ahead == render_page_data_url(pdf, 2, 200, "png", 90)
        assert await pool.data_url(pdf, 3, RenderSettings(longest_side_px=300)) == render_page_data_url(pdf, 3, 300, "png", 90)
    finally:
        pool.shutdown()
