"""Make untrusted model output safe to show as Markdown in the reviewer.

OCR models write whatever the page (or a prompt injection on it) talks them
into: raw HTML, ``<script>`` tags, ``onerror`` handlers, remote images that would
beacon out when rendered, ``javascript:`` links, or a loop that repeats one line
until ``max_tokens``. The reviewer never passes ``unsafe_allow_html``; this module
additionally rewrites the text so that, whatever the Markdown renderer does,

* raw HTML shows as text (``<`` becomes ``&lt;`` outside code),
* no image loads (every image becomes a text placeholder naming its host),
* only ``http``, ``https`` and ``mailto`` links stay links,
* very long or looping outputs are capped, with the size of what was cut.

Before that, :func:`tracr.documents.plain_markdown.plain_markdown` writes the HTML that models
use for the same things differently (comments, ``<sup>``, ``<b>``, HTML tables, ``<br>``) as plain
Markdown, so every model's page is shown as the same kind of text and no comment is ever shown:
in the arena, markup peculiar to one model would tell the voter which side is which.

Fenced code blocks that open at column 0 are left verbatim (renderers show them as
text, and such a fence cannot belong to a list item or quote that would end it early);
everything else, code spans included, is escaped, so a renderer that disagrees with this
module about where code starts still sees no HTML.
Pure functions, no Streamlit import, so it is unit-tested on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tracr.documents.fences import map_outside_fences
from tracr.documents.plain_markdown import plain_markdown

__all__ = ["SafeText", "DEFAULT_MAX_CHARS", "neutralise_markdown", "collapse_repeats", "cap_text", "safe_markdown", "safe_raw"]

#: What the reviewer renders of one page before "show all": ~10 dense pages of text.
DEFAULT_MAX_CHARS = 20_000
#: A line repeated more times than this in a row is a generation loop, not content.
MAX_REPEATS = 3
_SAFE_LINK_SCHEMES = {"http", "https", "mailto"}

# ![alt](target "title") — target may be <...> or bare with balanced parens; alt may hold one level of brackets.
_INLINE_IMAGE = re.compile(
    r"!\[((?:[^\[\]\\]|\\.|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|(?:[^\s()]|\([^\s()]*\))*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
_INLINE_LINK = re.compile(
    r"(?<!!)\[((?:[^\[\]\\]|\\.|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|(?:[^\s()]|\([^\s()]*\))*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
_ATX_HEADING = re.compile(r"^( {0,3})(#{1,6})(?=[ \t]|$)", re.MULTILINE)
_LINE_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LINK_DEFINITION = re.compile(r"\[([^\]\n]+)\]:")


@dataclass(frozen=True)
class SafeText:
    """Text ready to render, and what was cut to get there."""

    text: str
    truncated: bool
    original_chars: int
    collapsed_lines: int


def _host(url: str) -> str:
    url = url.strip("<>")
    if url.startswith("data:"):
        return "inline data"
    return urlsplit(url).netloc or "local path"


def _scheme(url: str) -> str:
    # Browsers ignore control characters and whitespace inside a scheme ("java\tscript:").
    cleaned = re.sub(r"[\x00-\x20]", "", url.strip("<>")).lower()
    return cleaned.split(":", 1)[0] if ":" in cleaned.split("/", 1)[0] else ""


def _escape_brackets(text: str) -> str:
    return text.replace("[", "\\[").replace("]", "\\]")


def _neutralise_inline(text: str, demote_headings: int = 0) -> str:
    """Rewrite one stretch of Markdown that holds no code."""
    if demote_headings:
        text = _ATX_HEADING.sub(lambda m: m.group(1) + "#" * min(6, len(m.group(2)) + demote_headings), text)

    def image(match: re.Match[str]) -> str:
        alt = match.group(1).strip() or "image"
        return f"*\\[image not loaded: {_escape_brackets(alt)} — {_escape_brackets(_host(match.group(2)))}\\]*"

    def link(match: re.Match[str]) -> str:
        if _scheme(match.group(2)) in _SAFE_LINK_SCHEMES:
            return match.group(0)
        return f"{match.group(1)} *(link removed)*"

    # <br> is how OCR models break lines inside table cells; keep the words apart without HTML.
    text = _LINE_BREAK_TAG.sub(" ", text)
    # An entity cannot be undone by a backslash before it (a backslash escape could: "\\<").
    text = text.replace("<", "&lt;")  # no raw HTML, no autolinks
    text = _INLINE_IMAGE.sub(image, text)
    text = text.replace("![", "!\\[")  # reference-style and malformed images: never images
    text = _INLINE_LINK.sub(link, text)
    # Link reference definitions ("[x]: javascript:...", also inside quotes and lists) become text.
    return _LINK_DEFINITION.sub(lambda m: f"\\[{m.group(1)}\\]:", text)


def neutralise_markdown(text: str, *, demote_headings: int = 0) -> str:
    """Markdown that renders the same words but runs, loads and links nothing unsafe.

    ``demote_headings`` lowers every ATX heading by that many levels (at most h6), so
    a page's ``#`` title does not dwarf the reviewer's own headings.
    """
    text = text.replace("\x00", "\ufffd")
    return map_outside_fences(text, lambda chunk: _neutralise_inline(chunk, demote_headings), close_open_fence=True)


def collapse_repeats(text: str, max_repeats: int = MAX_REPEATS) -> tuple[str, int]:
    """Collapse runs of one repeated non-blank line (a generation loop) to a note.

    Returns the new text and how many lines were dropped.
    """
    lines = text.split("\n")
    out: list[str] = []
    dropped = 0
    i = 0
    while i < len(lines):
        j = i
        while j + 1 < len(lines) and lines[j + 1] == lines[i]:
            j += 1
        run = j - i + 1
        if lines[i].strip() and run > max_repeats:
            out.extend(lines[i : i + max_repeats])
            out.append(f"*… the line above repeats {run - max_repeats:,} more times*")
            dropped += run - max_repeats
        else:
            out.extend(lines[i : j + 1])
        i = j + 1
    return "\n".join(out), dropped


def cap_text(text: str, max_chars: int) -> tuple[str, bool]:
    """At most ``max_chars`` characters, cut at a line end where one is near."""
    if len(text) <= max_chars:
        return text, False
    cut = text.rfind("\n", 0, max_chars)
    if cut < max_chars // 2:
        cut = max_chars
    return text[:cut], True


def safe_markdown(text: str | None, *, max_chars: int | None = DEFAULT_MAX_CHARS, demote_headings: int = 0) -> SafeText:
    """Untrusted model output → Markdown safe to give ``st.markdown``.

    ``max_chars=None`` shows everything ("show all"); loops are collapsed only
    when capping, so "show all" is the text exactly as the model wrote it.
    """
    original = text or ""
    collapsed = 0
    body = original
    truncated = False
    if max_chars is not None:
        body, collapsed = collapse_repeats(body)
        body, truncated = cap_text(body, max_chars)
    rendered = neutralise_markdown(plain_markdown(body), demote_headings=demote_headings)
    if truncated:
        rendered += f"\n\n*… cut at {len(body):,} of {len(original):,} characters*"
    return SafeText(text=rendered, truncated=truncated or collapsed > 0, original_chars=len(original), collapsed_lines=collapsed)


def safe_raw(text: str | None, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> SafeText:
    """The raw text, capped, for a code block (which renders nothing, so needs no escaping)."""
    original = text or ""
    body, truncated = (original, False) if max_chars is None else cap_text(original, max_chars)
    return SafeText(text=body, truncated=truncated, original_chars=len(original), collapsed_lines=0)
