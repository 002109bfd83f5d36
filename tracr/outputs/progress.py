"""A job's live progress, read from the output tree as it is written.

``run_metadata.json`` gives each run's state and page total; the PDFs'
``pages.jsonl`` journals give pages finished as they are appended (the metadata
rollup is refreshed on a timer). :class:`JournalCounter` reads journals
incrementally; :class:`RateTracker` turns successive counts into recent pages/s
and so an ETA; :func:`format_line` / :func:`format_plain` are what the terminal
shows; :class:`ChangeLog` picks the plain lines worth printing in a log. All of it
is plain reading and arithmetic: ``cli/progress.py`` owns the display.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracr.outputs.layout import PAGE_JOURNAL, OutputLayout, RunLocation

__all__ = [
    "RunProgress",
    "JournalCounter",
    "RateTracker",
    "RunTarget",
    "ChangeLog",
    "format_line",
    "format_plain",
    "STATE_WORDS",
    "ENDED",
    "NOT_RECORDED",
    "UNENDED",
    "RATE_WINDOW_S",
    "format_eta",
]

#: How each run status reads on the progress line.
STATE_WORDS = {
    None: "waiting to start",
    "queued": "queued",
    "waiting_resources": "waiting for GPUs",
    "starting": "starting server",
    "running": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}

#: The statuses a run ends in: its metadata's rollup is then final, and is what the job's table shows.
ENDED = frozenset({"completed", "failed", "cancelled"})

#: The statuses of a run under way; one still in them when its job has returned could not record its end.
UNENDED = frozenset({"queued", "waiting_resources", "starting", "running"})

#: What ``tracr run`` (its last progress lines and its table alike) calls such a run.
NOT_RECORDED = "crashed (not recorded)"

#: Pages/s (and so the ETA) is measured over this many seconds of a run's most recent progress.
RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class RunProgress:
    """One model run's progress at one moment."""

    model_slug: str
    run: int | None
    status: str | None
    total: int
    done: int
    failed: int
    pages_per_s: float | None
    eta_s: float | None

    @property
    def finished(self) -> int:
        return self.done + self.failed


@dataclass
class RunTarget:
    """Which run of a model this invocation shows: a known number (resume), or the first one after ``after``."""

    model_slug: str
    run: int | None = None
    after: int = 0

    def resolve(self, layout: OutputLayout, job_id: str) -> int | None:
        if self.run is None:
            later = [n for n in layout.run_numbers(job_id, self.model_slug) if n > self.after]
            self.run = later[0] if later else None
        return self.run


class JournalCounter:
    """Pages done / failed in one run's journals, reading only what was appended since the last call."""

    def __init__(self) -> None:
        self._offsets: dict[Path, int] = {}
        self._latest: dict[tuple[str, int], str] = {}  # (pdf, page) -> status of its latest record

    def count(self, run_dir: Path) -> tuple[int, int]:
        if run_dir.is_dir():
            for journal in run_dir.glob(f"*/{PAGE_JOURNAL}"):
                self._read(journal)
        done = sum(1 for status in self._latest.values() if status == "done")
        return done, len(self._latest) - done

    def _read(self, journal: Path) -> None:
        offset = self._offsets.get(journal, 0)
        try:
            with open(journal, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # a line being written is read next time, whole
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
                self._latest[(journal.parent.name, int(record["page"]))] = str(record.get("status"))
            except (ValueError, KeyError, TypeError):
                continue
        self._offsets[journal] = offset + end


@dataclass
class RateTracker:
    """Pages/s over the last :data:`RATE_WINDOW_S` seconds, from the first pages this invocation saw finish.

    An ETA from the whole run's average was far off early on (14 min predicted, 5.5
    taken): it counted the start-up (a server loading its model, the first requests
    filling the pipeline). So the window opens when the first pages are seen done
    (pages a resumed run had before do not count either), and then keeps only the
    most recent progress. None until a rate can be told: no page finished since the window opened.
    """

    window_s: float = RATE_WINDOW_S
    samples: deque[tuple[float, int]] = field(default_factory=deque)  # (when, pages finished); the first starts the window
    base: int | None = None  # pages finished when the run was first seen running
    moved: bool = False  # pages finished after the window opened

    def rate(self, status: str | None, finished: int, now: float) -> float | None:
        if status != "running":
            return None
        if self.base is None:
            self.base = finished
        if not self.samples:
            if finished > self.base:
                self.samples.append((now, finished))  # the first pages seen done: the window opens
            return None
        self.moved = self.moved or finished > self.samples[0][1]
        self.samples.append((now, finished))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()
        start, counted = self.samples[0]
        return (finished - counted) / (now - start) if self.moved and now > start else None


def snapshot(target: RunTarget, meta: dict[str, Any] | None, counts: tuple[int, int], rate: float | None) -> RunProgress:
    """One run's progress from its metadata (status, total) and its journal counts.

    Once the run has ended its rollup is final: pages and pages/s are then the
    rollup's, as in the table ``tracr run`` ends with, so the last line agrees with it.
    """
    rollup = (meta or {}).get("rollup") or {}
    status = (meta or {}).get("status")
    total = int(rollup.get("pages_total") or 0)
    if status in ENDED:
        done, failed = int(rollup.get("pages_done") or 0), int(rollup.get("pages_failed") or 0)
        rate = float(rollup.get("pages_per_s") or 0.0)
    else:
        done = max(counts[0], int(rollup.get("pages_done") or 0))
        failed = counts[1] if counts[0] >= int(rollup.get("pages_done") or 0) else int(rollup.get("pages_failed") or 0)
    left = max(0, total - done - failed)
    eta = left / rate if rate and status == "running" else (0.0 if status == "running" and total and not left else None)
    return RunProgress(target.model_slug, target.run, status, total, done, failed, rate, eta)


def read_run(layout: OutputLayout, job_id: str, target: RunTarget) -> tuple[dict[str, Any] | None, RunLocation | None]:
    number = target.resolve(layout, job_id)
    if number is None:
        return None, None
    location = layout.run(job_id, target.model_slug, number)
    try:
        return json.loads(location.run_metadata.read_text()), location
    except (OSError, ValueError):
        return None, location


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA –"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"ETA {hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"ETA {rest // 60}:{rest % 60:02d}"


def format_line(progress: RunProgress, width: int = 0) -> str:
    """``slug  run-2  running  120/600 pages  1 failed  14.2 pages/s  ETA 0:34``."""
    run = f"run-{progress.run}" if progress.run else "run-?"
    rate = f"{progress.pages_per_s:.1f} pages/s" if progress.pages_per_s is not None else "– pages/s"
    total = progress.total or "?"
    parts = [
        f"{progress.model_slug:<{width}}",
        run,
        f"{STATE_WORDS.get(progress.status, progress.status):<16}",
        f"{progress.done}/{total} pages",
        f"{progress.failed} failed",
        rate,
    ]
    if progress.status not in ENDED and progress.status != NOT_RECORDED:
        parts.append(format_eta(progress.eta_s))
    return "  ".join(parts)


def format_plain(progress: RunProgress) -> str:
    """The same, as one log-friendly line (no padding)."""
    return "progress: " + " ".join(format_line(progress).split())


@dataclass
class ChangeLog:
    """Which plain progress lines a log gets: a run's line when it says something new, not on every tick.

    A run's state (started, completed, failed...) is printed when it changes; its
    pages moving on, at most every ``interval_s`` seconds; a line that would say what
    the run's last line said is not printed again (a finished run's line used to
    repeat every 10 s until the job ended). :meth:`final` gives the lines that leave
    each run's last line saying how it ended.
    """

    interval_s: float
    _last: dict[str, tuple[tuple[Any, ...], float]] = field(default_factory=dict)  # run -> (what its last line said, when)

    def lines(self, progress: Iterable[RunProgress], now: float) -> list[str]:
        out = []
        for run in progress:
            said, last = _said(run), self._last.get(run.model_slug)
            if run.run is None or run.status is None or (last is not None and last[0] == said):
                continue  # no run (or no metadata) yet: nothing to say; or nothing new
            if last is not None and last[0][:2] == said[:2] and now - last[1] < self.interval_s:
                continue  # the same state, pages moved on: said at most every interval_s
            self._last[run.model_slug] = (said, now)
            out.append(format_plain(run))
        return out

    def final(self, progress: Iterable[RunProgress]) -> list[str]:
        """The last line of each run that got one, where the run's last line said otherwise."""
        out = []
        for run in progress:
            last = self._last.get(run.model_slug)
            if run.run is not None and (last is None or last[0] != _said(run)):
                self._last[run.model_slug] = (_said(run), float("inf"))
                out.append(format_plain(run))
        return out


def _said(run: RunProgress) -> tuple[Any, ...]:
    """What a plain line says that matters (rate and ETA move on every tick): state first."""
    return (run.run, run.status, run.done, run.failed, run.total)
