"""A job's live progress, read from the output tree as it is written.

``run_metadata.json`` gives each run's state and page total; the PDFs'
``pages.jsonl`` journals give pages finished as they are appended (the metadata
rollup is refreshed on a timer). :class:`JournalCounter` reads journals
incrementally; :class:`RateTracker` turns successive counts into pages/s and an
ETA; :func:`format_line` / :func:`format_plain` are what the terminal shows. All
of it is plain reading and arithmetic: ``cli/progress.py`` owns the display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracr.outputs.layout import PAGE_JOURNAL, OutputLayout, RunLocation

__all__ = ["RunProgress", "JournalCounter", "RateTracker", "RunTarget", "format_line", "format_plain", "STATE_WORDS", "format_eta"]

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
    """Pages/s since the run was first seen running (pages finished before, by a resumed run, do not count)."""

    since: float | None = None
    base: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)

    def rate(self, status: str | None, finished: int, now: float) -> float | None:
        if status != "running" and self.since is None:
            return None
        if self.since is None:
            self.since, self.base = now, finished
        elapsed = now - self.since
        return (finished - self.base) / elapsed if elapsed >= 1.0 and finished > self.base else (0.0 if elapsed >= 1.0 else None)


def snapshot(target: RunTarget, meta: dict[str, Any] | None, counts: tuple[int, int], rate: float | None) -> RunProgress:
    """One run's progress from its metadata (status, total) and its journal counts."""
    rollup = (meta or {}).get("rollup") or {}
    done = max(counts[0], int(rollup.get("pages_done") or 0))
    failed = counts[1] if counts[0] >= int(rollup.get("pages_done") or 0) else int(rollup.get("pages_failed") or 0)
    total = int(rollup.get("pages_total") or 0)
    status = (meta or {}).get("status")
    if status in ("completed", "failed", "cancelled") and rollup.get("pages_per_s"):
        rate = float(rollup["pages_per_s"])  # the run's own figure, once it has one
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
    if progress.status not in ("completed", "failed", "cancelled"):
        parts.append(format_eta(progress.eta_s))
    return "  ".join(parts)


def format_plain(progress: RunProgress) -> str:
    """The same, as one log-friendly line (no padding)."""
    return "progress: " + " ".join(format_line(progress).split())
