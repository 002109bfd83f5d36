"""Running a Prefect flow from a command, with SIGTERM and Ctrl-C turned into a cancel.

Every command that runs a flow (``tracr run``, ``tracr score``) goes the same way:
:func:`connect_quietly` before Prefect is imported (the local server tracr keeps,
unless ``PREFECT_API_URL`` or ``--ephemeral``; Prefect's console kept to
warnings), :func:`announce_flow_run` as the flow's ``on_running`` hook (the UI
link), then :func:`run_flow`.

The flow runs in a worker thread with its own event loop; the main thread only
waits and takes the signals. Prefect installs its SIGTERM handler only in the
main thread, so no ``TerminationSignal`` can land in the middle of a page and
crash the flow runs: a signal asks the job to stop (:mod:`tasks.run.termination`),
the job flow cancels its runs as ``tracr cancel`` would, every record says
``cancelled`` and so does Prefect. A second signal, or a job that has not
stopped ``TRACR_STOP_GRACE_S`` seconds (default 30) after the first, exits at
once; ``--resume`` redoes whatever was not recorded.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from cli.prefect_server import connect
from tracr.local_prefect import flow_run_url

__all__ = ["run_flow", "connect_quietly", "announce_flow_run", "FlowEnd", "EXIT_CODES", "STOP_GRACE_S"]

#: Exit codes of a ``tracr run`` stopped by a signal: 128 + the signal's number, as shells report it.
EXIT_CODES = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT}
STOP_GRACE_S = 30.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class FlowEnd:
    """The flow run's final state and the signal that stopped it, if any."""

    state: Any
    signal: str | None = None


class _CancelledIsNotAnError(logging.Filter):
    """Keep Prefect's "Finished in state Cancelled" (logged as ERROR) off the console.

    A cancel is said once, by ``tracr run`` itself; the flow and task runs' own
    logs still carry the line to the API and the UI.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Finished in state Cancelled")


#: OS errors that name a condition of the machine, not a bug: said in one line.
_NAMED_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR}


def _is_named(exc: BaseException | None) -> bool:
    """Whether an exception (or one it was raised from) is a condition tracr can name: no traceback for it."""
    from tracr.errors import TracrError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, TracrError) or (isinstance(exc, OSError) and exc.errno in _NAMED_ERRNOS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class _NamedErrorsInOneLine(logging.Formatter):
    """A console formatter that leaves the traceback out of log lines about a named condition.

    A full or read-only disk fails every writer at once; each Prefect task and flow
    run would log its own traceback of the same ``OSError``. The log line itself
    (which names the error) stays, and the API and UI still get the traceback: this
    wraps only the console handler's formatter, and restores the record after use.
    A record that asks for a traceback with no exception in flight (Prefect's line
    for a task that returned a Failed state) would print ``NoneType: None``: dropped too.
    """

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info or (record.exc_info[1] is not None and not _is_named(record.exc_info[1])):
            return self.inner.format(record)  # kept: a traceback tracr cannot name; dropped: none at all ("NoneType: None")
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


def _quiet_cancel_lines() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _CancelledIsNotAnError) for f in handler.filters):
            handler.addFilter(_CancelledIsNotAnError())
        if not isinstance(handler.formatter, _NamedErrorsInOneLine):
            handler.setFormatter(_NamedErrorsInOneLine(handler.formatter))


def connect_quietly(*, ephemeral: bool = False, verbose: bool = False) -> str | None:
    """Choose the Prefect server and keep Prefect's console to warnings; call before Prefect is imported.

    Returns the API URL (None: Prefect's throwaway server, ``ephemeral``). The
    progress display or the command's own lines say the rest; the API still gets
    every log line, and ``verbose`` shows Prefect's info lines too.
    """
    api_url = connect(ephemeral=ephemeral)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    if ephemeral and api_url is None:
        from cli.ephemeral_server import start_ephemeral_server

        start_ephemeral_server()  # before any thread: it gets no key (cli/ephemeral_server.py)
    return api_url


def announce_flow_run(api_url: str | None, what: str = "job") -> Callable[..., None]:
    """An ``on_running`` hook that prints where the flow run can be watched (stderr, once it runs)."""

    def hook(flow: Any, flow_run: Any, state: Any) -> None:
        if api_url:
            print(f"watch this {what}: {flow_run_url(api_url, str(flow_run.id))}", file=sys.stderr, flush=True)
        else:
            print(f"flow run {flow_run.id} (ephemeral Prefect server: no UI after the {what} ends)", file=sys.stderr, flush=True)

    return hook


async def _awaited(call: Awaitable[Any]) -> Any:
    return await call


def _grace_s() -> float:
    try:
        return float(os.environ.get("TRACR_STOP_GRACE_S") or STOP_GRACE_S)
    except ValueError:
        return STOP_GRACE_S


def _hard_exit(name: str, why: str) -> None:
    print(f"{why}: exiting now; `tracr run CONFIG --resume` redoes the pages not recorded", file=sys.stderr, flush=True)
    os._exit(EXIT_CODES.get(name, 1))


def run_flow(call: Awaitable[Any], *, cancel_on_signal: bool = True) -> FlowEnd:
    """Run a flow call made with ``return_state=True`` to its end; returns its final state and the signal seen.

    ``cancel_on_signal=False`` runs it in this thread with Python's own signal
    handling (for flows with no cancel watcher, such as scoring).
    """
    _quiet_cancel_lines()
    if not cancel_on_signal:
        return FlowEnd(asyncio.run(_awaited(call)))
    from tasks.run.termination import clear_stop, request_stop, stop_reason

    clear_stop()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["state"] = asyncio.run(_awaited(call))
        except BaseException as exc:  # handed to the main thread, which raises it as if it ran there
            outcome["error"] = exc

    def on_signal(number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if stop_reason() is not None:
            _hard_exit(name, f"{name} again")
        request_stop(name)
        deadline[0] = time.monotonic() + _grace_s()

    deadline = [float("inf")]
    thread = threading.Thread(target=work, name="tracr-flow", daemon=True)
    previous = {sig: signal.signal(sig, on_signal) for sig in _SIGNALS}
    try:
        thread.start()
        while thread.is_alive():
            thread.join(timeout=0.2)  # short waits: the main thread runs the handlers between them
            if time.monotonic() > deadline[0] and thread.is_alive():
                _hard_exit(stop_reason() or "SIGTERM", f"the job did not stop within {_grace_s():g} s")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if "error" in outcome:
        raise outcome["error"]
    return FlowEnd(outcome.get("state"), stop_reason())
