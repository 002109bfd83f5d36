"""Which two outputs a reviewer should compare next.

Candidates are pages done by at least two models (each model's latest run that
finished the page); pairs whose texts are near-identical (normalised edit
similarity >= 0.96, as olmOCR's review did) are dropped, since a vote on them
teaches nothing. Among the rest, :func:`next_pair` prefers model pairs whose
rating is least settled: few votes so far and a predicted win probability near
0.5, i.e. where one more vote narrows the confidence interval most, while a
fixed share of picks is uniform so every pair keeps being sampled.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass

import duckdb
from rapidfuzz.distance import Levenshtein

from tracr.outputs.identifiers import validate_job_id, validate_number, validate_slug
from tracr.review.ratings import bradley_terry, comparisons_from_votes, win_probability
from tracr.review.votes import PageRef, Vote

__all__ = [
    "PairCandidate",
    "SIMILAR_AT",
    "EXPLORE_SHARE",
    "normalise_text",
    "text_similarity",
    "arena_candidates",
    "next_pair",
    "open_pairs",
    "pair_weight",
]

SIMILAR_AT = 0.96
EXPLORE_SHARE = 0.15
_WHITESPACE = b" \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class PairCandidate:
    """Two models' outputs of the same page."""

    job_id: str
    pdf_slug: str
    page: int
    left: PageRef
    right: PageRef

    @property
    def models(self) -> tuple[str, str]:
        """The model pair, in a fixed (sorted) order."""
        a, b = self.left.model_slug, self.right.model_slug
        return (a, b) if a <= b else (b, a)

    def page_key(self) -> tuple[str, frozenset[tuple[str, int, str, int]]]:
        """The job and the two sides as a set: the same pair shown the other way round is the same pair."""
        return _page_key(self.job_id, self.left, self.right)

    def swapped(self) -> PairCandidate:
        return PairCandidate(self.job_id, self.pdf_slug, self.page, self.right, self.left)


def _page_key(job_id: str, left: PageRef, right: PageRef) -> tuple[str, frozenset[tuple[str, int, str, int]]]:
    return job_id, frozenset(
        {(left.model_slug, left.run, left.pdf_slug, left.page), (right.model_slug, right.run, right.pdf_slug, right.page)}
    )


def normalise_text(text: str | None) -> str:
    """The text without ASCII whitespace, so layout-only differences do not count.

    Dropping whitespace (rather than collapsing runs of it with a regex) is a
    byte-level ``translate``: about ten times faster on a 100,000-page job, and
    models differ in table padding and blank lines far more than in where words break.
    """
    if not text:
        return ""
    return text.encode("utf-8").translate(None, _WHITESPACE).decode("utf-8")


def text_similarity(a: str, b: str) -> float:
    """Normalised Levenshtein similarity (1.0 = identical) of the texts, ignoring whitespace."""
    return float(Levenshtein.normalized_similarity(normalise_text(a), normalise_text(b)))


_CANDIDATE_SQL = """
WITH latest AS (
    SELECT model_slug, pdf_slug, page, max(run) AS run
    FROM pages
    WHERE job_id = ? AND status = 'done'
    GROUP BY ALL
)
SELECT p.model_slug, p.run, p.pdf_slug, p.page, p.markdown
FROM pages p JOIN latest l USING (model_slug, pdf_slug, page, run)
WHERE p.job_id = ?
ORDER BY p.pdf_slug, p.page, p.model_slug
"""


def arena_candidates(con: duckdb.DuckDBPyConnection, job_id: str, *, skip_similar_at: float = SIMILAR_AT) -> list[PairCandidate]:
    """Every comparable pair of different models on the same page of ``job_id``.

    Reads the index's ``pages`` table; each side is the model's latest run that
    finished that page. Pairs at or above ``skip_similar_at`` similarity are left
    out (a value above 1 keeps every pair).
    """
    validate_job_id(job_id)
    rows = con.execute(_CANDIDATE_SQL, [job_id, job_id]).fetchall()
    checked: set[str] = set()
    by_page: dict[tuple[str, int], list[tuple[PageRef, str]]] = {}
    for model_slug, run, pdf_slug, page, markdown in rows:
        for slug in (model_slug, pdf_slug):  # the index only admits valid names; check anyway, once each
            if slug not in checked:
                checked.add(validate_slug(slug))
        # validated above; model_construct skips re-running the validators 100,000s of times
        ref = PageRef.model_construct(
            model_slug=model_slug, run=validate_number(run, "run"), pdf_slug=pdf_slug, page=validate_number(page, "page")
        )
        by_page.setdefault((pdf_slug, page), []).append((ref, normalise_text(markdown)))
    out: list[PairCandidate] = []
    for (pdf_slug, page), sides in by_page.items():
        for x in range(len(sides)):
            for y in range(x + 1, len(sides)):
                (left, left_text), (right, right_text) = sides[x], sides[y]
                # score_cutoff lets rapidfuzz stop early on clearly different texts
                if (
                    skip_similar_at <= 1.0
                    and Levenshtein.normalized_similarity(left_text, right_text, score_cutoff=skip_similar_at) >= skip_similar_at
                ):
                    continue
                out.append(PairCandidate(job_id, pdf_slug, page, left, right))
    return out


def pair_weight(votes_between: int, p_win: float) -> float:
    """How much one more vote on a model pair is worth.

    The variance of a pair's estimated log-odds is about ``1 / (n * p * (1 - p))``;
    weighting by ``p * (1 - p) / (n + 1)`` favours pairs with few votes and a
    close contest, the ones whose interval one vote narrows most.
    """
    return 4.0 * p_win * (1.0 - p_win) / (votes_between + 1.0)


def open_pairs(candidates: Sequence[PairCandidate], votes: Sequence[Vote], *, voter: str | None = None) -> list[PairCandidate]:
    """The candidates nobody (or, given ``voter``, that voter) has voted on yet: what is left to judge."""
    seen = {_page_key(v.job_id, v.left, v.right) for v in votes if voter is None or v.voter == voter}
    return [c for c in candidates if c.page_key() not in seen]


def next_pair(
    candidates: Sequence[PairCandidate],
    votes: Sequence[Vote],
    rng: random.Random,
    *,
    voter: str | None = None,
    explore: float = EXPLORE_SHARE,
    pages: Container[tuple[str, int]] | None = None,
) -> PairCandidate | None:
    """The next pair to show, or ``None`` when every candidate has been voted on.

    ``votes`` are all votes so far (they drive the model-pair weights). A page
    pair already voted on is never offered again: by ``voter`` when given,
    otherwise by anyone. Sides are shuffled so no model always sits on the left.
    ``pages`` (a collection's ``(pdf_slug, page)``) keeps the choice, and the votes
    that weigh the model pairs, to those pages: voting where a ranking is unsettled.
    """
    if pages is not None:
        candidates = [c for c in candidates if (c.pdf_slug, c.page) in pages]
        votes = [v for v in votes if (v.left.pdf_slug, v.left.page) in pages]
    open_ = open_pairs(candidates, votes, voter=voter)
    if not open_:
        return None
    if rng.random() < explore:
        choice = rng.choice(open_)
    else:
        counted = comparisons_from_votes(votes)
        ratings = bradley_terry(counted)
        between = Counter(tuple(sorted((a, b))) for a, b, _ in counted)
        by_models: dict[tuple[str, str], list[PairCandidate]] = {}
        for candidate in open_:
            by_models.setdefault(candidate.models, []).append(candidate)
        weights = {
            models: pair_weight(between.get(models, 0), win_probability(ratings.get(models[0], 1000.0), ratings.get(models[1], 1000.0)))
            for models in by_models
        }
        best = max(weights.values())
        top = sorted(models for models, weight in weights.items() if weight >= best * (1 - 1e-9))
        choice = rng.choice(by_models[rng.choice(top)])
    return choice.swapped() if rng.random() < 0.5 else choice
