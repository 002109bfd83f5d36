"""A jury of LLM judges: each judge's verdicts, how often judges agree, and one ranking whose interval carries their disagreement.

Each judge's votes are ordinary votes with the voter ``judge:<model>``
(:mod:`tracr.review.judged`). Agreement between two judges is measured on the pairs
both judged (same page, same two runs): the share where they named the same winner
(or both a tie). A judge's agreement with people uses :func:`tracr.review.judged.agreement`
(the human majority of each pair).

The jury ranking is Bradley–Terry on every judge's votes pooled; its 95% interval comes
from a two-level bootstrap: each round draws the judges with replacement, then each
drawn judge's votes with replacement, and refits. When the judges disagree, rounds that
draw mostly one judge or mostly another move the ratings apart, so the interval widens
with the disagreement; when they agree it is as narrow as their pooled votes allow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from tracr.review.judged import Agreement, agreement, is_judge, pair_key, winner_of
from tracr.review.ratings import ModelRating, bradley_terry, comparisons_from_votes, leaderboard
from tracr.review.votes import Vote

__all__ = ["JudgePair", "by_judge", "judge_agreement", "agreement_with_others", "human_agreement", "jury_leaderboard"]


@dataclass(frozen=True)
class JudgePair:
    """How often two judges named the same winner, over the pairs both judged."""

    a: str
    b: str
    pairs: int
    agreed: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.pairs if self.pairs else None


def by_judge(votes: Sequence[Vote]) -> dict[str, list[Vote]]:
    """Judge voter -> its votes (humans left out), judges sorted by name."""
    out: dict[str, list[Vote]] = defaultdict(list)
    for vote in votes:
        if is_judge(vote.voter):
            out[vote.voter].append(vote)
    return dict(sorted(out.items()))


def _verdicts(votes: Sequence[Vote]) -> dict[object, str]:
    found: dict[object, str] = {}
    for vote in votes:
        winner = winner_of(vote)
        if winner is not None:
            found[pair_key(vote)] = winner  # a later verdict on the same pair replaces an earlier one
    return found


def judge_agreement(votes: Sequence[Vote]) -> list[JudgePair]:
    """Every pair of judges with the pairs both judged and how many they agreed on."""
    verdicts = {judge: _verdicts(vs) for judge, vs in by_judge(votes).items()}
    out = []
    for a, b in combinations(verdicts, 2):
        shared = verdicts[a].keys() & verdicts[b].keys()
        out.append(JudgePair(a, b, len(shared), sum(1 for key in shared if verdicts[a][key] == verdicts[b][key])))
    return out


def agreement_with_others(pairs: Sequence[JudgePair]) -> dict[str, Agreement]:
    """Each judge's agreement with all the other judges together (pairs summed over the others)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair in pairs:
        for judge in (pair.a, pair.b):
            totals[judge][0] += pair.pairs
            totals[judge][1] += pair.agreed
    return {judge: Agreement(n, agreed) for judge, (n, agreed) in sorted(totals.items())}


def human_agreement(votes: Sequence[Vote]) -> dict[str, Agreement]:
    """Each judge's agreement with the human majority, on the pairs both judged (empty when no human voted)."""
    humans = [v for v in votes if not is_judge(v.voter)]
    if not humans:
        return {}
    return {judge: agreement([*humans, *vs]) for judge, vs in by_judge(votes).items()}


def jury_leaderboard(votes: Sequence[Vote], *, rounds: int = 1000, seed: int = 0) -> list[ModelRating]:
    """Bradley–Terry on every judge's votes pooled; intervals from the judges-then-votes bootstrap."""
    judges = by_judge(votes)
    pooled = [v for vs in judges.values() for v in vs]
    board = leaderboard(pooled, rounds=0)
    if not board or rounds <= 0:
        return board
    per_judge = [comparisons_from_votes(sorted(vs, key=lambda v: (v.created_at, v.vote_id))) for vs in judges.values()]
    per_judge = [c for c in per_judge if c]
    rng = np.random.default_rng(seed)
    names = [r.model for r in board]
    samples = np.full((rounds, len(names)), np.nan)
    for r in range(rounds):
        drawn = rng.integers(0, len(per_judge), size=len(per_judge))
        comparisons = []
        for k in drawn:
            chosen = per_judge[int(k)]
            comparisons += [chosen[int(i)] for i in rng.integers(0, len(chosen), size=len(chosen))]
        ratings = bradley_terry(comparisons)
        samples[r] = [ratings.get(name, np.nan) for name in names]
    for k, row in enumerate(board):
        column = samples[:, k][~np.isnan(samples[:, k])]
        if column.size:
            row.ci_low, row.ci_high = (float(x) for x in np.percentile(column, [2.5, 97.5]))
            row.bootstrap_median = float(np.median(column))
    return board
