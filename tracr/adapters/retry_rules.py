"""A family's own rules for a reply that came back but cannot be used as it is.

Transport failures (429, 5xx, timeouts) are retried by the OCR client for every
model alike; these rules decide, per family, what to do with a *reply*: accept it,
ask again with other settings (olmOCR's temperature ladder and rotation, Chandra's
hotter retry), or fail the page with its own class, the raw reply kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tracr.adapters.parsing import parse_reply
from tracr.adapters.replies import ParsedReply, ReplyFormatError
from tracr.adapters.spec import Adapter, RetryRule
from tracr.errors import ErrorClass

__all__ = ["Attempt", "Verdict", "first_attempt", "judge_reply", "OLMOCR_MAX_ATTEMPTS", "CHANDRA_MAX_RETRIES"]

#: olmocr/pipeline.py --max_page_retries default.
OLMOCR_MAX_ATTEMPTS = 8
#: chandra/settings.py MAX_VLLM_RETRIES.
CHANDRA_MAX_RETRIES = 6
_CHANDRA_RETRY_SAMPLING = (0.3, 0.95)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request's settings: its number (1-based), sampling, and the page's rotation in degrees."""

    number: int
    temperature: float
    top_p: float | None
    rotation: int = 0
    best: ParsedReply | None = None  # olmOCR: the last valid reply, kept if no later one is better


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the family's rule makes of a reply: exactly one of ``page``, ``retry``, ``failure`` is set."""

    page: ParsedReply | None = None
    retry: Attempt | None = None
    failure: ErrorClass | None = None
    reason: str = ""


def first_attempt(adapter: Adapter) -> Attempt:
    return Attempt(1, adapter.sampling.temperature, adapter.sampling.top_p)


def _temperatures(adapter: Adapter) -> tuple[float, ...]:
    from tracr.adapters.registry import OLMOCR_TEMPERATURES, OLMOCR_V1_TEMPERATURES

    return OLMOCR_V1_TEMPERATURES if adapter.parser == "olmocr-v1-json" else OLMOCR_TEMPERATURES


def _parse(adapter: Adapter, raw: str, keep_furniture: bool) -> ParsedReply | ReplyFormatError:
    try:
        return parse_reply(adapter.parser, raw, keep_furniture=keep_furniture)
    except ReplyFormatError as exc:
        return exc


def _olmocr(adapter: Adapter, attempt: Attempt, finish_reason: str | None, raw: str, keep: bool) -> Verdict:
    parsed = _parse(adapter, raw, keep)
    valid = finish_reason == "stop" and isinstance(parsed, ParsedReply)
    ladder = _temperatures(adapter)
    more = attempt.number < OLMOCR_MAX_ATTEMPTS
    if valid:
        assert isinstance(parsed, ParsedReply)
        if parsed.meta.get("is_rotation_valid", True) is not False:
            return Verdict(page=parsed)
        if more:
            rotation = (attempt.rotation + int(parsed.meta.get("rotation_correction") or 0)) % 360
            nxt = attempt.number + 1
            return Verdict(retry=Attempt(nxt, ladder[min(nxt, len(ladder)) - 1], attempt.top_p, rotation, best=parsed))
        return Verdict(page=parsed)
    if more:
        nxt = attempt.number + 1
        return Verdict(retry=replace(attempt, number=nxt, temperature=ladder[min(nxt, len(ladder)) - 1]))
    if attempt.best is not None:
        return Verdict(page=attempt.best)
    why = parsed.reason if isinstance(parsed, ReplyFormatError) else f"finish_reason {finish_reason!r}, not 'stop'"
    return Verdict(failure=ErrorClass.UNPARSEABLE, reason=f"no valid olmOCR reply in {attempt.number} attempts: {why}")


def _chandra(adapter: Adapter, attempt: Attempt, raw: str, keep: bool) -> Verdict:
    from tracr.adapters.parsers.repetition import repeats_at_tail

    parsed = _parse(adapter, raw, keep)
    usable = isinstance(parsed, ParsedReply) and not repeats_at_tail(parsed.markdown)
    if usable:
        assert isinstance(parsed, ParsedReply)
        return Verdict(page=parsed)
    if attempt.number <= CHANDRA_MAX_RETRIES:
        temperature, top_p = _CHANDRA_RETRY_SAMPLING
        return Verdict(retry=Attempt(attempt.number + 1, temperature, top_p))
    if isinstance(parsed, ParsedReply):
        return Verdict(page=parsed)  # still repeating after every retry: chandra keeps the last answer too
    return Verdict(failure=ErrorClass.UNPARSEABLE, reason=parsed.reason)


def judge_reply(adapter: Adapter, attempt: Attempt, raw: str, finish_reason: str | None, *, keep_furniture: bool = False) -> Verdict:
    """Apply the family's rule to one reply."""
    match adapter.retry:
        case RetryRule.OLMOCR:
            return _olmocr(adapter, attempt, finish_reason, raw, keep_furniture)
        case RetryRule.CHANDRA:
            return _chandra(adapter, attempt, raw, keep_furniture)
        case RetryRule.DEEPSEEK if finish_reason == "length":
            return Verdict(
                failure=ErrorClass.REPETITION,
                reason="no end of sequence (cut at max_tokens): DeepSeek-OCR's own script drops such a page as a repetition",
            )
    parsed = _parse(adapter, raw, keep_furniture)
    if isinstance(parsed, ReplyFormatError):
        return Verdict(failure=ErrorClass.UNPARSEABLE, reason=f"not {adapter.parser} output: {parsed.reason}")
    return Verdict(page=parsed)
