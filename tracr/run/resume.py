"""What a resumed run may skip (pages already written) and which runs have pages left.

A page is finished when its latest journal line says ``done`` and its markdown
file exists; failed pages (and done pages whose file went missing) are redone,
also in a run that completed with failures.
The journal is read once and the folder listed once, so skipping ten thousand
pages costs milliseconds, not a stat per page.
"""

from __future__ import annotations

import os
from typing import Any

from tracr.outputs.files import read_json
from tracr.outputs.journal import PageRecord, latest_lines
from tracr.outputs.layout import OutputLayout, RunLocation
from tracr.run.state import RunStatus

__all__ = ["finished_pages", "pages_left", "resumable_run"]


def finished_pages(location: RunLocation, pdf_slug: str) -> dict[int, tuple[PageRecord, str]]:
    """``{page: (record, journal line)}`` of every finished page of one PDF in a run."""
    try:
        names = set(os.listdir(location.pdf_dir(pdf_slug)))
    except FileNotFoundError:
        return {}
    latest = latest_lines(location.page_journal(pdf_slug))
    return {page: item for page, item in latest.items() if item[0].status == "done" and f"{page}.md" in names}


def pages_left(run_metadata: dict[str, Any]) -> bool:
    """Whether a run's record says some page failed or was never written."""
    rollup = run_metadata.get("rollup") or {}
    total, done = int(rollup.get("pages_total") or 0), int(rollup.get("pages_done") or 0)
    return int(rollup.get("pages_failed") or 0) > 0 or done < total


def resumable_run(layout: OutputLayout, job_id: str, model_slug: str) -> tuple[int | None, str | None]:
    """``(run number, status)`` of the model's latest run if it has pages left, else ``(None, status)``.

    Pages are left in any run that did not complete (a crashed process leaves
    ``running`` behind) and in a completed run with failed or missing pages, so
    ``--resume`` finishes exactly those. ``(None, None)``: the model has no run yet.
    """
    numbers = layout.run_numbers(job_id, model_slug)
    if not numbers:
        return None, None
    meta = read_json(layout.run(job_id, model_slug, numbers[-1]).run_metadata) or {}
    status = meta.get("status", RunStatus.QUEUED.value)
    finished = status == RunStatus.COMPLETED.value and not pages_left(meta)
    return (None if finished else numbers[-1]), status
