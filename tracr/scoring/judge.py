"""The pure logic of a pairwise LLM judge (no HTTP): prompt, verdict parsing, order de-biasing, stopping.

A vision LLM sees the page image and two anonymised outputs. Judges prefer whichever
output comes first (or second) often enough to matter, so each pair is judged in both
orders and a win counts only when both orders pick the same output after un-swapping;
anything else is a tie. Identical outputs tie without a call. Judging stops when the
ranking is settled (neighbouring Bradley–Terry intervals no longer overlap) or the call
budget is spent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "RUBRIC",
    "Winner",
    "Verdict",
    "JudgeVerdictError",
    "build_prompt",
    "parse_verdict",
    "combine_orders",
    "same_output",
    "PairDecision",
    "judge_pair",
    "StopDecision",
    "should_stop",
]

Winner = Literal["A", "B", "tie"]

RUBRIC = """You are judging two OCR transcriptions of the same page. The page image is attached.
Output A and Output B are anonymous; their order is random and says nothing about quality.

Decide which output is the better transcription of the page, using these criteria in
strict priority order (a higher criterion always outweighs all lower ones):
1. Faithfulness: no invented, hallucinated or repeated text; nothing that is not on the page.
2. Completeness: all text on the page is present (headers, footnotes, tables, captions).
3. Accuracy: characters, numbers, names and symbols are transcribed exactly.
4. Reading order: text follows the page's natural reading order (columns, tables).
5. Formatting: headings, lists, tables and math are represented sensibly.

If the outputs are equally good, or differ only in ways the criteria do not rank, answer "tie".

Reply with one JSON object and nothing else:
{"winner": "A" | "B" | "tie", "reason": "<one or two sentences naming the deciding criterion>"}"""


def build_prompt(output_a: str, output_b: str) -> str:
    """The rubric followed by both outputs, clearly delimited."""
    return f"{RUBRIC}\n\n=== Output A ===\n{output_a}\n=== End of Output A ===\n\n=== Output B ===\n{output_b}\n=== End of Output B ===\n"


class JudgeVerdictError(ValueError):
    """The judge's reply holds no usable verdict; the message quotes the start of the reply."""


@dataclass(frozen=True)
class Verdict:
    winner: Winner
    reason: str = ""


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_WINNERS: dict[str, Winner] = {"a": "A", "b": "B", "tie": "tie", "output a": "A", "output b": "B", "draw": "tie"}


def _json_objects(text: str) -> list[str]:
    """Balanced ``{...}`` spans (string-aware), outermost first."""
    spans: list[str] = []
    depth = 0
    start = -1
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def parse_verdict(reply: str) -> Verdict:
    """The verdict in a judge reply: JSON (possibly fenced or surrounded by prose).

    The last JSON object with a valid ``winner`` wins (models sometimes restate an example
    first). Raises ``JudgeVerdictError`` when there is none.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(reply)] + [reply]
    for blob in candidates:
        for raw in reversed(_json_objects(blob)):
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            winner = obj.get("winner")
            if not isinstance(winner, str) or winner.strip().lower() not in _WINNERS:
                continue
            reason = obj.get("reason", "")
            return Verdict(_WINNERS[winner.strip().lower()], reason if isinstance(reason, str) else json.dumps(reason))
    snippet = reply.strip().replace("\n", " ")[:120]
    raise JudgeVerdictError(f'no JSON verdict {{"winner": "A"|"B"|"tie", ...}} in judge reply: {snippet!r}')


def combine_orders(as_given: Verdict, swapped: Verdict) -> Winner:
    """``as_given`` judged (A, B); ``swapped`` judged (B, A). A win needs both to agree after un-swapping."""
    unswapped: Winner = {"A": "B", "B": "A", "tie": "tie"}[swapped.winner]  # type: ignore[assignment]
    if as_given.winner == unswapped and as_given.winner != "tie":
        return as_given.winner
    return "tie"


def same_output(a: str, b: str) -> bool:
    """Outputs that differ only in whitespace: a tie without asking the judge."""
    return a.split() == b.split()


@dataclass(frozen=True)
class PairDecision:
    """The combined outcome of one pair, with the verdicts it rests on (none when no call was needed)."""

    winner: Winner
    verdicts: tuple[Verdict, ...] = field(default=())

    @property
    def calls(self) -> int:
        return len(self.verdicts)


def judge_pair(output_a: str, output_b: str, ask: Callable[[str], str]) -> PairDecision:
    """Judge in both orders through ``ask(prompt) -> reply`` (the caller does the HTTP and the image)."""
    if same_output(output_a, output_b):
        return PairDecision("tie")
    first = parse_verdict(ask(build_prompt(output_a, output_b)))
    second = parse_verdict(ask(build_prompt(output_b, output_a)))
    return PairDecision(combine_orders(first, second), (first, second))


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop, why, and which neighbouring models still overlap (judge those next)."""

    stop: bool
    reason: str
    overlapping: tuple[tuple[str, str], ...] = ()


def should_stop(intervals: Mapping[str, tuple[float, float]], calls_made: int, budget: int) -> StopDecision:
    """Stop when the call budget is spent or, sorted by rating, no neighbours' intervals overlap."""
    ranked = sorted(intervals.items(), key=lambda item: -(item[1][0] + item[1][1]) / 2)
    overlapping = tuple(
        (upper, lower) for (upper, (up_low, _)), (lower, (_, low_high)) in zip(ranked, ranked[1:], strict=False) if up_low <= low_high
    )
    if calls_made >= budget:
        return StopDecision(True, f"call budget spent ({calls_made}/{budget})", overlapping)
    if len(ranked) < 2:
        return StopDecision(False, "fewer than two rated models", overlapping)
    if not overlapping:
        return StopDecision(True, "neighbouring intervals no longer overlap", overlapping)
    return StopDecision(False, f"{len(overlapping)} neighbouring pair(s) still overlap", overlapping)
