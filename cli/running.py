"""Running a Prefect flow from a command and getting its final state back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

__all__ = ["run_flow"]


async def _awaited(call: Awaitable[Any]) -> Any:
    return await call


def run_flow(call: Awaitable[Any]) -> Any:
    """Run a flow call made with ``return_state=True`` to its end; returns the flow run's final state."""
    return asyncio.run(_awaited(call))
