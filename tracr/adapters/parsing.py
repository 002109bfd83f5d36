"""Reply parsers by name: the one way a raw reply becomes a page, at run time and on re-parse.

Parsers are imported on first use, so a run that never meets DocTags never imports docling-core.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = ["PARSERS", "parse_reply", "parser_names"]

#: Parser name → (module under tracr.adapters.parsers, function).
PARSERS: dict[str, tuple[str, str]] = {
    "plain": ("plain", "parse"),
    "olmocr": ("olmocr", "parse"),
    "olmocr-v1-json": ("olmocr", "parse_v1_json"),
    "dots-layout": ("dots_layout", "parse"),
    "deepseek-grounding": ("deepseek_grounding", "parse"),
    "nanonets": ("nanonets", "parse"),
    "chandra-html": ("chandra_html", "parse"),
    "doctags": ("doctags", "parse"),
    "paddleocr-vl": ("paddleocr_vl", "parse"),
    "mistral-ocr": ("mistral_ocr", "parse_response"),
    "mineru": ("mineru", "parse"),
}


def parser_names() -> list[str]:
    return ["none", *PARSERS]


def _parser(name: str) -> Callable[..., ParsedReply]:
    try:
        module_name, function = PARSERS[name]
    except KeyError:
        raise KeyError(f"unknown parser {name!r} (choose from {', '.join(PARSERS)})") from None
    module = importlib.import_module(f"tracr.adapters.parsers.{module_name}")
    parse: Callable[..., ParsedReply] = getattr(module, function)
    return parse


def parse_reply(parser: str, raw: str, *, keep_furniture: bool = False) -> ParsedReply:
    """``raw`` read by the named parser (``none``: the reply is the page); :class:`ReplyFormatError` when it is not in that format."""
    if parser == "none":
        return ParsedReply(raw)
    try:
        return _parser(parser)(raw, keep_furniture=keep_furniture)
    except ReplyFormatError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # a parser bug on odd input is still a format problem
        raise ReplyFormatError(f"{type(exc).__name__}: {exc}"[:200]) from exc
