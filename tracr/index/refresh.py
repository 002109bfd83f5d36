"""The index refresh as a child process runs it: plain data back, DuckDB loaded only there.

The job process hands the refresh to a short-lived child (``tasks/index_outputs.py``)
so DuckDB's memory leaves with it. This module is what the child imports: no
Prefect and no DuckDB at import time, and its result and its error unpickle in
the parent without loading either.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["IndexUnwritable", "refresh_as_data"]


class IndexUnwritable(Exception):
    """The index's files cannot be read or written; the message says which and why."""


def refresh_as_data(outputs: Path, rebuild: bool) -> tuple[str, dict[str, Any]]:
    """:func:`tracr.index.store.refresh_index`'s one-line summary and stats; an unwritable index raises :class:`IndexUnwritable`."""
    import duckdb

    from tracr.index.store import refresh_index

    try:
        stats = refresh_index(outputs, rebuild=rebuild)
    except (OSError, duckdb.Error) as exc:
        raise IndexUnwritable(str(exc)) from None
    return stats.summary(), asdict(stats)
