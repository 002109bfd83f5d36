"""Metadata records and their rollups, shared by every level of the output tree.

Page records are kept in a per-PDF journal as they finish; rollups (pages done and
failed, tokens, seconds, pages/s) are derived from them at PDF level and summed
upward to run, model and job, so every level answers "how did it go" on its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal

__all__ = ["PageRecord", "Rollup", "busy_seconds", "iso_utc", "utc_now", "pdf_metadata_text", "read_json", "read_page_journal", "latest_page_records"]

PageStatus = Literal["done", "failed"]


def iso_utc(moment: datetime) -> str:
    """``moment`` (timezone-aware, UTC) as written in every metadata file: ISO-8601, milliseconds, ``Z``."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """The current time as :func:`iso_utc` writes it."""
    return iso_utc(datetime.now(timezone.utc))


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
    error: str | None = None
    error_class: str | None = None
    finished_at: str = field(default_factory=utc_now)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PageRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(slots=True)
class Rollup:
    """Counters that add up from pages to PDFs, runs, models and jobs."""

    pages_total: int = 0
    pages_done: int = 0
    pages_failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    ocr_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add_page(self, record: PageRecord) -> None:
        if record.status == "done":
            self.pages_done += 1
        else:
            self.pages_failed += 1
        self.input_tokens += record.input_tokens or 0
        self.output_tokens += record.output_tokens or 0
        self.ocr_seconds += record.latency_s or 0.0

    def add(self, other: "Rollup") -> None:
        """Sum another rollup in (wall time adds too: callers measuring a span overwrite it)."""
        self.pages_total += other.pages_total
        self.pages_done += other.pages_done
        self.pages_failed += other.pages_failed
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.ocr_seconds += other.ocr_seconds
        self.wall_seconds += other.wall_seconds

    @property
    def pages_finished(self) -> int:
        return self.pages_done + self.pages_failed

    @property
    def pages_per_s(self) -> float:
        return round(self.pages_done / self.wall_seconds, 3) if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ocr_seconds"] = round(self.ocr_seconds, 3)
        data["wall_seconds"] = round(self.wall_seconds, 3)
        data["pages_per_s"] = self.pages_per_s
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Rollup":
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def total(cls, rollups: Iterable["Rollup"]) -> "Rollup":
        out = cls()
        for rollup in rollups:
            out.add(rollup)
        return out


def busy_seconds(spans: Iterable[tuple[str | None, str | None]]) -> float:
    """Seconds during which at least one span was open (overlaps counted once).

    Runs of different models overlap; adding their wall times would halve a
    job's pages/s. Spans with a missing end are ignored.
    """
    intervals = sorted(
        (datetime.fromisoformat(start.replace("Z", "+00:00")), datetime.fromisoformat(end.replace("Z", "+00:00")))
        for start, end in spans
        if start and end
    )
    total = 0.0
    current_start, current_end = None, None
    for start, end in intervals:
        if current_end is None or start > current_end:
            if current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total


def read_json(path: Path) -> dict[str, Any] | None:
    """A metadata file's content, or ``None`` when it is absent or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def read_page_journal(path: Path) -> list[PageRecord]:
    """Every record in a page journal, skipping a torn trailing line (power loss)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            records.append(PageRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return records


def latest_page_records(records: Iterable[PageRecord]) -> list[PageRecord]:
    """One record per page (the last written wins), sorted by page."""
    latest: dict[int, PageRecord] = {}
    for record in records:
        latest[record.page] = record
    return [latest[page] for page in sorted(latest)]
