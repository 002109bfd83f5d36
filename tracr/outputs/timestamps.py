"""Timestamps as every metadata file writes them: ISO-8601 UTC, milliseconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc", "utc_now", "parse_iso"]


def iso_utc(moment: datetime) -> str:
    """``moment`` (timezone-aware, UTC) as written in every metadata file."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """The current time as :func:`iso_utc` writes it."""
    return iso_utc(datetime.now(UTC))


def parse_iso(text: str) -> datetime:
    """A timestamp written by :func:`iso_utc` (or any ISO-8601 one), timezone-aware."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
