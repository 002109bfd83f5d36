"""``tracr run``'s progress display: a background thread reading the output tree.

On a terminal, one live line per model run (rich), redrawn every 0.5 s. Elsewhere
(CI, a log file, a pipe) plain ``progress: …`` lines, only when something changed:
a run's state at once, its pages at most every ``TRACR_PROGRESS_INTERVAL_S`` seconds
(default 10); the tree is read every second (:class:`tracr.outputs.progress.ChangeLog`).
:meth:`ProgressDisplay.stop` ends either with each run's last line saying how it
ended, which ``tracr run`` calls once the runs' ends are recorded, so the last
lines agree with the table under them. The lines come from
``tracr.outputs.progress``; nothing here talks to Prefect.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from typing import Any, TextIO

from tracr.outputs.layout import OutputLayout
from tracr.outputs.progress import (
    NOT_RECORDED,
    UNENDED,
    ChangeLog,
    JournalCounter,
    RateTracker,
    RunProgress,
    RunTarget,
    format_line,
    read_run,
    snapshot,
)

__all__ = ["ProgressDisplay", "interval_from_env"]

#: Seconds between two reads of the output tree without a terminal (the lines printed are fewer).
PLAIN_READ_S = 1.0
LIVE_READ_S = 0.5


def interval_from_env() -> float:
    """``TRACR_PROGRESS_INTERVAL_S``: the most often a run's moving page count is printed without a terminal."""
    return float(os.environ.get("TRACR_PROGRESS_INTERVAL_S") or 10)


class ProgressDisplay:
    """Start with :meth:`start`, end with :meth:`stop` (``final``: each run's last line says how it ended)."""

    def __init__(
        self,
        layout: OutputLayout,
        job_id: str,
        targets: list[RunTarget],
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
        interval_s: float | None = None,
    ) -> None:
        self.layout, self.job_id, self.targets = layout, job_id, targets
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.interval_s = interval_s if interval_s is not None else interval_from_env()
        self.read_every_s = LIVE_READ_S if self.live else min(PLAIN_READ_S, self.interval_s)
        self._counters = {t.model_slug: JournalCounter() for t in targets}
        self._rates = {t.model_slug: RateTracker() for t in targets}
        self._log = ChangeLog(self.interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rich: Any = None  # a rich Live on a terminal
        self._width = max((len(t.model_slug) for t in targets), default=0)

    def read(self, now: float | None = None) -> list[RunProgress]:
        now = time.monotonic() if now is None else now
        out = []
        for target in self.targets:
            meta, location = read_run(self.layout, self.job_id, target)
            counts = self._counters[target.model_slug].count(location.run_dir) if location else (0, 0)
            status = (meta or {}).get("status")
            rate = self._rates[target.model_slug].rate(status, sum(counts), now)
            out.append(snapshot(target, meta, counts, rate))
        return out

    def tick(self, now: float | None = None) -> None:
        """Read the tree once and show what changed (what the thread does every ``read_every_s``)."""
        progress = self.read(now)
        if self._rich is not None:
            self._rich.update(self._renderable(progress), refresh=True)
        else:
            self._write(self._log.lines(progress, time.monotonic() if now is None else now))

    def _renderable(self, progress: list[RunProgress]) -> Any:  # rich is imported only on a terminal
        from rich.text import Text

        return Text("\n".join(format_line(p, self._width) for p in progress), no_wrap=True, overflow="ellipsis")

    def _write(self, lines: list[str]) -> None:
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def start(self) -> ProgressDisplay:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True, soft_wrap=True)
            self._rich = Live(
                self._renderable(self.read()),
                console=console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._rich.start(refresh=True)
        self._thread = threading.Thread(target=self._loop, name="tracr-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.read_every_s):
            try:
                self.tick()
            except Exception as exc:  # a display problem never stops a job
                print(f"(progress display stopped: {exc})", file=sys.stderr)
                return

    def stop(self, *, final: bool = True) -> None:
        """Stop reading; with ``final``, each run's last line says how it ended (call once the ends are recorded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            ended = [_as_ended(p) for p in self.read()] if final else []
            if self._rich is not None:
                if final:
                    self._rich.update(self._renderable([p for p in ended if p.run is not None]), refresh=True)
                self._rich.stop()
            elif final:
                self._write(self._log.final(ended))
        except Exception as exc:  # as above: the job's own result still follows
            print(f"(progress display stopped: {exc})", file=sys.stderr)
        finally:
            self._rich = None


def _as_ended(progress: RunProgress) -> RunProgress:
    """A run the job left unended, as the job's table calls it: its end could not be recorded."""
    if progress.run is None or progress.status not in UNENDED:
        return progress
    return dataclasses.replace(progress, status=NOT_RECORDED, pages_per_s=None, eta_s=None)
