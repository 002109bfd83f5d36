"""Which pages to vote on or judge next: one collection's, or the least settled collection's (docs/collections.md)."""

from __future__ import annotations

from tracr.config.collections import ALL
from tracr.reporting.job_data import JobData, ReportInputError
from tracr.reporting.rankings import collection_boards, unresolved_collections

__all__ = ["UNSETTLED", "collection_pages", "focus_pages"]

UNSETTLED = "unsettled"
"""Asks for the collection whose ranking is least settled."""


def collection_pages(data: JobData, name: str) -> set[tuple[str, int]]:
    """The ``(pdf_slug, page)`` of collection ``name`` (``all``: every page)."""
    keys = data.page_keys()
    if name == ALL:
        return set(keys)
    return {(pdf, page) for pdf, page in keys if name in data.collections.of(pdf, page)}


def focus_pages(
    data: JobData, name: str, *, metric: str = "human votes", rounds: int = 200, seed: int = 0
) -> tuple[str, set[tuple[str, int]]]:
    """``(collection, its pages)`` for ``name``, or for the least-voted unsettled collection when ``name`` is ``unsettled``.

    An unknown name is a :class:`ReportInputError` listing the job's collections; when
    every collection is settled, ``unsettled`` gives the whole job.
    """
    if name == UNSETTLED:
        open_ = unresolved_collections(collection_boards(data, rounds=rounds, seed=seed), metric)
        name = open_[0] if open_ else ALL
    pages = collection_pages(data, name)
    if not pages:
        known = ", ".join(data.collections.names) or "none"
        raise ReportInputError(f"job {data.job_id} has no collection {name!r} (its collections: {known}; or {ALL!r}, {UNSETTLED!r})")
    return name, pages
