"""Bradley-Terry ratings, bootstrap intervals and TRACR's online ELO, on known cases."""

from __future__ import annotations

import math
import random

import pytest

from tracr.review.ratings import bootstrap_intervals, bradley_terry, comparisons_from_votes, leaderboard, online_elo, win_probability
from tracr.review.votes import PageRef, Vote


def _vote(left: str, right: str, outcome: str, n: int = 0, voter: str = "ann") -> Vote:
    return Vote(
        vote_id=f"{n:032x}",
        job_id="job",
        left=PageRef(model_slug=left, run=1, pdf_slug="doc", page=n % 50 + 1),
        right=PageRef(model_slug=right, run=1, pdf_slug="doc", page=n % 50 + 1),
        outcome=outcome,
        voter=voter,
        created_at=f"2026-11-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
    )


def _votes(spec: list[tuple[str, str, str, int]]) -> list[Vote]:
    """``(left, right, outcome, count)`` rows, numbered so ids and times are unique."""
    out, n = [], 0
    for left, right, outcome, count in spec:
        for _ in range(count):
            out.append(_vote(left, right, outcome, n))
            n += 1
    return out


def test_dominance_order_is_recovered():
    votes = _votes(
        [
            ("a", "b", "left", 8),
            ("a", "b", "right", 2),
            ("b", "c", "left", 8),
            ("b", "c", "right", 2),
            ("c", "a", "right", 9),
            ("c", "a", "left", 1),
        ]
    )
    board = leaderboard(votes, rounds=200)
    assert [r.model for r in board] == ["a", "b", "c"]
    assert board[0].rating > board[1].rating + 100 > board[2].rating + 200
    a = board[0]
    assert (a.wins, a.losses, a.ties, a.votes) == (17, 3, 0, 20)
    assert all(r.ci_low <= r.rating <= r.ci_high for r in board)
    assert sum(r.rating for r in board) / 3 == pytest.approx(1000.0, abs=1e-6)


def test_rating_scale_is_400_log10_odds():
    # 300 wins to 100: the prior is negligible, the gap is 400*log10(3) ~ 190.8 points.
    ratings = bradley_terry([("a", "b", 1.0)] * 300 + [("a", "b", 0.0)] * 100)
    assert ratings["a"] - ratings["b"] == pytest.approx(400 * math.log10(3), abs=1.0)
    assert win_probability(ratings["a"], ratings["b"]) == pytest.approx(0.75, abs=0.002)


def test_ties_and_both_bad_give_equal_ratings():
    votes = _votes([("a", "b", "tie", 10), ("b", "a", "both_bad", 10), ("a", "b", "left", 3), ("a", "b", "right", 3)])
    board = leaderboard(votes, rounds=200)
    assert board[0].rating == pytest.approx(1000.0, abs=1e-9) and board[1].rating == pytest.approx(1000.0, abs=1e-9)
    assert all((r.wins, r.losses, r.ties, r.votes) == (3, 3, 20, 26) for r in board)
    assert board[0].elo == pytest.approx(board[1].elo, abs=30)  # online ELO is order dependent, BT is not


def test_skips_and_self_pairs_change_nothing():
    base = _votes([("a", "b", "left", 6), ("a", "b", "right", 2)])
    noisy = base + [_vote("a", "b", "skip", 100 + i) for i in range(20)] + [_vote("a", "a", "left", 200 + i) for i in range(5)]
    assert comparisons_from_votes(noisy) == comparisons_from_votes(base)
    plain, extra = leaderboard(base, rounds=100), leaderboard(noisy, rounds=100)
    assert [r.to_dict() for r in plain] == [r.to_dict() for r in extra]


def test_disconnected_graph_gives_finite_ratings_and_wide_intervals():
    votes = _votes([("a", "b", "left", 3), ("a", "b", "right", 1), ("c", "d", "left", 3), ("c", "d", "right", 1)])
    board = {r.model: r for r in leaderboard(votes, rounds=500)}
    assert set(board) == {"a", "b", "c", "d"}
    for rating in board.values():
        assert all(math.isfinite(x) for x in (rating.rating, rating.ci_low, rating.ci_high, rating.elo))
        assert rating.ci_low <= rating.rating <= rating.ci_high
        assert rating.ci_high - rating.ci_low > 150  # four votes per component decide little
    # each component is centred on 1000 by the prior, so the two winners tie
    assert board["a"].rating == pytest.approx(board["c"].rating, abs=1e-6)


def test_a_model_that_wins_every_vote_stays_finite():
    ratings = bradley_terry([("a", "b", 1.0)] * 50 + [("b", "c", 1.0)] * 50)
    assert all(math.isfinite(r) for r in ratings.values())
    assert ratings["a"] > ratings["b"] > ratings["c"]
    low, high = bootstrap_intervals([("a", "b", 1.0)] * 50, rounds=100)["a"]
    assert math.isfinite(low) and math.isfinite(high)


def test_deterministic_given_votes_and_seed_in_any_order():
    votes = _votes([("a", "b", "left", 7), ("a", "b", "right", 5), ("b", "c", "tie", 4), ("c", "a", "left", 3), ("c", "a", "right", 4)])
    first = [r.to_dict() for r in leaderboard(votes, seed=7)]
    again = [r.to_dict() for r in leaderboard(votes, seed=7)]
    shuffled = list(votes)
    random.Random(1).shuffle(shuffled)
    reordered = [r.to_dict() for r in leaderboard(shuffled, seed=7)]
    assert first == again == reordered
    other_seed = [r.to_dict() for r in leaderboard(votes, seed=8)]
    assert [r["rating"] for r in other_seed] == [r["rating"] for r in first]  # the fit itself has no randomness
    assert [(r["ci_low"], r["ci_high"]) for r in other_seed] != [(r["ci_low"], r["ci_high"]) for r in first]


def test_intervals_narrow_with_more_votes():
    few = bootstrap_intervals([("a", "b", 1.0)] * 6 + [("a", "b", 0.0)] * 4, rounds=300)
    many = bootstrap_intervals([("a", "b", 1.0)] * 600 + [("a", "b", 0.0)] * 400, rounds=300)
    assert many["a"][1] - many["a"][0] < (few["a"][1] - few["a"][0]) / 4


def test_online_elo_matches_a_hand_computed_sequence():
    # start 1000, K = 24, E_a = 1 / (1 + 10^((R_b - R_a) / 400))
    # 1. a beats b: E_a = 0.5 -> a = 1000 + 24 * 0.5 = 1012, b = 988
    # 2. tie: E_a = 1 / (1 + 10^(-24/400)) = 0.5344827 -> a = 1012 + 24 * (0.5 - 0.5344827) = 1011.17239
    # 3. b beats a: E_a = 1 / (1 + 10^(-22.34477/400)) = 0.5320932 -> a = 1011.17239 - 24 * 0.5320932 = 998.40216
    # 4. a beats b: E_a = 1 / (1 + 10^(3.19663/400)) = 0.4954006 -> a = 998.40216 + 24 * 0.5045994 = 1010.51254
    ratings = online_elo([("a", "b", 1.0), ("a", "b", 0.5), ("b", "a", 1.0), ("a", "b", 1.0)])
    assert ratings["a"] == pytest.approx(1010.5125, abs=1e-3)
    assert ratings["b"] == pytest.approx(2000 - 1010.5125, abs=1e-3)
    assert online_elo([("a", "b", 1.0)]) == {"a": 1012.0, "b": 988.0}


def test_leaderboard_elo_follows_vote_time_and_skips_change_nothing():
    votes = _votes([("a", "b", "left", 1), ("a", "b", "tie", 1), ("a", "b", "right", 1), ("a", "b", "skip", 3), ("a", "b", "left", 1)])
    board = {r.model: r for r in leaderboard(votes, rounds=50)}
    assert board["a"].elo == pytest.approx(1010.5125, abs=1e-3)


def test_empty_votes_give_an_empty_board():
    assert leaderboard([]) == []
    assert bradley_terry([]) == {} and bootstrap_intervals([]) == {} and online_elo([]) == {}
