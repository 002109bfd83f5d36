"""Used by IBM granite-docling-258M and SmolDocling-256M, whose replies are DocTags.

The conversion is docling-core's own, as docling and the vlmparse harness run it:
``DocTagsDocument.from_doctags_and_image_pairs([reply], None)`` → ``DoclingDocument.load_from_doctags``
→ ``export_to_markdown`` (docling-core ``types/doc/document.py``). No page image is needed: without one the
loader keeps the text and only leaves out provenance boxes and picture crops, which Markdown does not use.

What comes out (docling-core 2.104):

- tables are **Markdown** pipe tables (docling-core's ``export_to_markdown``); a spanning cell is repeated
  in every column and row it spans;
- ``<page_header>``/``<page_footer>`` are loaded into the ``furniture`` content layer, so docling's own
  Markdown leaves them out; here they are dropped by default and kept with ``keep_furniture``;
- footnotes and captions stay: docling-core's default Markdown labels (``DOCUMENT_TOKENS_EXPORT_LABELS``)
  include them.

The label set and content layers are passed explicitly, so the result does not move with docling-core's
defaults. Importing docling-core takes 0.8–1.7 s (measured with ``python -X importtime``), so it is imported
inside the functions that need it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tracr.adapters.replies import ParsedReply, ReplyFormatError

if TYPE_CHECKING:
    from docling_core.types.doc.document import DoclingDocument

__all__ = ["BODY_LABELS", "FURNITURE_LABELS", "close_truncated", "parse"]

#: The labels exported: docling-core 2.104's Markdown default (``DOCUMENT_TOKENS_EXPORT_LABELS``) less the
#: page header and footer, which the loader also puts in the furniture layer. Names an older docling-core
#: lacks are skipped.
BODY_LABELS: frozenset[str] = frozenset(
    {
        "caption",
        "footnote",
        "form",
        "title",
        "document_index",
        "section_header",
        "paragraph",
        "table",
        "picture",
        "formula",
        "checkbox_selected",
        "checkbox_unselected",
        "text",
        "list_item",
        "code",
        "reference",
        "handwritten_text",
        "key_value_region",
        "field_region",
        "field_heading",
        "field_item",
        "field_key",
        "field_value",
        "field_hint",
        "marker",
        "empty_value",
    }
)
#: Furniture label → the kind reported in :attr:`ParsedReply.dropped`.
FURNITURE_LABELS: dict[str, str] = {"page_header": "page_header", "page_footer": "page_footer"}

#: Element tags the DocTags loader knows (docling-core ``load_from_doctags``'s ``tag_to_doclabel``, plus lists).
_ELEMENT_TAGS = (
    "title",
    "document_index",
    "otsl",
    r"section_header_level_\d",
    "checkbox_selected",
    "checkbox_unselected",
    "text",
    "page_header",
    "page_footer",
    "formula",
    "caption",
    "picture",
    "chart",
    "list_item",
    "footnote",
    "code",
    "key_value_region",
    "key_value_map",
    "ordered_list",
    "unordered_list",
)
_DOCTAGS_RE = re.compile(r"<(?:doctag|" + "|".join(_ELEMENT_TAGS) + r")>")
#: Stop and end tokens that reach the reply when the server keeps special tokens (docling's
#: ``stop_strings`` for granite-docling and SmolDocling, docling ``vlm_model_specs.py``).
_SPECIAL_RE = re.compile(r"<\|end_of_text\|>|<end_of_utterance>|<\|im_end\|>")
_OPEN_RE = re.compile(r"<(" + "|".join(_ELEMENT_TAGS) + r")>")


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """DocTags → Markdown through docling-core; ``dropped`` names the furniture present and left out.

    A reply cut off inside its last element (``max_tokens``) gets that element closed first, so what the
    model wrote is kept instead of being lost by the loader's regular expressions; ``meta["truncated"]``
    says so.
    """
    text = _SPECIAL_RE.sub("", reply).strip()
    if not _DOCTAGS_RE.search(text):
        raise ReplyFormatError("no DocTags")
    closed, truncated = close_truncated(text)
    doc = _load_first(closed, text) if truncated else _load_first(text)
    return ParsedReply(
        markdown=_export(doc, keep_furniture=keep_furniture),
        meta={"truncated": truncated},
        dropped=() if keep_furniture else _furniture_kinds(doc),
    )


def close_truncated(doctags: str) -> tuple[str, bool]:
    """Close the element a truncated reply was cut inside of; ``(doctags, False)`` when nothing is open.

    Only the innermost open element and the containers around it are closed; a half-written tag at the
    very end (``<loc_1``) is cut off first.
    """
    text = re.sub(r"<[^<>]*$", "", doctags)
    stack: list[str] = []
    for match in re.finditer(r"<(/?)([a-z_0-9]+)>", text):
        closing, name = match.group(1), match.group(2)
        if not _OPEN_RE.fullmatch(f"<{name}>") and name != "doctag":
            continue
        if not closing:
            stack.append(name)
        elif name in stack:
            while stack and stack.pop() != name:
                pass
    open_elements = [name for name in stack if name != "doctag"]
    if not open_elements:
        return text, text != doctags
    return text + "".join(f"</{name}>" for name in reversed(open_elements)), True


def _load_first(*candidates: str) -> DoclingDocument:
    """The first candidate docling-core loads: the closed reply, then the reply as it came.

    docling-core's OTSL reader indexes past the end of a table whose last cell token has no text
    (``utils.py::otsl_parse_texts``), which a cut reply can produce; the reply as it came then loads with
    its unfinished element left out, as docling itself would. If nothing loads, the reply is malformed.
    """
    for doctags in candidates:
        try:
            return _load(doctags)
        except Exception:  # any failure of the third-party loader means the candidate is not loadable
            continue
    raise ReplyFormatError("DocTags not loadable")


def _load(doctags: str) -> DoclingDocument:
    """The docling-core loading path, without a page image."""
    from docling_core.types.doc.document import DoclingDocument, DocTagsDocument

    pages = DocTagsDocument.from_doctags_and_image_pairs([doctags], None)
    return DoclingDocument.load_from_doctags(pages, document_name="page")


def _export(doc: DoclingDocument, *, keep_furniture: bool) -> str:
    """``export_to_markdown`` with labels, content layers and placeholders chosen here, not by docling-core."""
    from docling_core.types.doc import ContentLayer, DocItemLabel, ImageRefMode

    names = BODY_LABELS | (FURNITURE_LABELS.keys() if keep_furniture else frozenset())
    labels = {label for label in DocItemLabel if label.value in names}
    layers = {ContentLayer.BODY, ContentLayer.FURNITURE} if keep_furniture else {ContentLayer.BODY}
    markdown = doc.export_to_markdown(
        delim="\n\n",
        labels=labels,
        included_content_layers=layers,
        image_mode=ImageRefMode.PLACEHOLDER,
        image_placeholder="<!-- image -->",
        escape_underscores=True,
        escape_html=True,
    )
    return markdown.strip()


def _furniture_kinds(doc: DoclingDocument) -> tuple[str, ...]:
    """The furniture kinds present in the document, once each, in reading order."""
    from docling_core.types.doc import ContentLayer

    kinds: list[str] = []
    for item, _level in doc.iterate_items(included_content_layers=set(ContentLayer)):
        label = getattr(item, "label", None)
        kind = FURNITURE_LABELS.get(getattr(label, "value", ""))
        if kind and kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)
