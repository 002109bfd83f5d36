"""Start and stop tracr's server processes (stub, built-in OCR) from tests and tools.

Servers are real subprocesses so that tests exercise real sockets, and each
runs in its own session / process group so that stopping it also stops any
children and never signals the caller's own group.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import IO

from tracr.errors import ErrorClass, TracrError
from tracr.serving.process_group import terminate_group

READY_RE = re.compile(rb"TRACR_SERVER_READY port=(\d+)\r?\n")
_TAIL_LINES = 200
_OUTPUT: dict[int, tuple[deque[str], threading.Thread]] = {}


class ServerStartError(TracrError, RuntimeError):
    """The server exited or stayed silent before announcing its port."""

    default_class = ErrorClass.SERVER_START


def start_server_process(
    args: Sequence[str],
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Run ``python -m <args[0]> <args[1:]>`` and wait for its READY line.

    ``args`` is the module followed by its arguments, e.g.
    ``["tracr.testing.openai_stub", "--port", "0"]``.  stderr is merged into
    stdout so a failed start can report what the server said; after READY a
    daemon thread keeps draining it (see ``process_output``) so a chatty server
    never blocks on a full pipe.  Returns the process and its port.
    """
    cmd = [sys.executable, "-m", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        bufsize=0,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while not (m := READY_RE.search(buf)):
            left = deadline - time.monotonic()
            if left <= 0:
                stop_process_group(proc)
                raise ServerStartError(f"{cmd} not ready after {timeout}s; output:\n{buf.decode(errors='replace')}")
            if not sel.select(left):
                continue
            data = os.read(fd, 65536)
            if not data:  # EOF: the process exited (or closed its output)
                stop_process_group(proc, timeout=5)
                raise ServerStartError(f"{cmd} exited with {proc.returncode} before READY; output:\n{buf.decode(errors='replace')}")
            buf += data
    tail = deque(buf.decode(errors="replace").splitlines(), maxlen=_TAIL_LINES)
    drainer = threading.Thread(target=_drain, args=(proc.stdout, tail), daemon=True)
    drainer.start()
    _OUTPUT[proc.pid] = (tail, drainer)
    return proc, int(m.group(1))


def process_output(proc: subprocess.Popen[bytes]) -> str:
    """The last lines a started server printed (for failure messages)."""
    tail, _ = _OUTPUT.get(proc.pid, ((), None))
    return "\n".join(tail)


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    """Read the server's output until EOF, keeping the last lines."""
    try:
        for line in iter(stream.readline, b""):
            tail.append(line.decode(errors="replace").rstrip("\n"))
    except (OSError, ValueError):  # stream closed under us
        pass


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    """SIGTERM the process's group, wait up to ``timeout``, then SIGKILL it.

    Returns the exit code (None if it could not be reaped).
    """
    terminate_group(proc, timeout)
    entry = _OUTPUT.get(proc.pid)
    if entry is not None:
        entry[1].join(timeout=2)
    if proc.stdout is not None and (entry is None or not entry[1].is_alive()):
        proc.stdout.close()
    return proc.returncode


def wait_until_http_ok(url: str, proc: subprocess.Popen[bytes], *, timeout: float = 120.0, what: str = "server") -> None:
    """Poll ``url`` until it answers 200; fail at once, with the exit code, if ``proc`` exits first.

    For servers that announce no READY line (a Prefect server started by hand).
    """
    import httpx  # only the callers that wait on HTTP need it

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"{what} exited with code {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServerStartError(f"{what} did not answer {url} within {timeout:.0f} s")
