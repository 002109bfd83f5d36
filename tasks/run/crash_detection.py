"""Crash detection: a tracr flow run whose process died is marked ``Crashed`` on the Prefect server.

A SIGKILLed job (or a machine that lost power) leaves its flow runs ``Running``
for ever: nothing is left to report an end state. Every flow run's engine emits
a ``prefect.flow-run.heartbeat`` event every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
seconds (tracr's processes default it to 30 s), so a proactive automation that
expects the next heartbeat (or an end state) within a few beats marks the silent
ones ``Crashed`` (Prefect's documented zombie-flow recipe). Then their claims
are stale from any host (``tasks.run.claim_liveness``) and ``--resume`` works without
a manual cancel.

The automation covers tracr's own flows only (matched by flow name), never other
flows sharing the server, whose heartbeat settings tracr does not know. Its
window is :data:`BEATS_MISSED` beats of the slowest heartbeat any tracr process
has declared so far: a process with slower beats widens it, never narrows it.
"""

from __future__ import annotations

import os
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import get_current_settings

__all__ = [
    "crash_detection_enabled",
    "CRASH_DETECTION_ENV",
    "AUTOMATION_NAME",
    "TRACR_FLOWS",
    "BEATS_MISSED",
    "HEARTBEAT_ENV",
    "DEFAULT_HEARTBEAT_S",
    "ensure_crash_detection",
]

AUTOMATION_NAME = "tracr: mark silent flow runs Crashed"
#: The flows tracr runs; the automation matches their heartbeats and end states by flow name.
TRACR_FLOWS = ["ocr-job", "ocr-model-run", "local-model-server", "score-job", "index-outputs"]
#: Heartbeats missed in a row before a run counts as dead.
BEATS_MISSED = 3
HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
#: What tracr's own processes (``tracr run``, deployments) use unless told otherwise; Prefect's minimum.
DEFAULT_HEARTBEAT_S = 30

#: ``0`` turns it off (the test suite does, on its shared SQLite server; see docs/deployments.md).
CRASH_DETECTION_ENV = "TRACR_CRASH_DETECTION"

_ENDED = ("Completed", "Failed", "Cancelled", "Crashed")
_ensured_window_s: float | None = None


def crash_detection_enabled() -> bool:
    """Whether jobs set the automation up (on unless ``TRACR_CRASH_DETECTION=0``)."""
    return os.environ.get(CRASH_DETECTION_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _heartbeat_s() -> int:
    """This process's heartbeat interval (Prefect's setting; ``None`` disables heartbeats)."""
    value = get_current_settings().flows.heartbeat_frequency
    return max(int(value), DEFAULT_HEARTBEAT_S) if value else 0


def _automation(window_s: float) -> Automation:
    return Automation(
        name=AUTOMATION_NAME,
        description=(
            f"tracr flow runs that send no heartbeat for {window_s:.0f} s ({BEATS_MISSED} beats) lost their process: "
            "marked Crashed, so their claims are stale and --resume continues them (tasks/run/crash_detection.py)."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in _ENDED)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": TRACR_FLOWS}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=window_s),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=f"no heartbeat for {window_s:.0f} s: the process running it died")],
    )


async def ensure_crash_detection() -> float | None:
    """Create (or widen) the automation for this process's heartbeat interval; returns its window in seconds.

    ``None`` when this process sends no heartbeats (then nothing may be judged by
    their absence). Idempotent and cheap after the first call in a process.
    """
    global _ensured_window_s
    beat = _heartbeat_s()
    if not beat:
        return None
    wanted = float(beat * BEATS_MISSED)
    if _ensured_window_s is not None and _ensured_window_s >= wanted:
        return _ensured_window_s
    try:
        current = await Automation.aread(name=AUTOMATION_NAME)
    except ValueError:  # not there yet
        created = await _automation(wanted).acreate()
        _ensured_window_s = created.trigger.within.total_seconds() if isinstance(created.trigger, EventTrigger) else wanted
        return _ensured_window_s
    have = current.trigger.within.total_seconds() if isinstance(current.trigger, EventTrigger) else 0.0
    if have < wanted:
        replacement = _automation(wanted)
        current.trigger, current.actions, current.description = replacement.trigger, replacement.actions, replacement.description
        await current.aupdate()
        have = wanted
    _ensured_window_s = have
    return have
