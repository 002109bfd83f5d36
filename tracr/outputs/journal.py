"""The page journal: one JSON line per finished page attempt, per PDF of a run.

``pages.jsonl`` is the source of truth for what a run did; metadata, metrics, the
index, resume and export all read it through this module. Lines are appended with
one ``write`` each (:func:`tracr.outputs.files.append_line`), and the last line
written for a page wins; a torn trailing line (power loss) is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from tracr.outputs.files import JSONError, append_line, json_loads, read_bytes
from tracr.outputs.timestamps import utc_now

__all__ = [
    "PageRecord",
    "PageStatus",
    "pdf_metadata_text",
    "append_record",
    "latest_entries",
    "latest_lines",
    "read_page_journal",
    "latest_page_records",
]

PageStatus = Literal["done", "failed"]


@dataclass(slots=True)
class PageRecord:
    """What happened to one page for one model run."""

    page: int
    status: PageStatus
    attempts: int = 0
    latency_s: float | None = None
    ttft_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    chars: int = 0
    truncated: bool = False  # the model stopped at its token limit (finish_reason "length"): text may be cut off
    capped_at: int | None = None  # the stored text was cut to this many characters (a runaway output)
    error: str | None = None
    error_class: str | None = None
    dropped: list[str] | None = None  # page furniture the family's parser left out (page_header, page_number...)
    reply_meta: dict[str, Any] | None = None  # what the family reports besides the text (olmOCR's rotation, a repaired JSON)
    finished_at: str = field(default_factory=utc_now)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def pdf_metadata_text(header: dict[str, Any], page_lines: list[str]) -> str:
    """``pdf_metadata.json``: the header, then ``pages`` as the journal's own lines, one per line.

    Reusing the journal lines verbatim keeps frequent rewrites cheap (no re-encoding)
    and the file readable.
    """
    head = json.dumps(header, indent=2, ensure_ascii=False)[:-2]  # drop the closing "\n}"
    if not page_lines:
        return f'{head},\n  "pages": []\n}}\n'
    pages = ",\n    ".join(page_lines)
    return f'{head},\n  "pages": [\n    {pages}\n  ]\n}}\n'


def append_record(path: Path, record: PageRecord) -> str:
    """Append ``record`` to the journal at ``path``; returns the line written."""
    line = record.to_json()
    append_line(path, line)
    return line


def _parsed_lines(raw: bytes) -> Iterable[tuple[int, dict[str, Any], bytes]]:
    """``(page, record, line)`` for every parsable line; torn or foreign lines are skipped."""
    for line in raw.splitlines():
        try:
            record = json_loads(line)
            page = record["page"]
        except (JSONError, ValueError, TypeError, KeyError):
            continue
        if type(page) is int and page >= 1:
            yield page, record, line


def latest_entries(path: str | Path) -> dict[int, dict[str, Any]]:
    """Page number -> its last journal record as a plain dict (the index's fast path)."""
    raw = read_bytes(path)
    if raw is None:
        return {}
    return {page: record for page, record, _ in _parsed_lines(raw)}


def latest_lines(path: str | Path) -> dict[int, tuple[PageRecord, str]]:
    """Page number -> ``(record, journal line)`` of its last record (resume copies the line verbatim)."""
    raw = read_bytes(path)
    if raw is None:
        return {}
    latest: dict[int, tuple[PageRecord, str]] = {}
    for page, record, line in _parsed_lines(raw):
        try:
            latest[page] = (PageRecord.from_dict(record), line.decode("utf-8"))
        except (TypeError, UnicodeDecodeError):
            continue
    return latest


def read_page_journal(path: str | Path) -> list[PageRecord]:
    """Every record in a page journal, in the order written."""
    raw = read_bytes(path)
    if raw is None:
        return []
    records = []
    for _, record, _ in _parsed_lines(raw):
        try:
            records.append(PageRecord.from_dict(record))
        except TypeError:
            continue
    return records


def latest_page_records(records: Iterable[PageRecord]) -> list[PageRecord]:
    """One record per page (the last written wins), sorted by page."""
    latest: dict[int, PageRecord] = {}
    for record in records:
        latest[record.page] = record
    return [latest[page] for page in sorted(latest)]
