"""The one notion of "this host" that GPU limits, server records, claims, sweeps and votes share.

Several machines share one Prefect server and one outputs root, so every file
or limit that belongs to a machine is named by this id. ``TRACR_GPU_HOST`` wins
(a worker's name, or a stable name where the hostname is random, as in a
container); otherwise the hostname. Either is lowercased to ``[a-z0-9-]`` so it
fits a concurrency-limit name, a file name and a work-queue name alike.

A pid means something only on the host (and PID namespace) that wrote it, so
code that judges liveness by pid must first check :func:`is_this_host`.
"""

from __future__ import annotations

import os
import re
import socket

__all__ = ["HOST_ENV", "host_id", "normalise_host", "is_this_host"]

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
