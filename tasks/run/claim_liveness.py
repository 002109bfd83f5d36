"""Judging another host's claim by its flow run on the Prefect server, not by a pid.

A claim's pid means nothing on another host (or in another PID namespace under
this host id: containers, ``unshare``), so its liveness is its flow run's:
a run in an end state (``Crashed`` by ``tasks.run.crash_detection`` after its process
died, or ``Cancelled``/``Failed``/``Completed`` without releasing the claim) no
longer holds it. A claim without a flow run id, or one the server cannot answer
for, is assumed live: refusing a duplicate is the safe mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.exceptions import ObjectNotFound

from tracr.run.claims import RemoteLiveness, read_claim
from tracr.serving.host import pids_are_ours

__all__ = ["flow_run_holds_claim", "remote_claim_judge"]


async def flow_run_holds_claim(flow_run_id: str | None) -> bool:
    """Whether the flow run that took a claim may still be running (not in an end state)."""
    if not flow_run_id:
        return True
    try:
        async with get_client() as client:
            run = await client.read_flow_run(UUID(flow_run_id))
    except (ValueError, ObjectNotFound):
        return True
    return run.state is None or not run.state.is_final()


async def remote_claim_judge(root: Path, digest: str) -> RemoteLiveness:
    """Ask the server now about the current holder of ``digest``; the judge then answers for that claim.

    The claim is re-read under the claims lock by ``try_claim``; a different claim
    found there (taken meanwhile) is assumed live.
    """
    holder = read_claim(root, digest)
    if holder is None or pids_are_ours(holder.get("host"), holder.get("pid_ns")):
        return lambda claim: True
    running = await flow_run_holds_claim(holder.get("flow_run_id"))
    token = holder.get("token")

    def judge(claim: dict[str, Any]) -> bool:
        return running if claim.get("token") == token else True

    return judge
