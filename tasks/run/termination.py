"""A stop request from this process's own signals (SIGTERM, Ctrl-C), seen by the job flow as a cancel.

``tracr run`` runs its flow in a worker thread and keeps the signals in the main
thread (``cli/running.py``); Prefect installs no handler of its own off the main
thread, so a signal cannot surface as a ``TerminationSignal`` in the middle of a
page. The main thread calls :func:`request_stop`; the job flow's cancel watcher
(:func:`tasks.run.cancellation.run_until_cancelled`) waits on :func:`stop_requested`
and cancels the runs exactly as ``tracr cancel`` does, so the records and
Prefect's states say ``cancelled`` alike.

Under a runner (a served deployment) the flow runs in the main thread and the
runner's cancel arrives as SIGTERM, which Prefect raises as ``TerminationSignal``
wherever that thread happens to be; :data:`STOPS` lets the page, PDF and run
code treat it as the cancel it is.
"""

from __future__ import annotations

import asyncio
import threading

from prefect.exceptions import TerminationSignal

__all__ = ["STOPS", "TerminationSignal", "is_stop", "request_stop", "stop_reason", "stop_requested", "clear_stop", "STOP_POLL_S"]

#: How often the job flow looks at the flag: a stop is acted on within this.
STOP_POLL_S = 0.1

#: What a stop looks like from inside a run: a cancel, or the runner's SIGTERM raised by Prefect.
STOPS: tuple[type[BaseException], ...] = (asyncio.CancelledError, TerminationSignal)

_requested = threading.Event()
_reason: list[str] = []


def is_stop(exc: BaseException) -> bool:
    return isinstance(exc, STOPS)


def request_stop(reason: str) -> None:
    """Ask the running job (if any) to cancel; safe from a signal handler or any thread."""
    if not _requested.is_set():
        _reason[:] = [reason]
        _requested.set()


def stop_reason() -> str | None:
    """Why a stop was requested (``"SIGTERM"``, ``"SIGINT"``), or ``None``."""
    return _reason[0] if _requested.is_set() and _reason else None


def clear_stop() -> None:
    """Forget a stop request (a new job in the same process, tests)."""
    _requested.clear()
    _reason.clear()


async def stop_requested(poll_s: float = STOP_POLL_S) -> str:
    """Return (the reason) once a stop was requested; polled, as a signal handler cannot await."""
    while not _requested.is_set():  # noqa: ASYNC110 - set from a signal handler in another thread: no asyncio.Event to await
        await asyncio.sleep(poll_s)
    return stop_reason() or "stop"
