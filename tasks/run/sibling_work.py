"""A run's PDFs as one task group: they end together, before the endpoint closes.

With ``asyncio.gather`` one PDF's failure ended the run while the other PDFs
went on, after the client was closed: their pages were recorded as
``Cannot send a request, as the client has been closed`` after the run wrote
its final records. Here every sibling is cancelled and awaited before the
failure (or a cancel) leaves :func:`all_or_none`, so whoever closes the client
and writes the final records does so once nothing runs any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tracr.errors import TracrError

__all__ = ["all_or_none", "first_cause"]

T = TypeVar("T")


def first_cause(group: BaseExceptionGroup[BaseException], prefer: tuple[type[BaseException], ...] = ()) -> BaseException:
    """The one error a failed group stands for: a ``prefer`` type first, then a named (tracr) error, then any."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for wanted in (*prefer, TracrError):
        for leaf in leaves:
            if isinstance(leaf, wanted):
                return leaf
    return leaves[0]


async def _watch(death: Callable[[], BaseException | None], work: Sequence[asyncio.Task[T]], interval_s: float) -> None:
    """Raise the death (ending the group) once ``death()`` names one, while any work runs."""
    while not all(task.done() for task in work):
        await asyncio.sleep(interval_s)
        if (died := death()) is not None:
            raise died


async def _run(work: Awaitable[T]) -> T:
    return await work


async def all_or_none(
    works: Sequence[Awaitable[T]],
    death: Callable[[], BaseException | None] = lambda: None,
    interval_s: float = 0.25,
    prefer: tuple[type[BaseException], ...] = (),
) -> list[T]:
    """Every result of ``works`` in order, or, on the first error or death, the error once all of them stopped.

    A cancel from outside cancels them all and waits for them too, then raises
    ``CancelledError``. The error raised is picked by :func:`first_cause`.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_run(work)) for work in works]
            group.create_task(_watch(death, tasks, interval_s))
    except BaseExceptionGroup as failed:
        raise first_cause(failed, prefer) from None
    return [task.result() for task in tasks]
