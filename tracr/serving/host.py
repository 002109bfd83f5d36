"""The one notion of "this host" that GPU limits, server records, claims, sweeps and votes share.

Several machines share one Prefect server and one outputs root, so every file
or limit that belongs to a machine is named by this id. ``TRACR_GPU_HOST`` wins
(a worker's name, or a stable name where the hostname is random, as in a
container); otherwise the hostname. Either is lowercased to ``[a-z0-9-]`` so it
fits a concurrency-limit name, a file name and a work-queue name alike.

A pid means something only on the host and in the PID namespace that wrote it:
two workers in their own PID namespaces (containers, ``unshare``) hand out the
same small pids, even under one host id (the flow-run containers of one Docker
host share ``TRACR_GPU_HOST``). So a file that records a pid also records
:func:`pid_namespace`, is named so that no other namespace's file has its name,
and is judged by pid only where :func:`pids_are_ours` says so.
"""

from __future__ import annotations

import os
import re
import socket

__all__ = ["HOST_ENV", "host_id", "normalise_host", "is_this_host", "pid_namespace", "pids_are_ours"]

HOST_ENV = "TRACR_GPU_HOST"


def normalise_host(raw: str) -> str:
    """``raw`` as a host id: lowercase letters, digits and dashes (``"host"`` if nothing is left)."""
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-") or "host"


def host_id() -> str:
    """This host's id: ``TRACR_GPU_HOST``, else the hostname, normalised."""
    return normalise_host(os.environ.get(HOST_ENV) or socket.gethostname())


def is_this_host(recorded: str | None) -> bool:
    """Whether a record's host is this one; records from before host ids (``None``, ``""``) count as local."""
    return not recorded or normalise_host(recorded) == host_id()


def pid_namespace() -> str:
    """This process's PID namespace: the inode of ``/proc/self/ns/pid`` (``""`` where Linux does not say)."""
    try:
        link = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    match = re.fullmatch(r"pid:\[([0-9]+)\]", link)
    return match.group(1) if match else ""


def pids_are_ours(host: str | None, pid_ns: str | None) -> bool:
    """Whether a pid recorded by ``host`` in PID namespace ``pid_ns`` names a process of this one.

    Another host's pids never do; this host's do unless the record names another
    PID namespace (one that is not known, in records from before, counts as this one).
    """
    if not is_this_host(host):
        return False
    mine = pid_namespace()
    return not pid_ns or not mine or str(pid_ns) == mine
