"""LLM-judge logic and cost arithmetic."""

from __future__ import annotations

import pytest

from tracr.scoring.cost import TokenPrices, cost_per_1000_pages_from_throughput, cost_per_1000_pages_from_tokens
from tracr.scoring.judge import (
    RUBRIC,
    JudgeVerdictError,
    Verdict,
    build_prompt,
    combine_orders,
    judge_pair,
    parse_verdict,
    should_stop,
)


def test_rubric_ranks_criteria_in_the_agreed_order() -> None:
    order = [RUBRIC.index(word) for word in ("Faithfulness", "Completeness", "Accuracy", "Reading order", "Formatting")]
    assert order == sorted(order)
    prompt = build_prompt("left text", "right text")
    assert prompt.index("left text") < prompt.index("=== Output B ===") < prompt.index("right text")


@pytest.mark.parametrize(
    ("reply", "winner", "reason"),
    [
        ('{"winner": "A", "reason": "more complete"}', "A", "more complete"),
        ('```json\n{"winner": "b", "reason": "x"}\n```', "B", "x"),
        ('Sure! Here is my verdict: {"winner": "tie", "reason": "same {braces} inside"} Thanks.', "tie", "same {braces} inside"),
        ('Format: {"winner": "A"|"B"} ... final: {"winner": "B", "reason": "A hallucinated"}', "B", "A hallucinated"),
        ('{"winner": "Output A"}', "A", ""),
    ],
)
def test_parse_verdict_tolerates_wrapping(reply: str, winner: str, reason: str) -> None:
    assert parse_verdict(reply) == Verdict(winner, reason)  # type: ignore[arg-type]


@pytest.mark.parametrize("reply", ["", "A is better", '{"winner": "C"}', '{"verdict": "A"}', "[1, 2]", '{"winner": "A"'])
def test_parse_verdict_rejects_garbage(reply: str) -> None:
    with pytest.raises(JudgeVerdictError, match="no JSON verdict"):
        parse_verdict(reply)


def test_combine_orders_needs_agreement_after_unswapping() -> None:
    a, b, tie = Verdict("A"), Verdict("B"), Verdict("tie")
    assert combine_orders(a, b) == "A"  # first order says A; swapped order says B, i.e. the same output
    assert combine_orders(b, a) == "B"
    assert combine_orders(a, a) == "tie"  # always the first position: position bias, not a preference
    assert combine_orders(tie, b) == "tie" and combine_orders(a, tie) == "tie" and combine_orders(tie, tie) == "tie"


def test_judge_pair_asks_both_orders_and_skips_identical_outputs() -> None:
    prompts: list[str] = []

    def prefers_good(prompt: str) -> str:
        prompts.append(prompt)
        first = prompt.split("=== Output A ===")[1].split("=== End of Output A ===")[0]
        return '{"winner": "A", "reason": "r"}' if "good" in first else '{"winner": "B", "reason": "r"}'

    assert judge_pair("bad text", "good text", prefers_good).winner == "B"
    assert judge_pair("good text", "bad text", prefers_good).winner == "A"
    assert len(prompts) == 4
    same = judge_pair("same  text\n", "same text", prefers_good)
    assert same.winner == "tie" and same.calls == 0 and len(prompts) == 4
    biased = judge_pair("one", "two", lambda prompt: '{"winner": "A"}')
    assert biased.winner == "tie" and biased.calls == 2


def test_should_stop_on_separation_or_budget() -> None:
    overlapping = {"m1": (1.0, 2.0), "m2": (1.5, 2.5), "m3": (-1.0, 0.0)}
    decision = should_stop(overlapping, calls_made=10, budget=100)
    assert not decision.stop and decision.overlapping == (("m2", "m1"),)
    separated = {"low": (-1.0, 0.0), "high": (1.0, 2.0), "mid": (0.2, 0.8)}
    assert should_stop(separated, 10, 100).stop
    assert should_stop(overlapping, 100, 100).stop and "budget" in should_stop(overlapping, 100, 100).reason
    assert not should_stop({"only": (0.0, 1.0)}, 0, 10).stop


def test_cost_from_tokens_and_throughput() -> None:
    prices = TokenPrices(input_per_million=3.0, output_per_million=15.0)
    # 1,000 input + 500 output tokens per page: 0.003 + 0.0075 per page.
    assert cost_per_1000_pages_from_tokens(10_000, 5_000, 10, prices) == pytest.approx(10.5)
    # 2 pages/s: 1,000 pages take 500 s = 0.1389 h of a 3.60/h GPU.
    assert cost_per_1000_pages_from_throughput(2.0, 3.6) == pytest.approx(0.5)
    assert cost_per_1000_pages_from_throughput(2.0, 3.6, gpus=4) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        cost_per_1000_pages_from_tokens(1, 1, 0, prices)
    with pytest.raises(ValueError):
        cost_per_1000_pages_from_throughput(0.0, 3.6)
