"""Stopping a server and everything it forked.

Servers (vLLM, the built-in OCR server, test stubs) start in their own session,
so their process group holds their children too. Children can outlive the leader
by seconds (vLLM's EngineCore), so the group is polled until empty rather than
checked once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

__all__ = ["group_alive", "stop_group", "terminate_group"]


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
