"""Page selection: which pages of each PDF a job OCRs.

Users write selections the way print dialogs take them (``"1-3,7,10-"``); pages are
numbered from 1 everywhere in tracr, matching the ``<page>.md`` file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PageSelection", "parse_page_selection"]

_RANGE = re.compile(r"^\s*(\d+)?\s*(-)?\s*(\d+)?\s*$")


@dataclass(frozen=True)
class PageSelection:
    """Inclusive 1-based page ranges; ``end=None`` means "to the last page"."""

    ranges: tuple[tuple[int, int | None], ...] = ((1, None),)

    def resolve(self, page_count: int) -> list[int]:
        """The selected page numbers that exist in a PDF of ``page_count`` pages."""
        chosen: set[int] = set()
        for start, end in self.ranges:
            stop = page_count if end is None else min(end, page_count)
            chosen.update(range(start, stop + 1))
        return sorted(chosen)

    def describe(self) -> str:
        parts = [f"{s}-" if e is None else (str(s) if s == e else f"{s}-{e}") for s, e in self.ranges]
        return ",".join(parts)


def parse_page_selection(spec: str | int | list[int] | None) -> PageSelection:
    """Parse ``None``/``"all"``, an int, a list of ints, or ``"1-3,7,10-"``.

    Raises ``ValueError`` with the offending part named.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all")):
        return PageSelection()
    if isinstance(spec, bool):
        raise ValueError("expected a page number, a list of them, or a range string like '1-3,7'")
    if isinstance(spec, int):
        spec = [spec]
    ranges: list[tuple[int, int | None]] = []
    if isinstance(spec, list):
        for page in spec:
            if not isinstance(page, int) or isinstance(page, bool) or page < 1:
                raise ValueError(f"page numbers start at 1, got {page!r}")
            ranges.append((page, page))
        if not ranges:
            raise ValueError("an empty list selects no pages")
        return PageSelection(tuple(ranges))
    for part in str(spec).split(","):
        match = _RANGE.match(part)
        if not match or not (match.group(1) or match.group(3)):
            raise ValueError(f"cannot read page range {part.strip()!r} (write e.g. '1-3,7,10-')")
        start = int(match.group(1) or 1)
        end: int | None = int(match.group(3)) if match.group(3) else (None if match.group(2) else start)
        if start < 1:
            raise ValueError(f"page numbers start at 1, got {part.strip()!r}")
        if end is not None and end < start:
            raise ValueError(f"range {part.strip()!r} ends before it starts")
        ranges.append((start, end))
    return PageSelection(tuple(ranges))
