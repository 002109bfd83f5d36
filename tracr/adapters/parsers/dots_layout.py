"""Used by rednote-hilab dots.ocr (and dots.mocr) with the layout prompt ``prompt_layout_all_en``: a JSON list of layout cells.

The reply is ``[{"bbox": [x1, y1, x2, y2], "category": ..., "text": ...}, ...]``. Markdown is
made the way ``layoutjson2md`` does it (rednote-hilab/dots.ocr ``dots_ocr/utils/format_transformer.py``):
cells in the given order, each converted, joined by a blank line; ``Page-header`` and
``Page-footer`` cells are dropped as in its ``no_page_hf=True`` output (``<name>_nohf.md``,
which dots.ocr says it scored olmOCR-Bench with). ``Formula`` goes through
``get_formula_in_markdown``; every other cell is stripped, and a cell that is only
`` `$…$` `` loses its backticks (``clean_text``; backticks inside a sentence stay); table HTML
stays as it is.

**Pictures (tracr's choice).** ``layoutjson2md`` embeds a base64 crop of the page image; a
parser of the reply alone has no image, so a ``Picture`` cell becomes
``![](picture_x1_y1_x2_y2.png)`` (olmOCR's placeholder style) with the cell's box as the model
gave it, i.e. in the pixels of the resized image it was sent, not rescaled to the page.

**A reply that is not valid JSON** goes through the official repair
(``dots_ocr/utils/output_cleaner.py::OutputCleaner.clean_model_output``, as called by
``dots_ocr/utils/layout_utils.py::post_process_output``): missing ``},{`` delimiters are put
back, the last incomplete cell of a truncated list is cut, duplicate cells are removed. A JSON
list whose cells are malformed gets the same cleaner's list rules. Official quirks are kept so
results match dots.ocr's own: the delimiter fix rewrites every ``}{``/``} {`` in the text, LaTeX
included (``\\frac{1}{n}`` becomes ``\\frac{1},{n}``), and a repaired reply over 50,000
characters loses its last cell even when it is complete. The official parser then
only joins the recovered ``text`` fields and keeps headers and footers; tracr instead converts
the recovered cells as above (furniture still dropped) and sets ``meta["repaired"] = True``.
The official code accepts only a list (``post_process_cells`` asserts it), so a JSON object is
a :class:`ReplyFormatError`, as is a reply from which no cell can be recovered. An empty list
is an empty page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = ["FURNITURE", "formula_to_markdown", "parse", "repair_cells"]

#: Categories ``layoutjson2md(no_page_hf=True)`` skips, with tracr's furniture kind for each.
FURNITURE = {"Page-header": "page_header", "Page-footer": "page_footer"}
_NOT_A_LIST = "not a JSON list of layout cells"
Cell = dict[str, Any]


# --- conversion: layoutjson2md (format_transformer.py) -------------------------------------------------------------------

_LATEX_PATTERNS = tuple(
    re.compile(p, re.DOTALL)
    for p in (
        r"\$\$.*?\$\$",
        r"\$[^$\n]+?\$",
        r"\\begin\{.*?\}.*?\\end\{.*?\}",
        r"\\[a-zA-Z]+\{.*?\}",
        r"\\[a-zA-Z]+",
        r"\\\[.*?\\\]",
        r"\\\(.*?\\\)",
    )
)
_PREAMBLE = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\\documentclass\{[^}]+\}",
        r"\\usepackage\{[^}]+\}",
        r"\\usepackage\[[^\]]*\]\{[^}]+\}",
        r"\\begin\{document\}",
        r"\\end\{document\}",
    )
)
_DISPLAY_BRACKETS_INSIDE = re.compile(r".*\\\[.*\\\].*")
_INLINE_DOLLARS = re.compile(r"\$([^$]+)\$")


def _looks_like_latex(text: str) -> bool:
    """``has_latex_markdown``: dollars, an environment, a command, or ``\\[``/``\\(`` delimiters."""
    return any(p.search(text) for p in _LATEX_PATTERNS)


def formula_to_markdown(text: str) -> str:
    """``get_formula_in_markdown``: a Formula cell's text as a ``$$`` block, unless it is already delimited.

    ``$$…$$`` (with no ``$`` inside) and ``\\[…\\]`` become ``$$\\n…\\n$$``; text with ``\\[…\\]``
    inside or inline ``$…$`` is kept; other LaTeX-looking text loses any preamble and enclosing
    backticks and is wrapped in ``$$``; anything else is returned stripped.
    """
    text = text.strip()
    if text.startswith("$$") and text.endswith("$$"):
        inner = text[2:-2].strip()
        return text if "$" in inner else f"$$\n{inner}\n$$"
    if text.startswith("\\[") and text.endswith("\\]"):
        return f"$$\n{text[2:-2].strip()}\n$$"
    if _DISPLAY_BRACKETS_INSIDE.search(text) or _INLINE_DOLLARS.search(text) or not _looks_like_latex(text):
        return text
    if "usepackage" in text:
        for pattern in _PREAMBLE:
            text = pattern.sub("", text)
    if text[:1] == "`" and text[-1:] == "`":
        text = text[1:-1]
    return f"$$\n{text}\n$$"


def _clean_text(text: str) -> str:
    """``clean_text``: stripped, and `` `$…$` `` loses its backticks."""
    text = text.strip()
    if text[:2] == "`$" and text[-2:] == "$`":
        text = text[1:-1]
    return text


def _picture(cell: Cell) -> str:
    """tracr's Picture placeholder: no embedded data, the box in the name when the cell has one."""
    bbox = cell.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox):
        return "![](picture_{}_{}_{}_{}.png)".format(*(int(v) for v in bbox))
    return "![](picture.png)"


def _cell_text(cell: Cell) -> str:
    text = cell.get("text", "")
    return text if isinstance(text, str) else ""


def _cell_markdown(cell: Cell) -> str:
    category = cell.get("category")
    if category == "Picture":
        return _picture(cell)
    if category == "Formula":
        return formula_to_markdown(_cell_text(cell))
    return _clean_text(_cell_text(cell))


def _to_markdown(cells: Iterable[Cell], keep_furniture: bool) -> tuple[str, tuple[str, ...]]:
    """``layoutjson2md``: Markdown of the cells joined by blank lines, and the furniture kinds left out (once each)."""
    items: list[str] = []
    dropped: list[str] = []
    for cell in cells:
        kind = FURNITURE.get(str(cell.get("category")))
        if kind and not keep_furniture:
            if kind not in dropped:
                dropped.append(kind)
            continue
        items.append(_cell_markdown(cell))
    return "\n\n".join(items), tuple(dropped)


# --- validation ------------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_good_cell(cell: Any) -> bool:
    """What ``post_process_cells`` and ``layoutjson2md`` need: a 4-number bbox, a category, a string text if any."""
    if not isinstance(cell, dict):
        return False
    bbox = cell.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return False
    return isinstance(cell.get("category"), str) and isinstance(cell.get("text", ""), str)


# --- repair: OutputCleaner (output_cleaner.py) ---------------------------------------------------------------------------

_DICT = re.compile(r'\{[^{}]*?"bbox"\s*:\s*\[[^\]]*?\][^{}]*?\}', re.DOTALL)
_MISSING_DELIMITER = re.compile(r'\}\s*\{(?!")')
_CELL_START = '{"bbox":'
_LONG_REPLY = 50000
_BBOX = re.compile(r'"bbox"\s*:\s*\[([^\]]+)\]')
_CATEGORY = re.compile(r'"category"\s*:\s*"([^"]+)"')
_TEXT_START = re.compile(r'"text"\s*:\s*"([^"]{0,10000})')
#: ``remove_duplicate_category_text_pairs_and_bbox``: a (category, text) pair seen this often keeps only its first cell.
_PAIR_REPEATS = 5


def _clean_list(items: Sequence[Any]) -> list[Cell]:
    """``clean_list_data``: dicts only; a 3-number bbox is dropped (category/text kept); other bad boxes drop the cell."""
    cells: list[Cell] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if "bbox" not in item:
            if "category" in item:
                cells.append(dict(item))
            continue
        bbox = item["bbox"]
        if isinstance(bbox, list) and len(bbox) == 3:
            kept = {key: item[key] for key in ("category", "text") if key in item}
            if kept:
                cells.append(kept)
        elif isinstance(bbox, list) and len(bbox) == 4:
            cells.append(dict(item))
    return cells


def _truncate_last_incomplete(text: str) -> str:
    """``_truncate_last_incomplete_element``: cut from the last ``{"bbox":`` when the list is unfinished or very long.

    A reply with only one such cell is left whole (cutting it would leave nothing).
    """
    if len(text) <= _LONG_REPLY and text.strip().endswith("]"):
        return text
    if text.count(_CELL_START) <= 1:
        return text
    last = text.rfind(_CELL_START)
    if last <= 0:
        return text
    cut = text[:last].rstrip()
    return cut[:-1] if cut.endswith(",") else cut


def _dedupe_dict_strings(text: str) -> str:
    """``_remove_duplicate_complete_dicts_preserve_order``: when a complete cell repeats word for word, rebuild the list
    from the first copy of each.

    Official quirk kept: the rebuilt list holds only cells the pattern can match, so a cell whose
    text contains ``{`` or ``}`` (LaTeX) is lost in this step.
    """
    found = [m.group() for m in _DICT.finditer(text)]
    unique = list(dict.fromkeys(found))
    if len(unique) == len(found):
        return text
    return "[" + ", ".join(unique) + "]"


def _ensure_brackets(text: str) -> str:
    """``_ensure_json_format``: an opening ``[`` and a closing ``]`` (trailing comma removed)."""
    text = text.strip()
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text.rstrip(",").rstrip() + "]"
    return text


def _json_string_prefix(fragment: str) -> str:
    """The decoded form of the start of a JSON string, cut anywhere (tracr decodes what the official code leaves escaped)."""
    for end in range(len(fragment), max(len(fragment) - 6, -1), -1):
        try:
            decoded = json.loads('"' + fragment[:end] + '"')
        except json.JSONDecodeError:
            continue
        return decoded if isinstance(decoded, str) else fragment
    return fragment


def _single_incomplete_cell(text: str) -> list[Cell]:
    """``_handle_single_incomplete_dict``: salvage the box, category and start of the text of a lone cut-off cell.

    tracr deviations: the text is read before ``_ensure_brackets`` appends a closing ``]`` (so it
    does not end in a stray bracket), and its JSON escapes are decoded.
    """
    text = text.strip()
    if not text.startswith("["):
        text = "[" + text
    if not text.startswith("[" + _CELL_START):
        return []
    bbox = _BBOX.search(text)
    if not bbox:
        return []
    try:
        coords = [int(part.strip()) for part in bbox.group(1).split(",")]
    except ValueError:
        return []
    if len(coords) != 4:
        return []
    category = _CATEGORY.search(text)
    cell: Cell = {"bbox": coords, "category": category.group(1) if category else "Text"}
    start = _TEXT_START.search(text)
    if start and start.group(1):
        cell["text"] = _json_string_prefix(start.group(1))
    return [cell]


def _parse_repaired(text: str, unbracketed: str) -> list[Cell]:
    """``_parse_final_json``: the list if it parses; else every complete cell that parses alone; else a lone cut-off cell.

    ``unbracketed`` is the same text before ``_ensure_brackets`` (for the lone-cell salvage).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        cells: list[Cell] = []
        for match in _DICT.finditer(text):
            try:
                cells.append(json.loads(match.group()))
            except json.JSONDecodeError:
                continue
        return cells or _single_incomplete_cell(unbracketed)
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _repair_text(reply: str) -> list[Cell]:
    """``clean_string_data``: delimiters, truncated tail, duplicate cells, brackets, then parse."""
    text = _MISSING_DELIMITER.sub("},{", reply)
    text = _truncate_last_incomplete(text)
    text = _dedupe_dict_strings(text)
    return _parse_repaired(_ensure_brackets(text), text)


def _hashable(value: Any) -> Hashable | None:
    """A dict key for a cell's text or box; None when it cannot be one (a nested value)."""
    if isinstance(value, list):
        value = tuple(value)
    try:
        hash(value)
    except TypeError:
        return None
    return value


def _drop_repeated_cells(cells: list[Cell]) -> list[Cell]:
    """``remove_duplicate_category_text_pairs_and_bbox``: a (category, text) pair seen 5+ times, or a box seen twice,
    keeps only its first cell (a repetition loop)."""
    pairs: dict[tuple[Any, Any], list[int]] = {}
    boxes: dict[Any, list[int]] = {}
    for index, cell in enumerate(cells):
        text = _hashable(cell.get("text"))
        if "category" in cell and "text" in cell and text is not None:
            pairs.setdefault((_hashable(cell.get("category")), text), []).append(index)
        bbox = cell.get("bbox")
        box = _hashable(bbox)
        if isinstance(bbox, list) and bbox and box is not None:
            boxes.setdefault(box, []).append(index)
    remove = {i for positions in pairs.values() if len(positions) >= _PAIR_REPEATS for i in positions[1:]}
    remove |= {i for positions in boxes.values() if len(positions) >= 2 for i in positions[1:]}
    return [cell for index, cell in enumerate(cells) if index not in remove]


def repair_cells(reply: str | list[Any]) -> list[Cell]:
    """``OutputCleaner.clean_model_output``: the cells recoverable from a reply text or a decoded list ([] when none)."""
    cells = _clean_list(reply) if isinstance(reply, list) else _repair_text(reply)
    return _drop_repeated_cells(cells) if len(cells) > 1 else cells


# --- parse -----------------------------------------------------------------------------------------------------------------


def _cells(reply: str) -> tuple[list[Cell], bool]:
    """The reply's cells and whether they had to be repaired."""
    try:
        data = json.loads(reply)
    except json.JSONDecodeError:
        cells = repair_cells(reply)
    else:
        if not isinstance(data, list):
            raise ReplyFormatError(_NOT_A_LIST)
        if all(_is_good_cell(cell) for cell in data):
            return data, False
        cells = repair_cells(data)
    if not cells:
        raise ReplyFormatError(_NOT_A_LIST)
    return cells, True


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """dots.ocr layout JSON → Markdown; ``meta``: ``repaired`` (the official repair was needed) and ``cells`` (cells used)."""
    cells, repaired = _cells(reply)
    markdown, dropped = _to_markdown(cells, keep_furniture)
    return ParsedReply(markdown=markdown, meta={"repaired": repaired, "cells": len(cells)}, dropped=dropped)
