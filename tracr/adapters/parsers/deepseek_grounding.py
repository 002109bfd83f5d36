"""Used by deepseek-ai DeepSeek-OCR with the grounding prompt (``<|grounding|>Convert the document to markdown.``).

The reply is Markdown in which each block is preceded by a grounding pair
``<|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2]]<|/det|>`` (a 0-999 grid). The conversion is
DeepSeek's own (deepseek-ai/DeepSeek-OCR ``DeepSeek-OCR-master/DeepSeek-OCR-vllm/run_dpsk_ocr_pdf.py``):
the end-of-sentence string is removed, an ``image`` pair becomes an image link, every other
pair is deleted and the block's content kept, ``\\coloneqq``/``\\eqqcolon`` become ``:=``/``=:``,
and runs of blank lines collapse to one. ``<center>``/``</center>`` are removed as in
``run_dpsk_ocr_eval_batch.py`` (the OmniDocBench script). Its ``clean_formula`` (equation numbers
removed inside ``\\[…\\]``) is OmniDocBench-specific and not applied.

**Missing EOS.** The PDF script treats a page without ``<｜end▁of▁sentence｜>`` as a repetition
and skips it (``SKIP_REPEAT``). Here the page is still converted and ``meta["eos"]`` says
whether the string was there; the retry rule decides. The string is only in the reply when the
request keeps special tokens (``skip_special_tokens=False``, as DeepSeek's scripts and vLLM's
recipe do), so ``eos=False`` is a repetition signal only for such requests.

**Furniture (tracr's choice; labels UNCONFIRMED).** DeepSeek's own code names only the
``image`` label (and ``title`` when drawing boxes) and deletes all others. tracr drops the
content of blocks labelled ``header``/``footer`` (the labels docling's
``docling/utils/deepseekocr_utils.py`` maps to page header/footer) and ``page_number`` (named
only in a third-party label map), up to the next grounding pair; ``keep_furniture=True`` keeps
them like any block. None of these three label names is confirmed by DeepSeek's repo or model
card.
"""

from __future__ import annotations

import re

from tracr.adapters.replies import ParsedReply

__all__ = ["EOS", "FURNITURE_LABELS", "has_eos", "parse"]

#: DeepSeek's end-of-sentence string as the PDF script looks for it (full-width bars, U+2581 in the middle).
EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
#: Grounding labels whose block tracr drops by default, and the furniture kind each is (see the module note).
FURNITURE_LABELS = {"header": "page_header", "footer": "page_footer", "page_number": "page_number"}

_PAIR = re.compile(r"<\|ref\|>(.*?)<\|/ref\|><\|det\|>(.*?)<\|/det\|>", re.DOTALL)
#: What a truncated or malformed reply can leave: a lone ref or det pair, an unclosed one at the end, a stray tag.
_LEFTOVER = (
    re.compile(r"<\|ref\|>.*?<\|/ref\|>", re.DOTALL),
    re.compile(r"<\|det\|>.*?<\|/det\|>", re.DOTALL),
    re.compile(r"<\|det\|>[^<]*\Z"),
    re.compile(r"<\|ref\|>[^<]*\Z"),
    re.compile(r"<\|/?(?:ref|det)\|>"),
)
_REPLACEMENTS = (("\\coloneqq", ":="), ("\\eqqcolon", "=:"), ("<center>", ""), ("</center>", ""))
_BLANK_RUNS = re.compile(r"\n{3,}")


def has_eos(reply: str) -> bool:
    """Whether the reply ends its generation properly: DeepSeek's PDF script skips a page without EOS as a repetition."""
    return EOS in reply


def _image_link(index: int) -> str:
    """The PDF/image scripts' link for the ``index``-th image of the page (``run_dpsk_ocr_image.py`` naming, no page number)."""
    return f"![](images/{index}.jpg)\n"


def _convert_pairs(text: str, keep_furniture: bool) -> tuple[str, tuple[str, ...]]:
    """Each grounding pair replaced (image) or deleted, furniture blocks' content dropped; the kinds dropped, once each."""
    matches = list(_PAIR.finditer(text))
    if not matches:
        return text, ()
    parts = [text[: matches[0].start()]]
    dropped: list[str] = []
    images = 0
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        content = text[match.end() : end]
        label = match.group(1).strip()
        kind = FURNITURE_LABELS.get(label.lower())
        if label == "image":
            parts.append(_image_link(images))
            images += 1
        elif kind and not keep_furniture:
            if kind not in dropped:
                dropped.append(kind)
            content = "\n\n" if content.endswith("\n") else ""
        parts.append(content)
    return "".join(parts), tuple(dropped)


def _clean(text: str) -> str:
    """Leftover tags removed, DeepSeek's LaTeX and ``<center>`` replacements, blank-line runs collapsed."""
    for pattern in _LEFTOVER:
        text = pattern.sub("", text)
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """DeepSeek-OCR grounding reply → Markdown; never fails. ``meta``: ``eos`` (the EOS string was in the reply)."""
    eos = has_eos(reply)
    text, dropped = _convert_pairs(reply.replace(EOS, ""), keep_furniture)
    return ParsedReply(markdown=_clean(text), meta={"eos": eos}, dropped=dropped)
