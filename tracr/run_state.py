"""Run status and its allowed transitions.

A run's status is recorded in ``run_metadata.json``; refusing invalid moves (say,
``completed`` back to ``running``) keeps the record trustworthy for resume and for
the reviewer.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["RunStatus", "InvalidTransition", "check_transition", "TERMINAL_STATUSES"]


class RunStatus(str, Enum):
    QUEUED = "queued"
    WAITING_RESOURCES = "waiting_resources"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})

_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.WAITING_RESOURCES, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.WAITING_RESOURCES: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class InvalidTransition(ValueError):
    """A status change the state machine does not allow."""


def check_transition(current: RunStatus, new: RunStatus) -> RunStatus:
    """Return ``new`` if ``current → new`` is allowed, else raise :class:`InvalidTransition`."""
    if new not in _ALLOWED[current]:
        raise InvalidTransition(f"run status cannot go from {current.value} to {new.value}")
    return new
