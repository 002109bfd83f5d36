"""Used by PaddleOCR-VL (PaddlePaddle PaddleOCR-VL 0.9B, 1.5), run whole-page with the ``OCR:`` prompt.

PaddleOCR-VL's layout stage is a separate detector (PP-DocLayoutV2/V3), not the VLM, so tracr sends the
whole page as one ``ocr`` block, as PaddleX does with ``use_layout_detection=False`` (``prompt_label="ocr"``).
:func:`parse` applies PaddleX's post-processing of such a block (PaddlePaddle/PaddleX
``paddlex/inference/pipelines/paddleocr_vl/pipeline.py::get_layout_parsing_results``, ``uilts.py``,
``result.py``): repetition truncation with the text threshold, the ``\\(``/``\\[`` → ``$``/``$$`` rewrite,
and the ``ocr`` label's newline normalisation. A whole-page block has no layout labels, so there is no
page furniture to drop and ``keep_furniture`` changes nothing.

:func:`parse_block` and :data:`TASK_PROMPTS` serve a future layout source that sends blocks one by one.
"""

from __future__ import annotations

import re
from collections import Counter

from tracr.adapters.parsers.otsl import OTSL_TOKENS, has_otsl, otsl_to_html
from tracr.adapters.replies import ParsedReply, ReplyFormatError

__all__ = ["TASK_PROMPTS", "parse", "parse_block", "prompt_for_label", "rewrite_delimiters", "truncate_repetitive_content"]

#: Task prompt by block label (``get_layout_parsing_results``); with layout detection off these are the
#: four ``prompt_label`` values tracr uses.
TASK_PROMPTS: dict[str, str] = {
    "ocr": "OCR:",
    "table": "Table Recognition:",
    "formula": "Formula Recognition:",
    "chart": "Chart Recognition:",
}
#: Labels kept as images and never sent (``IMAGE_LABELS``, plus chart and seal when their features are off).
_IMAGE_LABELS = frozenset({"image", "header_image", "footer_image"})
#: ``min_count`` of ``truncate_repetitive_content``: tables are only checked past 5000 characters, the rest past 50.
_TABLE_MIN_COUNT = 5000
_TEXT_MIN_COUNT = 50

#: A run of OTSL tokens inside text: each cell token with the text after it on the same line, ``<nl>`` on its own.
_CELL_TOKENS = "|".join(t for t in OTSL_TOKENS if t != "nl")
_ANY_TOKEN = "|".join(OTSL_TOKENS)
_OTSL_RUN_RE = re.compile(rf"(?:<otsl>)?(?:<(?:{_CELL_TOKENS})>(?:(?!<(?:{_ANY_TOKEN})>)[^\n])*|<nl>\n?)+(?:</otsl>)?")


def prompt_for_label(label: str, *, use_chart_recognition: bool = False) -> str | None:
    """The prompt PaddleX sends a block of ``label`` with, or None for a block kept as an image."""
    if label in _IMAGE_LABELS or (label == "chart" and not use_chart_recognition) or label == "seal":
        return None
    if label == "table":
        return TASK_PROMPTS["table"]
    if label == "chart":
        return TASK_PROMPTS["chart"]
    if "formula" in label and label != "formula_number":
        return TASK_PROMPTS["formula"]
    return TASK_PROMPTS["ocr"]


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """A whole-page ``OCR:`` reply → Markdown.

    Also converts any OTSL table found in the text to HTML (PaddleX only does so for ``table`` blocks; a
    whole-page reply may hold one). An empty reply raises :class:`ReplyFormatError`: it is the known
    whole-page failure (PaddleOCR #17846), not a blank page. ``meta``: ``repetition_truncated`` and
    ``tables`` (OTSL tables converted).
    """
    del keep_furniture  # a whole-page block has no furniture labels
    if not reply.strip():
        raise ReplyFormatError("empty reply")
    content = truncate_repetitive_content(reply, min_count=_TEXT_MIN_COUNT)
    truncated = content != reply
    content, tables = _convert_inline_otsl(rewrite_delimiters(content, "ocr"))
    return ParsedReply(
        markdown=_normalise_newlines(content).strip(),
        meta={"repetition_truncated": truncated, "tables": tables},
    )


def parse_block(label: str, reply: str) -> str:
    """One block's reply → its Markdown, by the block's layout label.

    ``table``: OTSL → HTML, or the reply as it is when it holds no table. Formula labels: the reply after
    the delimiter rewrite (``\\[…\\]`` → ``$$ … $$``), as PaddleX's formula handler leaves it.
    ``formula_number``: delimiters removed. ``chart``: the model's ``|``-separated rows as an HTML table
    (``format_chart2table_func``, without its inline styles). ``doc_title``: ``# `` and one line
    (``result.py``). Anything else is text, with the ``ocr``/``text`` newline normalisation.
    """
    min_count = _TABLE_MIN_COUNT if label == "table" else _TEXT_MIN_COUNT
    content = rewrite_delimiters(truncate_repetitive_content(reply, min_count=min_count), label)
    if label == "table":
        return otsl_to_html(content) or content.strip()
    if "formula" in label:
        return content.strip()
    if label == "chart":
        return _chart_table(content.strip())
    if label == "doc_title":
        return "# " + content.replace("-\n", "").replace("\n", " ").strip()
    return _normalise_newlines(content).strip()


def rewrite_delimiters(content: str, label: str) -> str:
    """PaddleX's LaTeX delimiter rewrite (``get_layout_parsing_results``).

    Only when the text has a ``\\(``…``\\)`` or ``\\[``…``\\]`` pair: every ``$`` is removed, ``\\(``/``\\)``
    become `` $ ``/`` $``, doubled ``\\[\\[``/``\\]\\]`` are collapsed and ``\\[``/``\\]`` become `` $$ ``;
    a ``formula_number`` block then loses its ``$`` signs.
    """
    if not (("\\(" in content and "\\)" in content) or ("\\[" in content and "\\]" in content)):
        return content
    content = content.replace("$", "")
    content = content.replace("\\(", " $ ").replace("\\)", " $").replace("\\[\\[", "\\[").replace("\\]\\]", "\\]")
    content = content.replace("\\[", " $$ ").replace("\\]", " $$ ")
    return content.replace("$", "") if label == "formula_number" else content


def _chart_table(content: str) -> str:
    """``format_chart2table_func``: the first line is the header row, every line splits on ``|``."""
    lines = content.split("\n")
    head = "".join(f"<th>{cell.strip()}</th>" for cell in lines[0].split("|"))
    rows = "".join("<tr>" + "".join(f"<td>{cell.strip()}</td>" for cell in line.split("|")) + "</tr>" for line in lines[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _normalise_newlines(content: str) -> str:
    """The ``ocr``/``text`` handler of ``result.py``: a blank line becomes one newline, then every newline a blank line."""
    return content.replace("\n\n", "\n").replace("\n", "\n\n")


def _convert_inline_otsl(content: str) -> tuple[str, int]:
    """Replace each run of OTSL tokens in the text by its HTML table; returns the text and the tables converted."""
    count = 0

    def convert(match: re.Match[str]) -> str:
        nonlocal count
        run = match.group(0)
        if not has_otsl(run):
            return run
        table = otsl_to_html(run)
        if not table:
            return run
        count += 1
        return "\n" + table + "\n"

    converted = _OTSL_RUN_RE.sub(convert, content)
    return (re.sub(r"\n{3,}", "\n\n", converted), count) if count else (content, 0)


def truncate_repetitive_content(
    content: str, line_threshold: int = 10, char_threshold: int = 10, min_len: int = 10, min_count: int = 3000
) -> str:
    """Cut a reply that loops, as PaddleX's ``uilts.py::truncate_repetitive_content`` does.

    Replies shorter than ``min_count`` are left alone. Then, in order: a long single line ending in a
    phrase repeated 5+ times that covers over half of it keeps only what precedes the repetition; a single
    line that is one unit repeated ``char_threshold``+ times becomes that unit; text whose most common line
    appears ``line_threshold``+ times and in 80 % of the lines becomes that line.
    """
    if len(content) < min_count:
        return content
    stripped = content.strip()
    if not stripped:
        return content
    if "\n" not in stripped and len(stripped) > 100:
        suffix = _repeating_suffix(stripped, min_len=8, min_repeats=5)
        if suffix is not None:
            prefix, unit, count = suffix
            if len(unit) * count > len(stripped) * 0.5:
                return prefix
    if "\n" not in stripped and len(stripped) > min_len:
        unit_found = _shortest_repeating_unit(stripped)
        if unit_found is not None and len(stripped) // len(unit_found) >= char_threshold:
            return unit_found
    lines = [line.strip() for line in content.split("\n") if line.strip()]
    if len(lines) < line_threshold:
        return content
    line, count = Counter(lines).most_common(1)[0]
    if count >= line_threshold and count / len(lines) >= 0.8:
        return line
    return content


def _shortest_repeating_unit(s: str) -> str | None:
    """The shortest substring that repeated makes up all of ``s`` (``find_shortest_repeating_substring``)."""
    n = len(s)
    for i in range(1, n // 2 + 1):
        if n % i == 0 and s[:i] * (n // i) == s:
            return s[:i]
    return None


def _repeating_suffix(s: str, min_len: int, min_repeats: int) -> tuple[str, str, int] | None:
    """The longest unit of ``min_len``+ characters that ends ``s`` ``min_repeats``+ times (``find_repeating_suffix``)."""
    for i in range(len(s) // min_repeats, min_len - 1, -1):
        unit = s[-i:]
        if s.endswith(unit * min_repeats):
            count = 0
            rest = s
            while rest.endswith(unit):
                rest = rest[:-i]
                count += 1
            return s[: len(s) - count * i], unit, count
    return None
