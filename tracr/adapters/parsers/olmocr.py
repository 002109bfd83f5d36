"""Used by allenai olmOCR-2 (7B-1025, -FP8), olmOCR 0725/0825 (YAML front matter) and olmOCR v1 0225-preview (JSON).

olmOCR-2 and 0725/0825 answer with YAML front matter then the page's Markdown. The rules are
olmOCR's own (allenai/olmocr ``olmocr/train/front_matter.py::FrontMatterParser`` as called by
``olmocr/pipeline.py::try_single_page``, and ``olmocr/prompts/prompts.py::PageResponse``), so a reply
the pipeline would count as a failed attempt is a :class:`ReplyFormatError` here too. The page's
Markdown is the body as-is: olmOCR applies no further post-processing.

olmOCR v1 answers with one JSON object (``olmocr/pipeline.py`` at tag v0.1.76 builds
``PageResponse(**json.loads(content))`` and writes ``natural_text``).

olmOCR leaves headers and footers out itself (it was trained to), so nothing is ever dropped and
``keep_furniture`` has no effect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = ["FIELDS", "parse", "parse_v1_json"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: PageResponse's fields besides ``natural_text``, in its order: all required, no others allowed.
FIELDS = ("primary_language", "is_rotation_valid", "rotation_correction", "is_table", "is_diagram")
_BOOL_FIELDS = ("is_rotation_valid", "is_table", "is_diagram")
_ROTATIONS = frozenset({0, 90, 180, 270})
_OPEN = "---\n"
_CLOSE = "\n---"


def _split_front_matter(reply: str) -> tuple[dict[str, Any], str]:
    """``(front matter, body)``: the reply starts with ``---\\n`` and the block runs to the next ``\\n---``.

    ``FrontMatterParser._extract_front_matter_and_text``: the body is what follows the closing
    ``\\n---`` (its four characters skipped), stripped. olmOCR turns a missing block or bad YAML
    into an empty mapping and then fails on the first missing field; the reasons here say which.
    """
    if not reply.startswith(_OPEN):
        raise ReplyFormatError("front matter missing")
    end = reply.find(_CLOSE, len(_OPEN))
    if end == -1:
        raise ReplyFormatError("front matter not closed")
    try:
        loaded = yaml.load(reply[len(_OPEN) : end], Loader=_LOADER) or {}  # the C loader when built: 6x faster
    except yaml.YAMLError:
        raise ReplyFormatError("front matter is not valid YAML") from None
    if not isinstance(loaded, dict):
        raise ReplyFormatError("front matter is not a mapping")
    return loaded, reply[end + len(_CLOSE) :].strip()


def _language(value: Any) -> str | None:
    """``Optional[str]`` as FrontMatterParser reads it: YAML booleans (``no`` → False) and empty values become None."""
    if isinstance(value, bool) or not value:
        return None
    if not isinstance(value, str):
        raise ReplyFormatError("primary_language is not a string")
    return value


def _flag(name: str, value: Any) -> bool:
    """A ``bool`` field: a string is true only when it is ``true`` in any case (FrontMatterParser), else it must be a bool."""
    if isinstance(value, str):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ReplyFormatError(f"{name} is not a boolean")
    return value


def _rotation(value: Any) -> int:
    """``rotation_correction``: a string is cast with ``int()``; the value must be 0, 90, 180 or 270 (PageResponse)."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ReplyFormatError("rotation_correction is not an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReplyFormatError("rotation_correction is not an integer")
    if value not in _ROTATIONS:
        raise ReplyFormatError("rotation_correction not in 0/90/180/270")
    return value


def _check_fields(fields: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """All of ``FIELDS`` present and nothing beyond ``allowed``, as FrontMatterParser and PageResponse(**kw) insist."""
    for name in FIELDS:
        if name not in fields:
            raise ReplyFormatError(f"{where} field missing: {name}")
    extra = sorted(set(fields) - set(allowed))
    if extra:
        raise ReplyFormatError(f"{where} has unexpected fields: {', '.join(extra)}")


def _page_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The five page fields, converted and validated: they become the reply's ``meta``."""
    meta: dict[str, Any] = {"primary_language": _language(fields["primary_language"])}
    for name in _BOOL_FIELDS:
        meta[name] = _flag(name, fields[name])
    meta["rotation_correction"] = _rotation(fields["rotation_correction"])
    return {name: meta[name] for name in FIELDS}


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """olmOCR-2 / 0725 / 0825: front matter → ``meta`` (the five PageResponse fields), body → Markdown.

    An empty body is an empty page (olmOCR's ``natural_text`` is then None and nothing is written).
    """
    fields, body = _split_front_matter(reply)
    _check_fields(fields, FIELDS, "front matter")
    return ParsedReply(markdown=body, meta=_page_fields(fields))


def _v1_language(value: Any) -> str | None:
    """v1 builds PageResponse straight from JSON: primary_language must be a string or null, nothing is converted."""
    if value is not None and not isinstance(value, str):
        raise ReplyFormatError("primary_language is not a string")
    return value


def _v1_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ReplyFormatError(f"{name} is not a boolean")
    return value


def parse_v1_json(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """olmOCR v1 (0225-preview): a JSON object with the five fields and ``natural_text``; a null text is an empty page.

    Types are checked as ``PageResponse.__post_init__`` does, with no conversion; ``natural_text``
    is kept as the model wrote it (v0.1.76 writes it unstripped).
    """
    try:
        data = json.loads(reply)
    except json.JSONDecodeError:
        raise ReplyFormatError("not JSON") from None
    if not isinstance(data, dict):
        raise ReplyFormatError("not a JSON object")
    _check_fields(data, (*FIELDS, "natural_text"), "JSON")
    if "natural_text" not in data:
        raise ReplyFormatError("JSON field missing: natural_text")
    text = data["natural_text"]
    if text is not None and not isinstance(text, str):
        raise ReplyFormatError("natural_text is not a string")
    meta: dict[str, Any] = {"primary_language": _v1_language(data["primary_language"])}
    for name in _BOOL_FIELDS:
        meta[name] = _v1_flag(name, data[name])
    if isinstance(data["rotation_correction"], str):
        raise ReplyFormatError("rotation_correction is not an integer")
    meta["rotation_correction"] = _rotation(data["rotation_correction"])
    return ParsedReply(markdown=text or "", meta={name: meta[name] for name in FIELDS})
