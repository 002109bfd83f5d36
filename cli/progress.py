"""``tracr run``'s progress display: a background thread reading the output tree.

On a terminal, one live line per model run (rich); elsewhere (CI, a log file),
plain ``progress: …`` lines every ``TRACR_PROGRESS_INTERVAL_S`` seconds (default 10).
The lines come from ``tracr.outputs.progress``; nothing here talks to Prefect.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

from tracr.outputs.layout import OutputLayout
from tracr.outputs.progress import JournalCounter, RateTracker, RunProgress, RunTarget, format_line, format_plain, read_run, snapshot

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """Start with :meth:`start`, end with :meth:`stop` (which draws the last state once more on a terminal)."""

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
        default = 0.5 if self.live else float(os.environ.get("TRACR_PROGRESS_INTERVAL_S") or 10)
        self.interval_s = interval_s if interval_s is not None else default
        self._counters = {t.model_slug: JournalCounter() for t in targets}
        self._rates = {t.model_slug: RateTracker() for t in targets}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rich: Any = None  # a rich Live on a terminal
        self._width = max((len(t.model_slug) for t in targets), default=0)

    def read(self) -> list[RunProgress]:
        now = time.monotonic()
        out = []
        for target in self.targets:
            meta, location = read_run(self.layout, self.job_id, target)
            counts = self._counters[target.model_slug].count(location.run_dir) if location else (0, 0)
            status = (meta or {}).get("status")
            rate = self._rates[target.model_slug].rate(status, sum(counts), now)
            out.append(snapshot(target, meta, counts, rate))
        return out

    def _renderable(self):  # rich is imported only on a terminal
        from rich.text import Text

        return Text("\n".join(format_line(p, self._width) for p in self.read()), no_wrap=True, overflow="ellipsis")

    def start(self) -> ProgressDisplay:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True, soft_wrap=True)
            self._rich = Live(
                self._renderable(), console=console, auto_refresh=False, transient=False, redirect_stdout=True, redirect_stderr=True
            )
            self._rich.start(refresh=True)
        self._thread = threading.Thread(target=self._loop, name="tracr-progress", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._draw()

    def _draw(self) -> None:
        try:
            if self._rich is not None:
                self._rich.update(self._renderable(), refresh=True)
            else:
                lines = [format_plain(p) for p in self.read()]
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
        except Exception as exc:  # a display problem never stops a job
            print(f"(progress display stopped: {exc})", file=sys.stderr)
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._rich is not None:
            self._rich.update(self._renderable(), refresh=True)
            self._rich.stop()
            self._rich = None
