"""The job's input list: ``<job_id>/inputs.jsonl``, one JSON line per input PDF.

The list grows with the job (megabytes at tens of thousands of PDFs), while
``job_metadata.json`` is read and rewritten whole several times per job and by
every index refresh; so the list lives in its own file, written once when the job
starts, and ``job_metadata.json`` keeps only its :class:`InputsSummary` under
``inputs``. Jobs written before the file existed kept the list itself there, and
:func:`iter_job_inputs` still reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TypedDict

from tracr.outputs.files import json_objects, read_json, write_chunks_atomic
from tracr.outputs.layout import JOB_INPUTS, OutputLayout

__all__ = ["INPUT_KEYS", "InputsSummary", "write_job_inputs", "iter_job_inputs", "read_job_inputs"]

#: The keys of one line, in this order; a row's other keys are not written.
INPUT_KEYS = ("pdf_slug", "path", "page_count", "pages_selected", "error")


class InputsSummary(TypedDict):
    """What ``job_metadata.json`` says of the input list: where it is and its totals."""

    file: str
    pdfs: int
    broken: int  # PDFs with an error (not readable, encrypted): the job skips them
    pages_selected: int


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _lines(rows: Iterable[dict[str, Any]], summary: InputsSummary) -> Iterator[bytes]:
    """Each row as one JSON line, adding it to ``summary`` as it goes."""
    for row in rows:
        line = {key: row.get(key) for key in INPUT_KEYS}
        summary["pdfs"] += 1
        summary["broken"] += bool(line["error"])
        summary["pages_selected"] += _count(line["pages_selected"])
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


def write_job_inputs(layout: OutputLayout, job_id: str, rows: Iterable[dict[str, Any]]) -> InputsSummary:
    """Replace the job's ``inputs.jsonl`` with ``rows`` (atomically, durably); returns its summary for ``job_metadata.json``.

    Rows are encoded one at a time, so a long list is never one string in memory.
    """
    path = layout.job_inputs(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = InputsSummary(file=JOB_INPUTS, pdfs=0, broken=0, pages_selected=0)
    write_chunks_atomic(path, _lines(rows, summary), durable=True)
    return summary


def _metadata_rows(layout: OutputLayout, job_id: str) -> Iterator[dict[str, Any]]:
    """The list a job written before ``inputs.jsonl`` kept in ``job_metadata.json``; nothing when it holds a summary."""
    listed = (read_json(layout.job_metadata(job_id)) or {}).get("inputs")
    if isinstance(listed, list):
        yield from (row for row in listed if isinstance(row, dict))


def iter_job_inputs(layout: OutputLayout, job_id: str) -> Iterator[dict[str, Any]]:
    """The job's input rows in the order written, read a line at a time; ``inputs.jsonl`` if there, else the old list."""
    try:
        handle = open(layout.job_inputs(job_id), "rb")
    except (FileNotFoundError, NotADirectoryError):
        yield from _metadata_rows(layout, job_id)
        return
    with handle:
        yield from json_objects(handle)


def read_job_inputs(layout: OutputLayout, job_id: str) -> list[dict[str, Any]]:
    """Every input row of the job, as :func:`iter_job_inputs` yields them."""
    return list(iter_job_inputs(layout, job_id))
