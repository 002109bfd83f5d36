"""Used by MinerU2.5 (opendatalab MinerU2.5-2509-1.2B), which reads a page in two steps with one model.

Step 1 sends the whole page, resized to 1036×1036, with ``"\\nLayout Detection:"``; the reply lists the
page's blocks (:func:`parse_layout`). Step 2 sends each block's crop with a prompt chosen by its type
(:func:`prompt_for`, :func:`crop_box_px`, :func:`crop_size`) and sampling chosen by its type
(:func:`sampling_for`); each reply becomes Markdown (:func:`content_markdown`) and the page is assembled
(:func:`assemble`). Sources: opendatalab/mineru-vl-utils ``mineru_client.py``, ``structs.py``,
``vlm_client/http_client.py``, ``post_process/__init__.py``, ``post_process/json2markdown.py``; opendatalab/MinerU
``backend/vlm/vlm_magic_model.py`` and ``vlm_middle_json_mkcontent.py`` for the full pipeline's Markdown.

Not reproduced: MinerU's equation clean-ups (``equation_*`` fixes of ``\\left``/``\\right``, braces, ``\\leq``),
merging several equations of one ``equation_block``, image analysis, images inside tables, the
title-level model, hyphen joining and cross-page table merging.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracr.adapters.parsers.otsl import otsl_to_html
from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = [
    "LAYOUT_IMAGE_SIZE",
    "LAYOUT_PROMPT",
    "LAYOUT_STEP",
    "MAX_IMAGE_EDGE_RATIO",
    "MIN_IMAGE_EDGE",
    "SYSTEM_PROMPT",
    "LayoutBlock",
    "assemble",
    "content_markdown",
    "crop_box_px",
    "crop_size",
    "parse_layout",
    "prompt_for",
    "sampling_for",
]

#: ``DEFAULT_SYSTEM_PROMPT`` (mineru-vl-utils ``vlm_client/base_client.py``).
SYSTEM_PROMPT = "You are a helpful assistant."
#: The step-1 prompt; the leading newline is part of it (``DEFAULT_PROMPTS["[layout]"]``).
LAYOUT_PROMPT = "\nLayout Detection:"
#: The name :func:`sampling_for` takes for the layout step.
LAYOUT_STEP = "layout"
#: The page is resized to this (width, height) for step 1, BICUBIC, aspect ratio not kept (``layout_image_size``).
LAYOUT_IMAGE_SIZE: tuple[int, int] = (1036, 1036)
#: A crop's shorter side is upscaled to at least this many pixels (``min_image_edge``).
MIN_IMAGE_EDGE = 28
#: A crop longer than this ratio is padded with white, centred, to this ratio (``max_image_edge_ratio``).
MAX_IMAGE_EDGE_RATIO = 50.0

_PROMPTS = {
    "table": "\nTable Recognition:",
    "equation": "\nFormula Recognition:",
    "image": "\nImage Analysis:",
    "chart": "\nImage Analysis:",
}
_TEXT_PROMPT = "\nText Recognition:"
#: Containers whose content is never requested (``prepare_for_extract``'s ``skip_list``).
_NOT_SENT = frozenset({"list", "equation_block", "image_block"})
_IMAGE_TYPES = frozenset({"image", "chart"})
#: Paratext the full MinerU pipeline moves to ``discarded_blocks`` (``vlm_magic_model.py``), which its
#: Markdown leaves out; the value is the kind reported in ``dropped``.
_FURNITURE = {
    "header": "page_header",
    "footer": "page_footer",
    "page_number": "page_number",
    "aside_text": "aside_text",
    "page_footnote": "footnote",
}
_TITLES = frozenset({"title", "doc_title", "paragraph_title"})
#: ``BLOCK_TYPES`` (``structs.py``); anything else in a layout reply is skipped, as upstream does.
_BLOCK_TYPES = frozenset(
    {
        "text",
        "title",
        "doc_title",
        "paragraph_title",
        "table",
        "equation",
        "formula_number",
        "code",
        "algorithm",
        "aside_text",
        "ref_text",
        "index",
        "phonetic",
        "list_item",
        "table_caption",
        "image_caption",
        "code_caption",
        "caption",
        "table_footnote",
        "image_footnote",
        "footnote",
        "header",
        "footer",
        "page_number",
        "page_footnote",
        "image",
        "chart",
        "list",
        "image_block",
        "equation_block",
    }
)
_LAYOUT_RE = re.compile(
    r"<\|box_start\|>(\d+)\s+(\d+)\s+(\d+)\s+(\d+)<\|box_end\|><\|ref_start\|>(\w+?)<\|ref_end\|>"
    r"(<\|rotate_(?:up|right|down|left)\|>)?(.*?)(?=<\|box_start\|>|$)",
    re.DOTALL,
)
_ANGLES = {"<|rotate_up|>": 0, "<|rotate_right|>": 90, "<|rotate_down|>": 180, "<|rotate_left|>": 270}
#: A block covered this much by a container counts as inside it (``INTERNAL_BLOCK_THRESHOLD``).
_INSIDE = 0.9
_CJK_RE = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_NON_TEXT = "[Non-Text]"

_BASE_SAMPLING: dict[str, Any] = {"temperature": 0.0, "top_p": 0.01, "top_k": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 100}
#: (presence_penalty, frequency_penalty) by block type (``DEFAULT_SAMPLING_PARAMS``).
_PENALTIES = {LAYOUT_STEP: (0.0, 0.0), "table": (1.0, 0.005), "equation": (1.0, 0.05), "image": (1.0, 0.05), "chart": (1.0, 0.05)}
_DEFAULT_PENALTIES = (1.0, 0.05)


@dataclass(frozen=True, slots=True)
class LayoutBlock:
    """One block of the step-1 reply: its box as fractions of the page (x1, y1, x2, y2), type and rotation.

    ``angle`` is None when the reply gave no rotation token; ``merge_prev`` (text blocks only) says the
    block continues the previous text block (``txt_contd_tgt``).
    """

    type: str
    bbox: tuple[float, float, float, float]
    angle: int | None = None
    merge_prev: bool = False


def parse_layout(reply: str) -> list[LayoutBlock]:
    """The step-1 reply → blocks, as ``MinerUClientHelper.parse_layout_output`` reads it.

    Boxes outside the 0–1000 grid or of zero size, and unknown types, are skipped; ``inline_formula`` is
    skipped and ``unknown`` becomes ``image``. Text and equation boxes inside a table, and image captions
    inside an image or chart (which ``prepare_for_extract`` removes before step 2), are removed. An empty
    reply is a blank page; a non-empty reply with no block at all raises :class:`ReplyFormatError`.
    """
    blocks: list[LayoutBlock] = []
    matched = False
    for match in _LAYOUT_RE.finditer(reply):
        matched = True
        block = _layout_block(match)
        if block is not None:
            blocks.append(block)
    if not matched and reply.strip():
        raise ReplyFormatError("no layout boxes")
    blocks = _drop_covered(blocks, {"text", "equation", "equation_block"}, {"table"})
    return _drop_covered(blocks, {"image_caption"}, {"image", "chart", "image_block"})


def _layout_block(match: re.Match[str]) -> LayoutBlock | None:
    x1, y1, x2, y2, ref_type, rotate, tail = match.groups()
    bbox = _convert_bbox((int(x1), int(y1), int(x2), int(y2)))
    kind = ref_type.lower()
    kind = "image" if kind == "unknown" else kind
    if bbox is None or kind not in _BLOCK_TYPES:
        return None
    angle = _ANGLES.get(rotate) if rotate else None
    return LayoutBlock(kind, bbox, angle, merge_prev=kind == "text" and "txt_contd_tgt" in tail)


def _convert_bbox(box: tuple[int, int, int, int]) -> tuple[float, float, float, float] | None:
    """0–1000 grid → fractions, corners put in order; None outside the grid or for a zero-size box (``_convert_bbox``)."""
    if any(v < 0 or v > 1000 for v in box):
        return None
    x1, x2 = sorted((box[0], box[2]))
    y1, y2 = sorted((box[1], box[3]))
    if x1 == x2 or y1 == y2:
        return None
    return (x1 / 1000.0, y1 / 1000.0, x2 / 1000.0, y2 / 1000.0)


def _drop_covered(blocks: list[LayoutBlock], kinds: set[str], containers: set[str]) -> list[LayoutBlock]:
    """Remove blocks of ``kinds`` at least 90 % inside a block of ``containers`` (``_find_covered_block_indices``)."""
    outer = [b for b in blocks if b.type in containers]
    return [b for b in blocks if b.type not in kinds or not any(o is not b and _cover(b.bbox, o.bbox) >= _INSIDE for o in outer)]


def _cover(inner: tuple[float, ...], outer: tuple[float, ...]) -> float:
    """Share of ``inner``'s area inside ``outer``."""
    area = max(0.0, inner[2] - inner[0]) * max(0.0, inner[3] - inner[1])
    if area == 0:
        return 0.0
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    return (w * h) / area if w > 0 and h > 0 else 0.0


def prompt_for(block: LayoutBlock, *, image_analysis: bool = False) -> str | None:
    """The step-2 prompt for ``block``, or None when the official client does not send it.

    Not sent: ``list``, ``equation_block``, ``image_block``, and ``image``/``chart`` unless image analysis
    is on (off by default; then only blocks over 10 % of a side or 1 % of the page are analysed). Page
    furniture (header, footer, page number, aside text, page footnote) *is* sent with the text prompt:
    the client's ``abandon_paratext`` is off by default, and it is the full pipeline that drops it later.
    """
    if block.type in _NOT_SENT:
        return None
    if block.type in _IMAGE_TYPES:
        return _PROMPTS[block.type] if image_analysis and _big_enough(block) else None
    return _PROMPTS.get(block.type, _TEXT_PROMPT)


def _big_enough(block: LayoutBlock) -> bool:
    """``_is_eligible_for_image_analysis``."""
    x1, y1, x2, y2 = block.bbox
    w, h = x2 - x1, y2 - y1
    return (w > 0.1 and h > 0.1) or w * h > 0.01


def sampling_for(block_type: str) -> dict[str, Any]:
    """Sampling for the layout step (``LAYOUT_STEP``) or a block type, as OpenAI chat kwargs plus ``extra_body``.

    ``DEFAULT_SAMPLING_PARAMS`` and ``MinerUSamplingParams``; ``http_client.build_request_body`` sends
    ``no_repeat_ngram_size`` as ``vllm_xargs`` (read by ``MinerULogitsProcessor``) and ``skip_special_tokens=False``.
    """
    presence, frequency = _PENALTIES.get(block_type, _DEFAULT_PENALTIES)
    return {
        "temperature": _BASE_SAMPLING["temperature"],
        "top_p": _BASE_SAMPLING["top_p"],
        "presence_penalty": presence,
        "frequency_penalty": frequency,
        "extra_body": {
            "top_k": _BASE_SAMPLING["top_k"],
            "repetition_penalty": _BASE_SAMPLING["repetition_penalty"],
            "vllm_xargs": {"no_repeat_ngram_size": _BASE_SAMPLING["no_repeat_ngram_size"]},
            "skip_special_tokens": False,
        },
    }


def crop_box_px(block: LayoutBlock, width: int, height: int) -> tuple[int, int, int, int]:
    """The block's crop (left, top, right, bottom) in pixels of a ``width``×``height`` page.

    Upstream crops with ``image.crop((x1 * w, y1 * h, x2 * w, y2 * h))``, which Pillow rounds to whole pixels.
    """
    x1, y1, x2, y2 = block.bbox
    return (round(x1 * width), round(y1 * height), round(x2 * width), round(y2 * height))


def crop_size(width: int, height: int, angle: int | None = None) -> tuple[int, int, int, int]:
    """Sizes a crop goes through before step 2: ``(padded_w, padded_h, final_w, final_h)``.

    A crop with ``angle`` 90/270 is rotated first (sides swap). Then ``resize_by_need``: a crop whose long
    side exceeds 50× the short side is padded with white (centred) to that ratio, and one whose short side
    is under 28 px is upscaled (BICUBIC) so it reaches 28.
    """
    if angle in (90, 270):
        width, height = height, width
    if max(width, height) / min(width, height) > MAX_IMAGE_EDGE_RATIO:
        if width > height:
            height = math.ceil(width / MAX_IMAGE_EDGE_RATIO)
        else:
            width = math.ceil(height / MAX_IMAGE_EDGE_RATIO)
    padded = (width, height)
    if min(width, height) < MIN_IMAGE_EDGE:
        scale = MIN_IMAGE_EDGE / min(width, height)
        width, height = math.ceil(width * scale), math.ceil(height * scale)
    return (*padded, width, height)


def content_markdown(block: LayoutBlock, reply: str) -> str:
    """One step-2 reply → the block's Markdown, as the full MinerU pipeline writes it.

    Tables: OTSL → HTML (``simple_process`` with ``otsl2html``). Equations: ``\\[``/``\\]`` removed
    (``isolated_formula_clean``) and the LaTeX put between ``$$`` lines (``vlm_middle_json_mkcontent``'s
    default display delimiters). Titles: ``# `` and one line (level 1, as without the title-level model).
    Text: display maths ``\\[…\\]`` becomes inline (``text_display2inline``) or a citation ``[1, 2]``
    (``clean_content``), and inline maths is written ``$…$``. ``[Non-Text]`` placeholders become nothing.
    """
    content = reply.strip()
    if not content or content == _NON_TEXT:
        return ""
    if block.type == "table":
        return otsl_to_html(content)
    if block.type == "equation":
        return _equation(content)
    if block.type in _TITLES:
        return "# " + re.sub(r"\n\s*", " ", _text(content)).strip()
    if block.type in ("code", "algorithm"):
        return content
    return _text(content)


def _equation(latex: str) -> str:
    latex = latex.removeprefix("\\[").removesuffix("\\]").strip()
    return f"$$\n{latex}\n$$" if latex else ""


def _text(text: str) -> str:
    def display(match: re.Match[str]) -> str:
        inner = match.group(1)
        return f"[{inner}]" if re.fullmatch(r"[–\d\-,\s]+", inner) else f"\\({inner}\\)"

    text = re.sub(r"\\\[(.*?)\\\]", display, text, flags=re.DOTALL)
    return re.sub(r"\\\((.+?)\\\)", lambda m: f"${m.group(1).strip()}$", text, flags=re.DOTALL)


def assemble(blocks_with_text: Iterable[tuple[LayoutBlock, str | None]], keep_furniture: bool = False) -> ParsedReply:
    """The page's Markdown from its blocks (in layout order) and their step-2 replies (None: not sent).

    Containers (``list``, ``equation_block``, ``image_block``) give nothing, as upstream never fills them.

    ``json2md``: non-empty blocks joined with a blank line; a ``merge_prev`` text block is appended to the
    last text block, with a space unless it holds CJK characters. Header, footer, page number, aside text
    and page footnote are dropped unless ``keep_furniture``, as the full pipeline's Markdown drops its
    ``discarded_blocks`` (``page_footnote`` is reported as ``footnote``). ``meta``: ``blocks`` (given) and
    ``merged`` (continuations joined).
    """
    parts: list[str] = []
    dropped: list[str] = []
    last_text = -1
    merged = count = 0
    for block, reply in blocks_with_text:
        count += 1
        markdown = content_markdown(block, reply) if reply is not None and block.type not in _NOT_SENT else ""
        if not markdown:
            continue
        if block.type in _FURNITURE and not keep_furniture:
            if _FURNITURE[block.type] not in dropped:
                dropped.append(_FURNITURE[block.type])
            continue
        if block.merge_prev and last_text >= 0:
            parts[last_text] += markdown if _CJK_RE.search(markdown) else " " + markdown
            merged += 1
            continue
        parts.append(markdown)
        if block.type in ("text", "list_item"):
            last_text = len(parts) - 1
    return ParsedReply(markdown="\n\n".join(parts), meta={"blocks": count, "merged": merged}, dropped=tuple(dropped))


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """A page's kept replies (``{"layout": …, "replies": [… per parsed block]}``, as the engine records them) read again."""
    try:
        data = json.loads(reply)
        layout, replies = data["layout"], data["replies"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReplyFormatError("not a MinerU page record (layout and block replies)") from exc
    blocks = parse_layout(layout)
    if len(blocks) != len(replies):
        raise ReplyFormatError(f"{len(blocks)} layout blocks but {len(replies)} block replies")
    return assemble(zip(blocks, replies, strict=True), keep_furniture=keep_furniture)
