"""Every ranking of a job, per collection and for the whole job, each with its interval and how much is behind it.

* votes (human, and the LLM judge's apart): Bradley-Terry with bootstrap intervals
  (:func:`tracr.review.ratings.leaderboard`) on the votes about that collection's pages;
* olmOCR-Bench tests: pass rate (mean of category rates) with intervals resampled within
  categories (:func:`tracr.scoring.stats.bootstrap_intervals`) on that collection's tests;
* reference pages: mean text similarity (1 - character NED) with a bootstrap over pages;
* page health: pages that failed or have a health issue, with a Wilson 95% interval;
* speed: mean seconds per page; cost per 1,000 pages from the pages' tokens and the
  config's prices (a GPU-hour price is spread by each collection's share of the latency);
  both with a bootstrap interval over the pages.

:func:`winner_flips` says in plain words when a model wins one collection and loses
another; :func:`unresolved_collections` names the collections whose order is not yet
settled (for pairing votes and judge calls where they teach most).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracr.config.collections import ALL
from tracr.reporting.job_data import JobData
from tracr.review.judged import Agreement
from tracr.review.jury import JudgePair, by_judge, human_agreement, judge_agreement, jury_leaderboard
from tracr.review.ratings import ModelRating, leaderboard
from tracr.review.votes import Vote
from tracr.scoring import stats

__all__ = [
    "RateRow",
    "CollectionBoard",
    "wilson",
    "collection_boards",
    "winner_flips",
    "unresolved_collections",
    "quality_of",
    "METRICS",
]

METRICS = ("human votes", "judge votes", "tests", "reference")


@dataclass(frozen=True)
class RateRow:
    """A model's rate (0-1, or seconds/cost for speed and cost) with its interval and the count behind it."""

    model: str
    estimate: float
    low: float
    high: float
    n: int

    def overlaps(self, other: RateRow) -> bool:
        return not (self.low > other.high or other.low > self.high)


@dataclass
class CollectionBoard:
    """The rankings of one collection (or of the whole job, named ``all``)."""

    name: str
    pages: int
    human: list[ModelRating] = field(default_factory=list)
    human_votes: int = 0
    judge: list[ModelRating] = field(default_factory=list)  # one judge: its BT; several: the jury's (tracr.review.jury)
    judge_votes: int = 0
    judges: list[str] = field(default_factory=list)
    judge_pairs: list[JudgePair] = field(default_factory=list)  # agreement between judges
    judge_people: dict[str, Agreement] = field(default_factory=dict)  # each judge against the human majority
    tests: list[RateRow] = field(default_factory=list)  # best first
    n_tests: int = 0
    reference: list[RateRow] = field(default_factory=list)  # text similarity to reference pages (1 - char NED), best first
    health: list[RateRow] = field(default_factory=list)  # share of pages failed or unhealthy, best (lowest) first
    seconds_per_page: dict[str, float] = field(default_factory=dict)
    seconds_interval: dict[str, tuple[float, float]] = field(default_factory=dict)  # bootstrap 95% over pages
    cost_per_1000: dict[str, float] = field(default_factory=dict)
    cost_interval: dict[str, tuple[float, float]] = field(default_factory=dict)

    def ranking(self, metric: str) -> list[tuple[str, float, float, float, int]]:
        """``(model, estimate, low, high, n)`` best first for a metric of :data:`METRICS`."""
        if metric in ("tests", "reference"):
            return [(r.model, r.estimate, r.low, r.high, r.n) for r in (self.tests if metric == "tests" else self.reference)]
        board = self.human if metric == "human votes" else self.judge
        return [(r.model, r.rating, r.ci_low, r.ci_high, r.votes) for r in board]


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float, float]:
    """``(rate, low, high)``: the Wilson score interval, sound for small counts and rates near 0 or 1."""
    if n <= 0:
        return 0.0, 0.0, 0.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _vote_board(votes: Sequence[Vote], keep: set[tuple[str, int]], rounds: int, seed: int) -> tuple[list[ModelRating], int]:
    chosen = [v for v in votes if (v.left.pdf_slug, v.left.page) in keep and v.outcome != "skip"]
    return (leaderboard(chosen, rounds=rounds, seed=seed) if chosen else []), len(chosen)


def _test_board(data: JobData, keep: set[tuple[str, int]], n_boot: int, seed: int) -> tuple[list[RateRow], int]:
    runs = {m.slug: m.run for m in data.models}
    repeats: dict[tuple[str, str], list[bool]] = defaultdict(list)  # (model, test id) -> passed per run
    category: dict[str, str] = {}
    for row in data.test_rows:
        if (row.get("pdf_slug"), row.get("page")) not in keep or row.get("model_slug") not in runs:
            continue
        repeats[(str(row["model_slug"]), str(row["id"]))].append(bool(row.get("passed")))
        category[str(row["id"])] = str(row.get("category") or row.get("type") or "tests")
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (model, test_id), passed in sorted(repeats.items()):
        scores[model][category[test_id]].append(1.0 if sum(passed) / len(passed) > 0.5 else 0.0)  # olmOCR: most repeats pass
    rows = []
    for model, by_category in scores.items():
        rates = stats.bootstrap_intervals(by_category, n_boot=n_boot, seed=seed)
        rows.append(RateRow(model, rates.overall.estimate, rates.overall.low, rates.overall.high, rates.n_tests))
    rows.sort(key=lambda r: (-r.estimate, r.model))
    return rows, len(category)


def _reference_board(data: JobData, keep: set[tuple[str, int]], n_boot: int, seed: int) -> list[RateRow]:
    """Mean text similarity (1 - char NED) to the reference pages in ``keep``, with a percentile bootstrap over pages."""
    rows = []
    for model, entry in sorted(((data.summary or {}).get("models") or {}).items()):
        pages = ((entry.get("reference") or {}).get("by_page")) or []
        values = np.array([1.0 - float(p["char_ned"]) for p in pages if (p.get("pdf_slug"), p.get("page")) in keep], dtype=np.float64)
        if not values.size:
            continue
        rng = np.random.default_rng(seed)
        means = values[rng.integers(0, values.size, size=(max(n_boot, 1), values.size))].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        rows.append(RateRow(model, float(values.mean()), float(low), float(high), int(values.size)))
    rows.sort(key=lambda r: (-r.estimate, r.model))
    return rows


def _health_board(data: JobData, keep: set[tuple[str, int]]) -> list[RateRow]:
    runs = {m.slug: m.run for m in data.models}
    unhealthy = {
        (str(r["model_slug"]), str(r["pdf_slug"]), int(r["page"]))
        for r in data.health_rows
        if runs.get(str(r.get("model_slug"))) == r.get("run") and r.get("issues")
    }
    rows = []
    for m in data.models:
        attempted = [(pdf, page) for (model, pdf, page) in data.pages if model == m.slug and (pdf, page) in keep]
        bad = sum(1 for pdf, page in attempted if data.pages[(m.slug, pdf, page)].status != "done" or (m.slug, pdf, page) in unhealthy)
        if attempted:
            rate, low, high = wilson(bad, len(attempted))
            rows.append(RateRow(m.slug, rate, low, high, len(attempted)))
    rows.sort(key=lambda r: (r.estimate, r.model))
    return rows


def _mean_interval(values: Sequence[float], n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of a mean (pages resampled with replacement)."""
    array = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, size=(max(n_boot, 1), array.size))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def _speed_and_cost(data: JobData, keep: set[tuple[str, int]], board: CollectionBoard, n_boot: int = 1000, seed: int = 0) -> None:
    """Mean seconds per done page and cost per 1,000 of them, each with a bootstrap interval over the pages."""
    prices = data.prices()
    summary_models = (data.summary or {}).get("models") or {}
    for m in data.models:
        done = [s for (model, pdf, page), s in data.pages.items() if model == m.slug and (pdf, page) in keep and s.status == "done"]
        latencies = [float(s.latency_s) for s in done if isinstance(s.latency_s, (int, float))]
        if latencies:
            board.seconds_per_page[m.slug] = sum(latencies) / len(latencies)
            board.seconds_interval[m.slug] = _mean_interval(latencies, n_boot, seed)
        price = prices.get(m.slug) or {}
        if not done:
            continue
        if price.get("input_per_million") is not None or price.get("output_per_million") is not None:
            per_in, per_out = float(price.get("input_per_million") or 0), float(price.get("output_per_million") or 0)
            costs = [1000 * ((s.input_tokens or 0) * per_in + (s.output_tokens or 0) * per_out) / 1e6 for s in done]
            board.cost_per_1000[m.slug] = sum(costs) / len(costs)
            board.cost_interval[m.slug] = _mean_interval(costs, n_boot, seed)
        else:
            job_cost = ((summary_models.get(m.slug) or {}).get("cost") or {}).get("cost_per_1000_pages")
            job_speed = _mean_latency(data, m.slug)
            if isinstance(job_cost, (int, float)) and job_speed and m.slug in board.seconds_per_page:
                scale = job_cost / job_speed  # GPU time follows latency
                board.cost_per_1000[m.slug] = scale * board.seconds_per_page[m.slug]
                low, high = board.seconds_interval[m.slug]
                board.cost_interval[m.slug] = (scale * low, scale * high)


def _mean_latency(data: JobData, slug: str) -> float | None:
    values = [s.latency_s for (model, _, _), s in data.pages.items() if model == slug and s.status == "done" and s.latency_s is not None]
    return sum(values) / len(values) if values else None


def collection_boards(data: JobData, *, rounds: int = 1000, seed: int = 0) -> list[CollectionBoard]:
    """The whole job (``all``) first, then each collection in :attr:`PageCollections.names` order.

    A job whose pages are all in one collection gets the whole job only.
    """
    pages = data.page_keys()
    members: dict[str, set[tuple[str, int]]] = {ALL: set(pages)}
    for pdf, page in pages:
        for name in data.collections.of(pdf, page):
            members.setdefault(name, set()).add((pdf, page))
    order = [ALL] + [n for n in data.collections.names if n in members]
    if len(order) == 2 and members[order[1]] == members[ALL]:  # one collection that is the whole job: shown once
        order = [ALL]
    boards = []
    for name in order:
        keep = members[name]
        board = CollectionBoard(name, len(keep))
        board.human, board.human_votes = _vote_board(data.human_votes, keep, rounds, seed)
        board.judge, board.judge_votes = _vote_board(data.judge_votes, keep, rounds, seed)
        here = [v for v in data.judge_votes if (v.left.pdf_slug, v.left.page) in keep and v.outcome != "skip"]
        board.judges = list(by_judge(here))
        if len(board.judges) > 1:
            board.judge = jury_leaderboard(here, rounds=rounds, seed=seed)
            board.judge_pairs = judge_agreement(here)
            humans = [v for v in data.human_votes if (v.left.pdf_slug, v.left.page) in keep]
            board.judge_people = human_agreement([*humans, *here])
        board.tests, board.n_tests = _test_board(data, keep, rounds, seed)
        board.reference = _reference_board(data, keep, rounds, seed)
        board.health = _health_board(data, keep)
        _speed_and_cost(data, keep, board, rounds, seed)
        boards.append(board)
    return boards


def _settled(ranking: Sequence[tuple[str, float, float, float, int]]) -> bool:
    """The leader's interval is clear of the runner-up's."""
    return len(ranking) >= 2 and ranking[0][2] > ranking[1][3]


def _fmt(metric: str, row: tuple[str, float, float, float, int]) -> str:
    model, estimate, low, high, n = row
    if metric == "tests":
        return f"{model} {100 * estimate:.1f}% [{100 * low:.1f}–{100 * high:.1f}], {n} tests"
    if metric == "reference":
        return f"{model} {estimate:.3f} [{low:.3f}–{high:.3f}], {n} reference pages"
    return f"{model} {estimate:.0f} [{low:.0f}–{high:.0f}], {n} votes"


def winner_flips(boards: Sequence[CollectionBoard]) -> list[str]:
    """One plain sentence per metric whose winner differs between collections (empty when none does)."""
    sentences = []
    parts = [b for b in boards if b.name != ALL]
    for metric in METRICS:
        leaders = [(b.name, b.ranking(metric)) for b in parts if len(b.ranking(metric)) >= 2]
        if len({ranking[0][0] for _, ranking in leaders}) < 2:
            continue
        clauses = []
        for name, ranking in leaders:
            note = "settled" if _settled(ranking) else "not settled: intervals overlap"
            clauses.append(f"on {name} {ranking[0][0]} wins ({_fmt(metric, ranking[0])}; {note})")
        overall = next((b.ranking(metric) for b in boards if b.name == ALL), [])
        head = f"{metric}: the winner differs between collections"
        if len(overall) >= 2 and overall[0][1] > overall[1][1]:
            losing = [name for name, ranking in leaders if ranking[0][0] != overall[0][0]]
            settled = "" if _settled(overall) else " (not settled)"
            head += f" — {overall[0][0]} leads the whole job{settled} but not {', '.join(losing)}"
        elif overall:
            head += f" — no model leads the whole job ({overall[0][0]} and {overall[1][0]} tie)"
        sentences.append(head + "; " + "; ".join(clauses) + ".")
    return sentences


def unresolved_collections(boards: Sequence[CollectionBoard], metric: str = "human votes") -> list[str]:
    """Collections where some neighbouring models' intervals still overlap (or fewer than two models are ranked), least voted first."""
    out = []
    for b in boards:
        if b.name == ALL:
            continue
        ranking = b.ranking(metric)
        if len(ranking) < 2 or any(ranking[k][2] <= ranking[k + 1][3] for k in range(len(ranking) - 1)):
            out.append((sum(r[4] for r in ranking), b.name))
    return [name for _, name in sorted(out)]


def quality_of(board: CollectionBoard) -> tuple[str, dict[str, float]]:
    """The quality measure a scatter plots: test pass rate, else reference similarity, else human, else judge rating, else healthy share."""
    if board.tests:
        return "tests passed (%)", {r.model: 100 * r.estimate for r in board.tests}
    if board.reference:
        return "similarity to reference (1 − char NED)", {r.model: r.estimate for r in board.reference}
    if board.human:
        return "human-vote rating (BT)", {r.model: r.rating for r in board.human}
    if board.judge:
        return "judge-vote rating (BT)", {r.model: r.rating for r in board.judge}
    return "healthy pages (%)", {r.model: 100 * (1 - r.estimate) for r in board.health}


def board_dict(board: CollectionBoard) -> dict[str, Any]:
    """A plain dict of a board (for JSON and templates)."""
    return {
        "name": board.name,
        "pages": board.pages,
        "human_votes": board.human_votes,
        "judge_votes": board.judge_votes,
        "n_tests": board.n_tests,
        "human": [r.to_dict() for r in board.human],
        "judge": [r.to_dict() for r in board.judge],
        "tests": [r.__dict__ for r in board.tests],
        "reference": [r.__dict__ for r in board.reference],
        "health": [r.__dict__ for r in board.health],
        "seconds_per_page": board.seconds_per_page,
        "cost_per_1000": board.cost_per_1000,
        "seconds_interval": board.seconds_interval,
        "cost_interval": board.cost_interval,
    }
