"""Used by the retry rules of Chandra (and any family whose reply can loop): is the text's tail one sequence repeated?

Chandra retries a generation whose Markdown ends in a repeating sequence
(datalab-to/chandra ``chandra/model/util.py::detect_repeat_token``, called from
``chandra/model/vllm.py``). The rule is reproduced here on plain text so any family can use it;
:func:`tracr.adapters.parsers.chandra_html.has_repeat` applies it to a Chandra reply exactly as
Chandra does (on the reply's Markdown).
"""

from __future__ import annotations

__all__ = ["repeating_tail", "repeats_at_tail"]

#: ``detect_repeat_token`` defaults: 4 base repeats, a 500-character window (candidate sequences of
#: 1..250 characters), and a scaling factor of 3 so that short sequences must repeat more often.
_BASE_MAX_REPEATS = 4
_WINDOW = 500
_SCALING = 3.0
#: ``chandra/model/vllm.py`` checks again with this many characters cut off, when the reply is longer.
_CUT = 50


def _repeat_limit(seq_len: int) -> int:
    """Repeats a sequence of ``seq_len`` characters may have before it counts as a loop (inverse scaling)."""
    return int(_BASE_MAX_REPEATS * (1 + _SCALING / seq_len))


def _tail_count_exceeds(text: str, seq_len: int, limit: int) -> bool:
    """Whether the last ``seq_len`` characters occur back-to-back at the end more than ``limit`` times."""
    candidate = text[-seq_len:]
    pos = len(text) - seq_len
    count = 0
    while pos >= 0 and text[pos : pos + seq_len] == candidate:
        count += 1
        if count > limit:
            return True
        pos -= seq_len
    return False


def repeating_tail(text: str, *, cut_from_end: int = 0) -> bool:
    """``detect_repeat_token`` on text that is already Markdown: some 1..250-character tail repeats too often.

    With ``cut_from_end`` the last characters are ignored first (Chandra's second check, which
    catches a loop followed by a partial, unfinished repeat).
    """
    if cut_from_end > 0:
        text = text[:-cut_from_end]
    for seq_len in range(1, _WINDOW // 2 + 1):
        if len(text) < seq_len:
            continue
        if _tail_count_exceeds(text, seq_len, _repeat_limit(seq_len)):
            return True
    return False


def repeats_at_tail(text: str) -> bool:
    """Chandra's retry condition on ``text``: a repeating tail, or one once the last 50 characters are cut.

    ``chandra/model/vllm.py``: ``detect_repeat_token(raw) or (len(raw) > 50 and detect_repeat_token(raw, cut_from_end=50))``.
    """
    return repeating_tail(text) or (len(text) > _CUT and repeating_tail(text, cut_from_end=_CUT))
