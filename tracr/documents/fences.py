"""Markdown outside fenced code blocks: what every text transform leaves code blocks alone with."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["map_outside_fences"]

FENCE_OPEN = re.compile(r"^(`{3,}(?!.*`)|~{3,})")  # column 0 only: never inside a list item or quote
FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*$")


def map_outside_fences(text: str, transform: Callable[[str], str], *, close_open_fence: bool = False) -> str:
    """``transform`` applied to each run of lines outside fenced code; fences and code kept verbatim.

    ``close_open_fence`` closes a fence left open at the end, so text appended later is not code.
    """
    out: list[str] = []
    chunk: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            opener = FENCE_OPEN.match(line)
            if opener:
                if chunk:
                    out.append(transform("\n".join(chunk)))
                    chunk = []
                fence = opener.group(1)
                out.append(line)
            else:
                chunk.append(line)
        else:
            out.append(line)
            closer = FENCE_CLOSE.match(line)
            if closer and closer.group(1)[0] == fence[0] and len(closer.group(1)) >= len(fence):
                fence = None
    if chunk:
        out.append(transform("\n".join(chunk)))
    if close_open_fence and fence is not None:
        out.append(fence)
    return "\n".join(out)
