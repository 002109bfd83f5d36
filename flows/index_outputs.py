"""The ``index-outputs`` flow: refresh the DuckDB index of an outputs root.

Deploy it on a schedule, or run it after jobs; ``ocr-job`` also refreshes the
index when it ends. The index is derived, so running this as often as you like
is safe: an unchanged tree costs a few stats and writes nothing.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import Failed, State

from tasks.index_outputs import index_outputs_state
from tracr.outputs.layout import outputs_root

__all__ = ["index_outputs_flow"]


@flow(name="index-outputs", validate_parameters=True)
async def index_outputs_flow(outputs: str | None = None, rebuild: bool = False) -> dict[str, Any] | State:
    """Refresh ``<outputs>/index.duckdb`` (default outputs root when not given).

    An index that cannot be written fails the flow run with the task's one-line
    message (no traceback for a full disk).
    """
    root = outputs_root(outputs)
    state = await index_outputs_state(str(root), rebuild=rebuild)
    if not state.is_completed():
        return Failed(message=state.message)
    stats: dict[str, Any] = await state.aresult()
    return stats
