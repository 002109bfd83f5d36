"""Run status and its allowed transitions.

A run's status is recorded in ``run_metadata.json`` with its history; refusing
invalid moves (say, ``completed`` back to ``running``) keeps the record
trustworthy for resume, events and the reviewer.

    queued → waiting_resources → starting → running → completed | failed | cancelled

``waiting_resources`` (GPU slots) and ``starting`` (a local server coming up) may
be skipped. Resuming is the one way back: an unfinished run (``failed``,
``cancelled``, a run whose process died while ``queued``…``running``, or a
``completed`` run that still has failed or missing pages) is put back to
``queued`` by :func:`check_resume`, recorded as its own history entry; a run
that completed every page is final.
"""

from __future__ import annotations

from enum import Enum

from tracr.errors import ErrorClass, TracrError

__all__ = ["RunStatus", "InvalidTransition", "check_transition", "check_resume", "TERMINAL_STATUSES", "ACTIVE_STATUSES"]


class RunStatus(str, Enum):
    QUEUED = "queued"
    WAITING_RESOURCES = "waiting_resources"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
#: Statuses of a run that some process is (or was, if it died) working on.
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.WAITING_RESOURCES, RunStatus.STARTING, RunStatus.RUNNING})

_ENDINGS = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.WAITING_RESOURCES, RunStatus.STARTING, RunStatus.RUNNING}) | _ENDINGS,
    RunStatus.WAITING_RESOURCES: frozenset({RunStatus.STARTING, RunStatus.RUNNING}) | _ENDINGS,
    RunStatus.STARTING: frozenset({RunStatus.RUNNING}) | _ENDINGS,
    RunStatus.RUNNING: frozenset({RunStatus.COMPLETED}) | _ENDINGS,
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class InvalidTransition(TracrError, ValueError):
    """A status change the state machine does not allow."""

    default_class = ErrorClass.STATE


def check_transition(current: RunStatus, new: RunStatus) -> RunStatus:
    """Return ``new`` if ``current → new`` is allowed, else raise :class:`InvalidTransition`."""
    if new not in _ALLOWED[current]:
        allowed = ", ".join(s.value for s in sorted(_ALLOWED[current], key=list(RunStatus).index)) or "nothing (final)"
        raise InvalidTransition(f"run status cannot go from {current.value} to {new.value} (allowed: {allowed})")
    return new


def check_resume(current: RunStatus, *, pages_left: bool = False) -> RunStatus:
    """The status a resumed run restarts from (``queued``).

    A completed run resumes only when ``pages_left`` (some page failed or was never
    written): resume then finishes exactly those pages, in place.
    """
    if current == RunStatus.COMPLETED and not pages_left:
        raise InvalidTransition("run status cannot go from completed back to queued: every page is done, nothing to resume")
    return RunStatus.QUEUED
