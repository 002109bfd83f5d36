"""``tracr run``'s progress without a terminal: lines when something changed, a last line that agrees with the table.

First the display itself over a real output tree (written as runs write it) and a
real pipe, on a clock the test turns (``ProgressDisplay.tick(now)``); then real
``tracr run`` processes whose stdout is a pipe, against the suite's Prefect server.
Before the fix a finished run's ``completed`` line repeated every interval until the
job ended, a run shorter than the interval printed nothing, the last line could say
``running 0/? pages`` above a table that said 5/5 done, and the ETA came from the
whole run's average (start-up included).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.progress import ProgressDisplay
from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tracr.outputs.journal import PageRecord, append_record
from tracr.outputs.layout import PAGE_JOURNAL, OutputLayout
from tracr.outputs.progress import RateTracker, RunTarget, snapshot
from tracr.outputs.report import run_rows
from tracr.outputs.rollup import Rollup
from tracr.run.recorder import RunRecorder
from tracr.run.state import RunStatus

REPO = Path(__file__).resolve().parents[2]
JOB = "job"


# ----------------------------------------------------------------------------- the ETA


def test_the_eta_comes_from_recent_pages_not_the_start_up() -> None:
    """100 s of start-up, then 1 page/s, then 2 pages/s: the rate is the recent one each time."""
    rates = RateTracker()
    assert rates.rate("starting", 0, now=0.0) is None
    assert rates.rate("running", 0, now=1.0) is None  # first seen running
    assert rates.rate("running", 0, now=60.0) is None  # a server loading its model: no rate yet, no made-up ETA
    assert rates.rate("running", 5, now=100.0) is None  # the first pages seen done open the window
    rate = None
    for now in range(101, 131):
        rate = rates.rate("running", 5 + (now - 100), now=float(now))
    assert rate == pytest.approx(1.0)  # the whole run's average would say 35/130 = 0.27
    progress = snapshot(RunTarget("m", run=1), {"status": "running", "rollup": {"pages_total": 200}}, (35, 0), rate)
    assert progress.eta_s == pytest.approx(165.0)  # 165 pages left at 1 page/s (the average gave 611 s)
    finished = 35
    for now in range(131, 251):
        finished += 2
        rate = rates.rate("running", finished, now=float(now))
    assert rate == pytest.approx(2.0)  # the last minute, not the run so far
    for now in range(251, 400):
        rate = rates.rate("running", finished, now=float(now))
    assert rate == 0.0  # stalled for over a minute: 0 pages/s, and no ETA
    assert snapshot(RunTarget("m", run=1), {"status": "running", "rollup": {"pages_total": 900}}, (finished, 0), rate).eta_s is None


# ----------------------------------------------------------------------------- the display, on a turned clock


class _Run:
    """One run's output as a run writes it: metadata through the recorder, pages through the journal."""

    def __init__(self, layout: OutputLayout, slug: str, pages: int) -> None:
        self.location = layout.allocate_run(JOB, slug)
        self.recorder = RunRecorder(self.location, {"model": {"model": slug}})
        self.recorder.update(Rollup(pages_total=pages))
        (self.location.run_dir / "doc").mkdir()
        self.done = 0

    def start(self) -> None:
        self.recorder.set_status(RunStatus.STARTING)
        self.recorder.set_status(RunStatus.RUNNING)

    def finish_pages(self, count: int) -> None:
        for _ in range(count):
            self.done += 1
            append_record(self.location.run_dir / "doc" / PAGE_JOURNAL, PageRecord(page=self.done, status="done"))

    def end(self, wall_seconds: float) -> None:
        """The run's last rollup (its pages/s is done over wall seconds), then ``completed``, as a run's flow ends."""
        total = int(self.recorder.data["rollup"]["pages_total"])
        self.recorder.update(Rollup(pages_total=total, pages_done=self.done, wall_seconds=wall_seconds))
        self.recorder.set_status(RunStatus.COMPLETED)


@pytest.fixture
def pipe() -> Iterator[tuple[object, object]]:
    """A real pipe: the display writes to one end, the test reads the other."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as reader, os.fdopen(write_fd, "w") as writer:
        yield reader, writer


def _drain(reader, writer) -> list[str]:
    writer.close()
    return reader.read().splitlines()


def test_a_log_gets_a_line_when_something_changed_and_ends_as_the_table(tmp_path: Path, pipe) -> None:
    reader, writer = pipe
    layout = OutputLayout(tmp_path)
    fast, slow = _Run(layout, "fast", 2), _Run(layout, "slow", 40)
    display = ProgressDisplay(layout, JOB, [RunTarget("fast"), RunTarget("slow")], stream=writer, live=False, interval_s=10)
    assert not writer.isatty() and not display.live
    fast.start()
    display.tick(0.0)  # fast running, slow queued: one line each
    display.tick(0.5)  # nothing changed: nothing
    fast.finish_pages(1)
    display.tick(1.0)  # a page, but fast's last line is 1 s old: not yet
    fast.finish_pages(1)
    fast.end(wall_seconds=4.0)
    display.tick(2.0)  # completed: at once
    slow.start()
    display.tick(2.5)  # slow's new state: at once
    for second in range(3, 60):
        if second % 2:
            slow.finish_pages(1)
        display.tick(float(second))  # slow's state at once, then its pages every 10 s; fast: never again
    slow.finish_pages(40 - slow.done)
    slow.end(wall_seconds=50.0)
    display.stop()  # no thread was started; the last lines say how each run ended
    lines = _drain(reader, writer)

    assert lines[:2] == [
        "progress: fast run-1 running 0/2 pages 0 failed – pages/s ETA –",
        "progress: slow run-1 queued 0/40 pages 0 failed – pages/s ETA –",
    ]
    assert lines[2] == "progress: fast run-1 completed 2/2 pages 0 failed 0.5 pages/s"
    assert sum(" fast " in line for line in lines) == 2  # its completed line once, not every interval after
    slow_lines = [line for line in lines if " slow " in line]
    assert slow_lines[1].startswith("progress: slow run-1 running 0/40 pages")  # the new state at once
    assert 5 <= len(slow_lines) <= 9, slow_lines  # pages every 10 s over ~56 s, not every second
    assert slow_lines[-1] == "progress: slow run-1 completed 40/40 pages 0 failed 0.8 pages/s"
    rows = {row["model"]: row for row in run_rows(layout, JOB)}
    assert (rows["slow"]["status"], rows["slow"]["done"], rows["slow"]["of"]) == ("completed", 40, 40)
    assert all(a != b for a, b in zip(lines, lines[1:], strict=False))


def test_a_run_shorter_than_the_interval_still_says_how_it_ended(tmp_path: Path, pipe) -> None:
    """The last line seen was ``running 0/?``; the run ended before the next look: its end is printed once."""
    reader, writer = pipe
    layout = OutputLayout(tmp_path)
    display = ProgressDisplay(layout, JOB, [RunTarget("quick"), RunTarget("never")], stream=writer, live=False, interval_s=3600)
    run = _Run(layout, "quick", 0)  # its total not known yet
    run.start()
    display.tick(0.0)
    run.recorder.update(Rollup(pages_total=5))
    run.finish_pages(5)
    run.end(wall_seconds=2.0)
    display.stop()
    assert _drain(reader, writer) == [
        "progress: quick run-1 running 0/? pages 0 failed – pages/s ETA –",
        "progress: quick run-1 completed 5/5 pages 0 failed 2.5 pages/s",
    ]  # and nothing for a model whose run never started (the table has no row for it either)


def test_a_run_left_running_ends_as_the_table_calls_it(tmp_path: Path, pipe) -> None:
    reader, writer = pipe
    layout = OutputLayout(tmp_path)
    display = ProgressDisplay(layout, JOB, [RunTarget("lost")], stream=writer, live=False, interval_s=10)
    _Run(layout, "lost", 3).start()  # its end never recorded
    display.stop()
    assert _drain(reader, writer) == ["progress: lost run-1 crashed (not recorded) 0/3 pages 0 failed – pages/s"]


# ----------------------------------------------------------------------------- real `tracr run` processes, stdout a pipe


def _run_piped(tmp_path: Path, models: list[dict[str, object]], interval_s: str) -> tuple[list[str], list[str]]:
    """``tracr run`` with stdout a pipe: (its progress lines, the table's rows) from stdout."""
    make_pdf(tmp_path / "inputs" / "doc.pdf", 5)
    config = write_config(tmp_path / "job.yaml", {"job_id": "piped", "input_path": str(tmp_path / "inputs"), "models": models})
    env = {**os.environ, "TRACR_PROGRESS_INTERVAL_S": interval_s, "TRACR_PROGRESS_TEST_KEY": TEST_API_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(tmp_path / "out")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    progress = [line for line in lines if line.startswith("progress: ")]
    assert all(lines.index(line) < header for line in progress)  # every progress line comes before the table
    rows = [line for line in lines[header + 2 :] if line.strip() and not line.startswith("outputs:")]
    return progress, rows


def _agrees(progress_line: str, row: str) -> bool:
    """The last progress line says what the table's row says: status, pages done/failed of total, pages/s."""
    model, run, status, done, failed, _cut, total, _tokens, _seconds, rate = row.split()[:10]
    expected = f"progress: {model} run-{run} {status} {done}/{total} pages {failed} failed {float(rate):.1f} pages/s"
    return progress_line == expected


@pytest.mark.usefixtures("prefect_server")
def test_a_short_run_in_a_pipe_prints_its_end_once(tmp_path: Path) -> None:
    """A run well under the interval: before the fix it printed no progress line at all."""
    progress, rows = _run_piped(tmp_path, [{"model": "pdf-text-layer", "mode": "local", "provider": "pdf-text"}], "3600")
    assert len(rows) == 1 and progress, (progress, rows)
    assert _agrees(progress[-1], rows[0]), (progress, rows)
    assert sum(" completed " in line for line in progress) == 1, progress


@pytest.mark.usefixtures("prefect_server")
def test_a_run_that_ends_first_says_so_once_while_the_other_goes_on(tmp_path: Path, stub_server) -> None:
    """The text layer ends in a moment, a slow model takes seconds more: its line is not repeated meanwhile."""
    stub = stub_server(latency_s=0.6)
    models: list[dict[str, object]] = [
        {"model": "pdf-text-layer", "mode": "local", "provider": "pdf-text"},
        {"model": "stub-ocr", "base_url": stub.base_url, "api_key_env": "TRACR_PROGRESS_TEST_KEY", "max_concurrent_requests": 1},
    ]
    progress, rows = _run_piped(tmp_path, models, "1")
    by_model = {row.split()[0]: row for row in rows}
    assert set(by_model) == {"pdf-text-layer", "stub-ocr"}, rows
    for model, row in by_model.items():
        mine = [line for line in progress if line.startswith(f"progress: {model} ")]
        assert mine and _agrees(mine[-1], row), (mine, row)
        assert sum(" completed " in line for line in mine) == 1, mine  # said once, not every second until the job ended
        assert all(a != b for a, b in zip(mine, mine[1:], strict=False)), mine
    assert re.search(r"progress: stub-ocr run-1 running \d/5 pages", "\n".join(progress)), progress
