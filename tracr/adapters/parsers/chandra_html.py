"""Used by datalab-to Chandra (chandra-ocr 0.1.x, ``ocr_layout`` prompt): HTML layout blocks ``<div data-bbox=… data-label=…>``.

The conversion is Chandra's own ``parse_markdown`` (datalab-to/chandra ``chandra/output.py``),
rewritten here: ``parse_html`` keeps the top-level divs' contents, dropping ``Page-Header`` and
``Page-Footer`` divs unless asked (its CLI default), giving ``Image``/``Figure`` divs an ``<img>``
named ``<md5 of the reply>_<div index>_img.webp`` and wrapping tag-less ``Text`` divs in ``<p>``;
then a markdownify subclass makes Markdown with ATX headings, ``-`` bullets, ``_``/``*``/``$``
escaped outside math and code, ``<sub>``/``<sup>`` kept as tags, ``<math>`` as `` $…$ ``,
``<math display="block">`` as ``\\n$$…$$\\n``, and tables kept as raw HTML. Images become
``![alt](<name>)`` placeholders: the same name Chandra gives the crop it saves, with no data.

Chandra pins ``markdownify==1.1.0``; other versions may space or escape some text differently.
Text outside the top-level divs is ignored, as in Chandra; a reply with no top-level div at all
(Chandra would return an empty page) is a :class:`ReplyFormatError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from bs4 import BeautifulSoup, NavigableString, Tag
from markdownify import MarkdownConverter  # type: ignore[import-untyped]

from tracr.adapters.parsers.repetition import repeating_tail
from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = ["FURNITURE_LABELS", "has_repeat", "parse"]

#: ``data-label`` values ``parse_html`` drops unless headers and footers are included.
FURNITURE_LABELS = {"Page-Header": "page_header", "Page-Footer": "page_footer"}
_IMAGE_LABELS = ("Image", "Figure")
_ANY_TAG = re.compile("<.+>")
_WHITESPACE = re.compile(r"[\t ]+")
_LINK_BRACKETS = re.compile(r"([\[\]()])")
_NO_ESCAPE_PARENTS = ["pre", "code", "kbd", "samp", "math"]


class _ChandraMarkdown(MarkdownConverter):
    """``chandra/output.py::Markdownify``: math delimiters, raw HTML tables, ``$`` escaped, Chandra's text handling."""

    def convert_math(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        if el.get("display") == "block":
            return f"\n$${text.strip()}$$\n"
        return f" ${text.strip()}$ "

    def convert_table(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return f"\n\n{el}\n\n"

    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        text = _LINK_BRACKETS.sub(r"\\\1", self.escape(text))
        return str(super().convert_a(el, text, parent_tags))

    def escape(self, text: str, parent_tags: set[str] | None = None) -> str:
        text = str(super().escape(text, parent_tags))
        return text.replace("$", r"\$") if self.options["escape_dollars"] else text

    def process_text(self, el: NavigableString, parent_tags: set[str] | None = None) -> str:
        """Chandra's override: spaces and tabs collapsed outside ``<pre>``, no escaping inside math or code,
        trailing space trimmed at the end of a list item."""
        text = str(el)
        if not el.find_parent("pre"):
            text = _WHITESPACE.sub(" ", text)
        if not el.find_parent(_NO_ESCAPE_PARENTS):
            text = self.escape(text)
        parent = el.parent
        after = el.next_sibling
        if parent is not None and parent.name == "li" and (not after or getattr(after, "name", None) in ("ul", "ol")):
            text = text.rstrip()
        return text


def _converter() -> _ChandraMarkdown:
    """The options ``parse_markdown`` passes."""
    return _ChandraMarkdown(
        heading_style="ATX",
        bullets="-",
        escape_misc=False,
        escape_underscores=True,
        escape_asterisks=True,
        escape_dollars=True,
        sub_symbol="<sub>",
        sup_symbol="<sup>",
    )


def _label(div: Tag) -> str | None:
    value: Any = div.get("data-label")
    return value if isinstance(value, str) else None


def _image_name(reply: str, div_index: int) -> str:
    """``get_image_name``: the md5 of the whole reply and the 1-based index among top-level divs."""
    return f"{hashlib.md5(reply.encode('utf-8')).hexdigest()}_{div_index}_img.webp"


def _give_image(div: Tag, src: str) -> None:
    """An Image/Figure div's ``<img>`` points at ``src``; one is added when the model wrote none."""
    img = div.find("img")
    if isinstance(img, Tag):
        img["src"] = src
    else:
        div.append(BeautifulSoup(f"<img src='{src}'/>", "html.parser"))


def _wrap_bare_text(div: Tag) -> None:
    """A ``Text`` div with no inner tags gets its text wrapped in ``<p>``, as ``parse_html`` does."""
    inner = div.decode_contents().strip()
    if not _ANY_TAG.search(inner):
        div.clear()
        div.append(BeautifulSoup(f"<p>{inner}</p>", "html.parser"))


def _blocks(reply: str) -> list[Tag]:
    divs = [div for div in BeautifulSoup(reply, "html.parser").find_all("div", recursive=False) if isinstance(div, Tag)]
    if not divs:
        raise ReplyFormatError("no layout div")
    return divs


def _html(reply: str, divs: Iterable[Tag], keep_furniture: bool) -> tuple[str, tuple[str, ...]]:
    """``parse_html``: the kept divs' inner HTML, concatenated, and the furniture kinds dropped (once each)."""
    out: list[str] = []
    dropped: list[str] = []
    for index, div in enumerate(divs, start=1):
        label = _label(div)
        kind = FURNITURE_LABELS.get(label or "")
        if kind and not keep_furniture:
            if kind not in dropped:
                dropped.append(kind)
            continue
        if label in _IMAGE_LABELS:
            _give_image(div, _image_name(reply, index))
        if label == "Text":
            _wrap_bare_text(div)
        out.append(div.decode_contents())
    return "".join(out), tuple(dropped)


def _markdown(reply: str, keep_furniture: bool) -> tuple[str, tuple[str, ...], int]:
    divs = _blocks(reply)
    html, dropped = _html(reply, divs, keep_furniture)
    return str(_converter().convert(html)).strip(), dropped, len(divs)


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """Chandra layout HTML → Markdown. ``meta``: ``blocks``, the number of top-level layout divs."""
    markdown, dropped, blocks = _markdown(reply, keep_furniture)
    return ParsedReply(markdown=markdown, meta={"blocks": blocks}, dropped=dropped)


def has_repeat(reply: str) -> bool:
    """Chandra's retry test on a raw reply (``chandra/model/vllm.py``): a repeating tail in its Markdown, checked
    again with 50 characters cut when the reply is longer than 50; a reply with no layout div has empty Markdown."""
    try:
        markdown = _markdown(reply, keep_furniture=False)[0]
    except ReplyFormatError:
        markdown = ""
    return repeating_tail(markdown) or (len(reply) > 50 and repeating_tail(markdown, cut_from_end=50))
