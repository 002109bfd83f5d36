"""Which process listens on a local TCP port, so a port that is taken can be said to be taken *by whom*.

Read from Linux's ``/proc`` (the socket table, then each process's open files);
elsewhere, or for a process of another user or PID namespace, nothing is found
and the caller says "another process".
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["listener_pid", "command_of"]

_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` on any local address (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found - {"0"}


def listener_pid(port: int) -> int | None:
    """The pid of a process that listens on ``port``, or None when none can be seen."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(entry / "fd" / fd) in inodes:
                    return int(entry.name)
            except OSError:
                continue
    return None


def command_of(pid: int, limit: int = 100) -> str | None:
    """A process's command line, shortened to ``limit`` characters; None when it cannot be read."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    text = " ".join(part.decode(errors="replace") for part in argv if part)
    return (text[: limit - 1] + "…" if len(text) > limit else text) or None
