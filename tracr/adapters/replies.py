"""What a reply parser returns, and how it says a reply is not in its family's format.

Every OCR model family answers in its own format (front matter, JSON layout cells,
grounding tags, DocTags, HTML divs). A parser turns one raw reply into the page's
Markdown and reports what it removed, so a run can record it and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ParsedReply", "ReplyFormatError", "ReplyParser"]


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """One page's Markdown, read from a family's raw reply.

    ``meta`` holds what the family reports about the page besides its text (olmOCR's
    rotation fields, a repaired JSON flag); ``dropped`` names the page furniture left
    out (``page_header``, ``page_footer``, ``page_number``, ``watermark``...), once each.
    """

    markdown: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


class ReplyFormatError(ValueError):
    """The reply is not in the family's format: retried by the family's rules, then a failed page.

    ``reason`` is a short, stable phrase (``front matter missing``, ``not a JSON list``)
    recorded with the page; the raw reply is always kept beside it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: A parser: raw reply text → :class:`ParsedReply`; ``keep_furniture`` keeps headers, footers and page numbers.
ReplyParser = Callable[..., ParsedReply]
