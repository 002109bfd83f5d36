"""Used by generic chat models: hosted GPT, Gemini and Claude, Qwen2.5-VL/Qwen3-VL, LightOnOCR.

These models answer in Markdown with no family format of their own; olmOCR-Bench's runners
(allenai/olmocr ``olmocr/bench/runners/run_server.py``, ``run_chatgpt.py``, ``run_claude.py``) store
the content as it comes. Chat models often wrap the whole answer in one code fence, which would
otherwise leave ```` ```markdown ```` debris on the page, so that one fence is taken off.
"""

from __future__ import annotations

import re

from tracr.adapters.replies import ParsedReply

__all__ = ["parse", "unwrap_fence"]

_OPEN = re.compile(r"```(?:markdown|md)?[ \t]*", re.IGNORECASE)
_CLOSE = re.compile(r"```[ \t]*")
_INNER_FENCE = re.compile(r"[ \t]{0,3}```(.*)")


def _only_nested_blocks(lines: list[str]) -> bool:
    """Whether the fences inside are code blocks nested in the outer one: each opens with a language and is closed.

    A bare fence line with no block open would close the outer fence (CommonMark), so the reply
    is then several blocks, not one enclosing fence.
    """
    inside = False
    for line in lines:
        fence = _INNER_FENCE.fullmatch(line)
        if not fence:
            continue
        has_info = bool(fence.group(1).strip())
        if inside:
            inside = has_info
        elif has_info:
            inside = True
        else:
            return False
    return not inside


def unwrap_fence(text: str) -> str:
    """``text`` stripped, without the one ```` ``` ```` / ```` ```markdown ```` / ```` ```md ```` fence around all of it.

    Only a fence whose opening line starts the text and whose closing line ends it is removed,
    and only when any fences inside are code blocks nested in it, so a reply that merely starts
    and ends with two different code blocks is left alone.
    """
    text = text.strip()
    lines = text.split("\n")
    if len(lines) < 2 or not _OPEN.fullmatch(lines[0]) or not _CLOSE.fullmatch(lines[-1]):
        return text
    inner = lines[1:-1]
    if not _only_nested_blocks(inner):
        return text
    return "\n".join(inner).strip()


def parse(reply: str, *, keep_furniture: bool = False) -> ParsedReply:
    """The reply as Markdown; never fails (an empty reply is an empty page).

    ``keep_furniture`` has no effect: a plain reply has no tagged headers or footers to tell apart.
    """
    return ParsedReply(markdown=unwrap_fence(reply))
