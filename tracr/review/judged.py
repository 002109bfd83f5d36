"""Judge votes beside human votes: who voted, and how often an LLM judge agrees with people.

An LLM judge's verdicts are ordinary votes (``votes.jsonl``) whose voter is
``judge:<model>``; everything else is a human. Agreement is measured on the pairs
both judged (same page, same two runs): the share where the judge picked the same
winner (or a tie) as the human majority for that pair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tracr.review.votes import PageRef, Vote

__all__ = ["JUDGE_PREFIX", "judge_voter", "is_judge", "split_votes", "pair_key", "winner_of", "Agreement", "agreement"]

JUDGE_PREFIX = "judge:"


def judge_voter(model: str) -> str:
    return f"{JUDGE_PREFIX}{model}"[:200]


def is_judge(voter: str) -> bool:
    return voter.startswith(JUDGE_PREFIX)


def split_votes(votes: Iterable[Vote]) -> tuple[list[Vote], list[Vote]]:
    """``(human votes, judge votes)``."""
    human: list[Vote] = []
    judge: list[Vote] = []
    for vote in votes:
        (judge if is_judge(vote.voter) else human).append(vote)
    return human, judge


def pair_key(vote: Vote) -> tuple[str, tuple[PageRef, PageRef]]:
    """The pair a vote is about, whichever side each output was shown on."""
    a, b = sorted((vote.left, vote.right), key=lambda r: (r.model_slug, r.run, r.pdf_slug, r.page))
    return vote.job_id, (a, b)


def winner_of(vote: Vote) -> str | None:
    """The winning model slug, ``"tie"`` (tie or both bad), or ``None`` for a skip."""
    if vote.outcome == "left":
        return vote.left.model_slug
    if vote.outcome == "right":
        return vote.right.model_slug
    return None if vote.outcome == "skip" else "tie"


@dataclass(frozen=True)
class Agreement:
    pairs: int  # pairs both a human and the judge voted on
    agreed: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None


def agreement(votes: Sequence[Vote]) -> Agreement:
    """How often the judge's verdict equals the human majority, over pairs both judged (skips ignored)."""
    human: dict[object, Counter[str]] = defaultdict(Counter)
    judge: dict[object, str] = {}
    for vote in votes:
        winner = winner_of(vote)
        if winner is None:
            continue
        if is_judge(vote.voter):
            judge[pair_key(vote)] = winner
        else:
            human[pair_key(vote)][winner] += 1
    pairs = agreed = 0
    for key, verdict in judge.items():
        if key not in human:
            continue
        pairs += 1
        top = human[key].most_common()
        if top[0][0] == verdict and (len(top) == 1 or top[1][1] < top[0][1]):
            agreed += 1
    return Agreement(pairs, agreed)
