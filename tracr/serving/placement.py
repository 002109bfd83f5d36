"""Which host a job with local models goes to: a choice from the GPU inventory each host publishes.

Each host's GPUs are Prefect limits ``tracr-gpu-<host>-<i>`` (one per GPU, limit 1;
``tasks/serving/gpu_slots.py``). The limits a host has published are its inventory; their
active slots say which are busy, and the flow runs not yet finished on each host's
work queue say how much is already sent there. A job goes to a host that can hold
its largest local server at all (enough GPUs), the least loaded one (runs sent and
not finished, plus this one, per GPU), then the larger, then by name (stable).
Usage alone would send a burst of submissions to the same host: servers take GPUs
only once they start.
No host big enough is an error before anything is submitted, not a preflight
failure on some machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tracr.errors import ErrorClass, TracrError

__all__ = ["HostGpus", "NoHostFits", "hosts_from_limits", "choose_host"]

_LIMIT = re.compile(r"^tracr-gpu-(?P<host>[a-z0-9-]+?)-(?P<index>\d+)$")


class NoHostFits(TracrError, ValueError):
    """No published host has as many GPUs as the job's largest local server needs."""

    default_class = ErrorClass.NOT_ENOUGH_GPUS


@dataclass(frozen=True)
class HostGpus:
    host: str
    count: int
    busy: int
    queued: int = 0  # flow runs on this host's queue not finished yet (scheduled, pending, running)

    @property
    def free(self) -> int:
        return self.count - self.busy


def hosts_from_limits(limits: Iterable[tuple[str, int]], queued: Mapping[str, int] | None = None) -> dict[str, HostGpus]:
    """``(limit name, active slots)`` pairs (and runs queued per host) → inventory per host; other limits are ignored."""
    count: dict[str, int] = {}
    busy: dict[str, int] = {}
    for name, active in limits:
        match = _LIMIT.match(name)
        if not match:
            continue
        host = match["host"]
        count[host] = count.get(host, 0) + 1
        busy[host] = busy.get(host, 0) + (1 if active else 0)
    return {h: HostGpus(h, count[h], busy[h], (queued or {}).get(h, 0)) for h in sorted(count)}


def choose_host(needed: int, hosts: Mapping[str, HostGpus]) -> str:
    """The host a job needing ``needed`` GPUs (its largest server) should be sent to."""
    able = [h for h in hosts.values() if h.count >= needed]
    if not able:
        known = ", ".join(f"{h.host} ({h.count})" for h in hosts.values()) or "none published"
        raise NoHostFits(f"needs {needed} GPU(s) on one host; hosts: {known}")
    return min(able, key=lambda h: ((max(h.queued, h.busy) + needed) / h.count, -h.count, h.host)).host
