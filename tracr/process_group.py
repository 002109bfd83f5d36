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

__all__ = ["group_alive", "terminate_group"]


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def terminate_group(process: subprocess.Popen, grace_s: float = 10.0) -> int | None:
    """SIGTERM the group led by ``process``, wait for every member, SIGKILL what remains.

    Returns the leader's exit code.
    """
    pgid = process.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return process.wait()
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so the group can empty
        if not group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.wait()
