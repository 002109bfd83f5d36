"""Model ratings from pairwise votes: Bradley-Terry with bootstrap CIs, and online ELO.

Bradley-Terry (BT) is the rating: it is fitted on all votes at once, so it does
not depend on the order votes arrived in. Strengths ``theta`` (natural log-odds)
maximise ``sum s_ab*log(sigmoid(theta_a - theta_b)) + (1 - s_ab)*log(sigmoid(theta_b - theta_a))
- (PRIOR_PRECISION / 2) * sum theta^2``, where a tie or "both bad" counts as half a win
each side. The small Gaussian prior keeps the fit finite when a model wins every
vote or the comparison graph is disconnected (each component is then centred on
1000 and its CIs stay wide). Ratings are ``400 * log10(odds) + 1000``, i.e.
``1000 + theta * 400 / ln 10``, and a 95% CI is the 2.5/97.5 percentile of 1,000
bootstrap refits on votes resampled with replacement. The online ELO that TRACR
showed (start 1000, K=24) is computed beside it for continuity; it depends on
vote order, which is why it is not the headline number. See docs/ranking.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tracr.outputs.files import write_json_atomic
from tracr.outputs.layout import VOTES_FILE
from tracr.outputs.timestamps import utc_now
from tracr.review.votes import OUTCOMES, Vote, ratings_path, read_votes

__all__ = [
    "ModelRating",
    "PRIOR_PRECISION",
    "SCALE",
    "BASE",
    "Comparison",
    "comparisons_from_votes",
    "rebuild_ratings",
    "bradley_terry",
    "bootstrap_intervals",
    "bootstrap_summary",
    "online_elo",
    "win_probability",
    "leaderboard",
]

Comparison = tuple[str, str, float]

PRIOR_PRECISION = 0.1
"""L2 penalty on natural-log strengths: a N(0, 1/0.1) prior, sd ~3.2 nats ~550 rating points."""
SCALE = 400.0 / math.log(10.0)
BASE = 1000.0
_SCORES = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}


@dataclass
class ModelRating:
    """One row of the leaderboard."""

    model: str
    rating: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    votes: int
    elo: float
    bootstrap_median: float | None = None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("rating", "ci_low", "ci_high", "elo", "bootstrap_median"):
            if data[key] is not None:
                data[key] = round(float(data[key]), 2)
        return data


def comparisons_from_votes(votes: Iterable[Vote]) -> list[Comparison]:
    """``(left model, right model, left's score)`` per vote; skips and self-pairs dropped.

    A vote between two runs of the same model says nothing about models, so it
    does not enter the ratings.
    """
    out = []
    for vote in votes:
        score = _SCORES.get(vote.outcome)
        if score is None or vote.left.model_slug == vote.right.model_slug:
            continue
        out.append((vote.left.model_slug, vote.right.model_slug, score))
    return out


def _players(comparisons: Iterable[Comparison]) -> list[str]:
    return sorted({name for a, b, _ in comparisons for name in (a, b)})


def _grouped(comparisons: Sequence[Comparison], players: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(i, j, score)`` kinds and how many votes each has, in a fixed order."""
    index = {name: i for i, name in enumerate(players)}
    counts: dict[tuple[int, int, float], int] = defaultdict(int)
    for a, b, score in comparisons:
        if a == b:
            continue
        i, j = index[a], index[b]
        if i > j:  # store each pair one way round so grouping is order-independent
            i, j, score = j, i, 1.0 - score
        counts[(i, j, float(score))] += 1
    keys = sorted(counts)
    firsts = np.array([k[0] for k in keys], dtype=np.int64)
    seconds = np.array([k[1] for k in keys], dtype=np.int64)
    scores = np.array([k[2] for k in keys], dtype=np.float64)
    weights = np.array([counts[k] for k in keys], dtype=np.float64)
    return firsts, seconds, scores, weights


def _fit(n_players: int, i: np.ndarray, j: np.ndarray, s: np.ndarray, n: np.ndarray, prior: float = PRIOR_PRECISION) -> np.ndarray:
    """MAP strengths by Newton's method (the objective is strictly concave)."""
    if not prior > 0:
        raise ValueError(f"prior precision must be > 0 (got {prior}); without it strengths are not identified")
    theta = np.zeros(n_players)
    if n_players == 0:
        return theta
    wins = np.zeros(n_players)  # observed score of each player
    np.add.at(wins, i, n * s)
    np.add.at(wins, j, n * (1.0 - s))
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(theta[i] - theta[j])))
        expected = np.zeros(n_players)
        np.add.at(expected, i, n * p)
        np.add.at(expected, j, n * (1.0 - p))
        grad = wins - expected - prior * theta
        w = n * p * (1.0 - p)
        hess = np.zeros((n_players, n_players))
        np.add.at(hess, (i, i), w)
        np.add.at(hess, (j, j), w)
        np.add.at(hess, (i, j), -w)
        np.add.at(hess, (j, i), -w)
        hess[np.diag_indices(n_players)] += prior
        step = np.linalg.solve(hess, grad)
        largest = np.max(np.abs(step))
        if largest > 4.0:  # damp the first steps on lopsided data; Newton is exact near the optimum
            step *= 4.0 / largest
        theta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def _to_ratings(theta: np.ndarray) -> np.ndarray:
    return BASE + SCALE * theta


def bradley_terry(comparisons: Sequence[Comparison], *, prior: float = PRIOR_PRECISION) -> dict[str, float]:
    """BT ratings (``400*log10 odds + 1000``) from ``(a, b, score_a)`` comparisons."""
    players = _players(comparisons)
    i, j, s, n = _grouped(comparisons, players)
    theta = _fit(len(players), i, j, s, n, prior)
    return {name: float(r) for name, r in zip(players, _to_ratings(theta), strict=False)}


def bootstrap_summary(
    comparisons: Sequence[Comparison], *, rounds: int = 1000, seed: int = 0, prior: float = PRIOR_PRECISION
) -> dict[str, tuple[float, float, float]]:
    """``(median, 2.5th, 97.5th percentile)`` of each rating over bootstrap refits.

    Each round draws as many votes as there are, with replacement (a multinomial
    over the distinct kinds of vote, which is the same distribution and much
    faster); the same seed and votes give the same answer in any order.
    """
    players = _players(comparisons)
    if not players:
        return {}
    i, j, s, n = _grouped(comparisons, players)
    total = int(n.sum())
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(players)))
    for r in range(rounds):
        counts = rng.multinomial(total, n / total).astype(np.float64)
        keep = counts > 0
        samples[r] = _to_ratings(_fit(len(players), i[keep], j[keep], s[keep], counts[keep], prior))
    median = np.median(samples, axis=0)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return {name: (float(median[k]), float(low[k]), float(high[k])) for k, name in enumerate(players)}


def bootstrap_intervals(
    comparisons: Sequence[Comparison], *, rounds: int = 1000, seed: int = 0, prior: float = PRIOR_PRECISION
) -> dict[str, tuple[float, float]]:
    """95% bootstrap interval ``(low, high)`` of each model's BT rating."""
    return {name: (low, high) for name, (_, low, high) in bootstrap_summary(comparisons, rounds=rounds, seed=seed, prior=prior).items()}


def win_probability(rating_a: float, rating_b: float) -> float:
    """Chance that a beats b under the BT/ELO scale (400 points = 10:1 odds)."""
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))


def online_elo(comparisons: Sequence[Comparison], *, k: float = 24, start: float = 1000) -> dict[str, float]:
    """TRACR's online ELO, applying the comparisons in the order given.

    Ties (both good or both bad) score half; skips never reach here.
    """
    ratings: dict[str, float] = {}
    for a, b, score in comparisons:
        if a == b:
            continue
        ra, rb = ratings.setdefault(a, start), ratings.setdefault(b, start)
        expected_a = win_probability(ra, rb)
        ratings[a] = ra + k * (score - expected_a)
        ratings[b] = rb + k * ((1.0 - score) - (1.0 - expected_a))
    return ratings


def leaderboard(votes: Sequence[Vote], *, rounds: int = 1000, seed: int = 0) -> list[ModelRating]:
    """Every model that took part in a counted vote, best BT rating first.

    Votes are put in time order (then id) for the online ELO, so the answer
    does not depend on how the files were concatenated.
    """
    ordered = sorted(votes, key=lambda v: (v.created_at, v.vote_id))
    comparisons = comparisons_from_votes(ordered)
    ratings = bradley_terry(comparisons)
    summary = bootstrap_summary(comparisons, rounds=rounds, seed=seed) if rounds > 0 else {}
    elo = online_elo(comparisons)
    tally: dict[str, list[int]] = {name: [0, 0, 0] for name in ratings}
    for a, b, score in comparisons:
        if score == 1.0:
            tally[a][0] += 1
            tally[b][1] += 1
        elif score == 0.0:
            tally[a][1] += 1
            tally[b][0] += 1
        else:
            tally[a][2] += 1
            tally[b][2] += 1
    board = []
    for name, rating in ratings.items():
        median, low, high = summary.get(name, (rating, rating, rating))
        wins, losses, ties = tally[name]
        board.append(
            ModelRating(
                model=name,
                rating=rating,
                ci_low=low,
                ci_high=high,
                wins=wins,
                losses=losses,
                ties=ties,
                votes=wins + losses + ties,
                elo=elo[name],
                bootstrap_median=median,
            )
        )
    board.sort(key=lambda r: (-r.rating, r.model))
    return board


def rebuild_ratings(outputs_root: Path, job_id: str, *, seed: int = 0) -> Path:
    """Recompute ``elo/ratings.json`` from the job's votes; returns its path."""
    votes = read_votes(outputs_root, job_id)
    board = leaderboard(votes, seed=seed)
    path = ratings_path(outputs_root, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {outcome: sum(1 for v in votes if v.outcome == outcome) for outcome in OUTCOMES}
    write_json_atomic(
        path,
        {
            "job_id": job_id,
            "derived_from": VOTES_FILE,
            "votes": len(votes),
            "outcomes": counts,
            "seed": seed,
            "method": "Bradley-Terry (L2 prior), 400*log10 odds + 1000, bootstrap 95% CI; online ELO K=24 beside it",
            "ratings": [rating.to_dict() for rating in board],
            "updated_at": utc_now(),
        },
    )
    return path
