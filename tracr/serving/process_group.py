"""Stopping a server and everything it forked.

Servers (vLLM, the built-in OCR server, test stubs) start in their own session,
so their process group holds their children too. Children can outlive the leader
by seconds (vLLM's EngineCore), so the group is polled until empty rather than
checked once.

Children must also die with the process that started them: Prefect does not kill
them, so a SIGKILLed job would leave a server holding a GPU and render workers
holding memory. :func:`die_with_parent` (a ``preexec_fn`` for servers) asks the
kernel to SIGTERM the child when its parent dies; :func:`exit_with_parent` (a
pool initializer) makes a Python worker exit once it has been orphaned.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

__all__ = ["group_alive", "stop_group", "terminate_group", "die_with_parent", "exit_with_parent", "start_pool_worker"]

_PR_SET_PDEATHSIG = 1
#: Resolved in the parent: a forked child must not load libraries (another thread may hold the loader's lock).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_group(pgid: int, grace_s: float = 10.0, reap: Callable[[], object] = lambda: None) -> bool:
    """SIGTERM group ``pgid``, wait until every member is gone, SIGKILL what remains after ``grace_s``.

    ``reap`` collects the leader's exit status when this process is its parent
    (a zombie leader keeps its group alive). Returns whether SIGKILL was needed.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        reap()
        if not group_alive(pgid):
            return False
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def terminate_group(process: subprocess.Popen, grace_s: float = 10.0) -> int | None:
    """:func:`stop_group` for the group led by ``process``; returns the leader's exit code."""
    stop_group(process.pid, grace_s, process.poll)
    return process.wait()


def die_with_parent() -> None:
    """In a forked child before exec: SIGTERM me when my parent dies (Linux ``PR_SET_PDEATHSIG``; kept across exec).

    The signal follows the parent *thread* that forked, so servers are started from
    the flow's event-loop thread, which lives as long as the job. SIGTERM, not
    SIGKILL, so a server such as vLLM still stops the children it forked.
    """
    if _PRCTL is None:
        return
    parent = os.getppid()
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """In a pool worker started by ``parent_pid``: be SIGKILLed by the kernel when it dies, and poll as a backstop.

    SIGKILL, since workers leave SIGTERM to their job. The polling thread covers a
    parent thread that exits while the process lives on (the kernel signal follows
    the thread that spawned the worker); it cannot help once the worker's own
    interpreter is shutting down, which is why the kernel's signal comes first.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def start_pool_worker(parent_pid: int) -> None:
    """A pool worker's initializer: stop signals are the parent's to handle; exit once the parent is gone.

    A terminal closing signals the whole process group: workers dying at once
    would fail every page still waiting for a render instead of letting the job
    cancel cleanly, so they leave SIGTERM and Ctrl-C to the job, which shuts them
    down once its pages stopped. Kept here, with nothing but the standard library
    imported, so a worker loads only what it runs.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent_pid)
