"""First come, first served waiting for a host's GPUs: a ticket queue in front of the GPU limits.

Prefect's concurrency limits grant whoever asks while slots are free, so a run
that needs 2 GPUs can wait for ever behind a stream of 1-GPU runs, each taking a
GPU the moment one frees. A waiter therefore first takes a ticket (a file under
``<root>/.tracr/gpu-queue/<host>/``, named by the time it arrived) and asks the
limits only while its ticket is the oldest live one; everyone behind waits, even
when a GPU they could use is free.

The waiters of one host may run in different processes, PID namespaces or
containers, so a ticket's liveness is not a pid: a waiter touches its ticket on
every poll, and a ticket untouched for :data:`STALE_AFTER_S` belongs to a waiter
that died and is removed by whoever sees it.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

__all__ = ["STALE_AFTER_S", "GpuTicket"]

#: A waiter polls every second or so; one silent this long is gone.
STALE_AFTER_S = 30.0


class GpuTicket:
    """This waiter's place in its host's queue (create, :meth:`refresh` each poll, :meth:`leave`)."""

    def __init__(self, queue_dir: Path, count: int) -> None:
        self.queue_dir = queue_dir
        queue_dir.mkdir(parents=True, exist_ok=True)
        # Nanoseconds since the epoch, zero-padded: names sort in arrival order.
        self.path = queue_dir / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-{count}.ticket"
        self.path.touch()

    def refresh(self) -> None:
        """Show this waiter is alive (and re-create the ticket if a slow poll let another waiter remove it)."""
        try:
            os.utime(self.path)
        except FileNotFoundError:
            self.path.touch()

    def is_first(self, now: float | None = None) -> bool:
        """Whether no older live ticket is ahead of this one; removes the stale ones it meets."""
        now = time.time() if now is None else now
        for ticket in sorted(self.queue_dir.glob("*.ticket")):
            if ticket.name >= self.path.name:
                return True
            try:
                if now - ticket.stat().st_mtime > STALE_AFTER_S:
                    ticket.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            return False
        return True

    def leave(self) -> None:
        self.path.unlink(missing_ok=True)
