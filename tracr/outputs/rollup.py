"""Counters that add up from pages to PDFs, runs, models and jobs.

Rollups (pages done and failed, tokens, seconds, pages/s) are derived from the page
journals at PDF level and summed upward, so every level answers "how did it go" on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from tracr.outputs.journal import PageRecord
from tracr.outputs.timestamps import parse_iso

__all__ = ["Rollup", "busy_seconds"]


@dataclass(slots=True)
class Rollup:
    """Counters that add up from pages to PDFs, runs, models and jobs."""

    pages_total: int = 0
    pages_done: int = 0
    pages_failed: int = 0
    pages_truncated: int = 0  # done pages the model cut off at its token limit
    input_tokens: int = 0
    output_tokens: int = 0
    ocr_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add_page(self, record: PageRecord) -> None:
        if record.status == "done":
            self.pages_done += 1
        else:
            self.pages_failed += 1
        if record.truncated:
            self.pages_truncated += 1
        self.input_tokens += record.input_tokens or 0
        self.output_tokens += record.output_tokens or 0
        self.ocr_seconds += record.latency_s or 0.0

    def add(self, other: Rollup) -> None:
        """Sum another rollup in (wall time adds too: callers measuring a span overwrite it)."""
        self.pages_total += other.pages_total
        self.pages_done += other.pages_done
        self.pages_failed += other.pages_failed
        self.pages_truncated += other.pages_truncated
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
    def from_dict(cls, data: dict[str, Any] | None) -> Rollup:
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def total(cls, rollups: Iterable[Rollup]) -> Rollup:
        out = cls()
        for rollup in rollups:
            out.add(rollup)
        return out


def busy_seconds(spans: Iterable[tuple[str | None, str | None]]) -> float:
    """Seconds during which at least one span was open (overlaps counted once).

    Runs of different models overlap; adding their wall times would halve a
    job's pages/s. Spans with a missing end are ignored.
    """
    intervals = sorted((parse_iso(start), parse_iso(end)) for start, end in spans if start and end)
    total = 0.0
    merged: list[list[datetime]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        total += (end - start).total_seconds()
    return total
