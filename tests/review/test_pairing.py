"""Pair selection: near-identical outputs skipped, informative model pairs first."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from tracr.index.store import read_index, refresh_index
from tracr.outputs.journal import PageRecord
from tracr.review.pairing import PairCandidate, arena_candidates, next_pair, open_pairs, text_similarity
from tracr.review.votes import PageRef, Vote
from tracr.testing.output_tree import ModelProfile, TreeSpec, generate_tree


def test_text_similarity_is_normalised_edit_similarity():
    assert text_similarity("abc", "abc") == 1.0
    assert text_similarity("a  b\n\nc ", "a b c") == 1.0  # whitespace layout does not count
    assert text_similarity("abcd", "abce") == pytest.approx(0.75)
    assert text_similarity("", "") == 1.0
    assert text_similarity("hello world", "") == 0.0


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    spec = TreeSpec(
        job_id="arena",
        models=(
            ModelProfile("twin-a", noise=0.0, fail_rate=0.0),
            ModelProfile("twin-b", noise=0.0, fail_rate=0.0),  # same text as twin-a: never paired
            ModelProfile("noisy", noise=0.3, fail_rate=0.0),
        ),
        pdfs=2,
        pages_per_pdf=3,
        chars_per_page=600,
    )
    generate_tree(tmp_path, spec)
    return tmp_path


def test_candidates_skip_near_identical_outputs(tree):
    with read_index(tree) as con:
        candidates = arena_candidates(con, "arena")
    pairs = Counter(c.models for c in candidates)
    assert pairs == {("noisy", "twin-a"): 6, ("noisy", "twin-b"): 6}
    with read_index(tree) as con:
        everything = arena_candidates(con, "arena", skip_similar_at=1.01)
    assert Counter(c.models for c in everything)[("twin-a", "twin-b")] == 6


def test_candidates_use_each_models_latest_done_run_and_skip_failures(tree):
    # a second run of "noisy" that fails page 1 of doc-00000 and redoes page 2
    run2 = tree / "arena" / "noisy" / "run-2" / "doc-00000"
    run2.mkdir(parents=True)
    (run2 / "2.md").write_text("a completely different second attempt " * 10)
    (run2 / "pages.jsonl").write_text(
        PageRecord(page=1, status="failed", error="boom", error_class="timeout").to_json()
        + "\n"
        + PageRecord(page=2, status="done", chars=10).to_json()
        + "\n"
    )
    refresh_index(tree)
    with read_index(tree) as con:
        candidates = arena_candidates(con, "arena")
    runs = {(c.pdf_slug, c.page): {side.model_slug: side.run for side in (c.left, c.right)}["noisy"] for c in candidates}
    assert runs[("doc-00000", 2)] == 2  # the newer run that finished the page
    assert runs[("doc-00000", 1)] == 1  # run 2 failed it: run 1's output is the latest done one
    assert runs[("doc-00001", 1)] == 1
    assert all(c.left.pdf_slug == c.right.pdf_slug == c.pdf_slug and c.left.page == c.page for c in candidates)


def _candidate(models: tuple[str, str], page: int) -> PairCandidate:
    return PairCandidate(
        "job",
        "doc",
        page,
        PageRef(model_slug=models[0], run=1, pdf_slug="doc", page=page),
        PageRef(model_slug=models[1], run=1, pdf_slug="doc", page=page),
    )


def _votes(models: tuple[str, str], outcomes: list[str], first_page: int = 1000, voter: str = "old") -> list[Vote]:
    return [
        Vote(
            job_id="job",
            left=PageRef(model_slug=models[0], run=1, pdf_slug="doc", page=first_page + i),
            right=PageRef(model_slug=models[1], run=1, pdf_slug="doc", page=first_page + i),
            outcome=outcome,
            voter=voter,
        )
        for i, outcome in enumerate(outcomes)
    ]


def test_pairs_with_few_votes_come_first():
    candidates = [_candidate(("a", "b"), p) for p in range(1, 21)] + [_candidate(("a", "c"), p) for p in range(1, 21)]
    votes = _votes(("a", "b"), ["left", "right"] * 20)  # a-b already well measured, a-c never
    rng = random.Random(0)
    picks = Counter(next_pair(candidates, votes, rng).models for _ in range(400))
    assert picks[("a", "c")] > 0.75 * 400
    assert picks[("a", "b")] > 0  # uniform exploration keeps the other pair alive


def test_close_contests_come_before_settled_ones():
    candidates = [_candidate(("a", "b"), p) for p in range(1, 21)] + [_candidate(("a", "c"), p) for p in range(1, 21)]
    votes = _votes(("a", "b"), ["left", "right"] * 5) + _votes(("a", "c"), ["left"] * 10, first_page=2000)
    picks = Counter(next_pair(candidates, votes, random.Random(1)).models for _ in range(400))
    assert picks[("a", "b")] > 0.75 * 400


def test_never_repeats_a_pair_the_voter_has_judged():
    candidates = [_candidate(("a", "b"), p) for p in (1, 2)]
    rng = random.Random(3)
    mine = _votes(("b", "a"), ["left"], first_page=1, voter="ann")  # same pages, sides swapped
    for _ in range(50):
        pick = next_pair(candidates, mine, rng, voter="ann")
        assert pick.page == 2
    both = mine + _votes(("a", "b"), ["tie"], first_page=2, voter="ann")
    assert next_pair(candidates, both, rng, voter="ann") is None
    assert next_pair(candidates, both, rng, voter="bob") is not None  # bob has not judged them
    elsewhere = [v.model_copy(update={"job_id": "other-job"}) for v in both]
    assert next_pair(candidates, elsewhere, rng, voter="ann") is not None  # the same slugs in another job are other pages
    assert next_pair([], [], rng) is None


def test_pairs_left_to_judge_shrink_with_each_of_the_voters_votes():
    candidates = [_candidate(("a", "b"), p) for p in (1, 2, 3)]
    assert len(open_pairs(candidates, [], voter="ann")) == 3
    mine = _votes(("b", "a"), ["left"], first_page=1, voter="ann") + _votes(("a", "b"), ["skip"], first_page=2, voter="ann")
    assert [c.page for c in open_pairs(candidates, mine, voter="ann")] == [3]  # a skip is judged too: not shown again
    assert len(open_pairs(candidates, mine, voter="bob")) == 3
    assert [c.page for c in open_pairs(candidates, mine)] == [3]  # no voter: voted on by anyone


def test_sides_are_shuffled():
    candidates = [_candidate(("a", "b"), 1)]
    lefts = Counter(next_pair(candidates, [], random.Random(seed)).left.model_slug for seed in range(200))
    assert 60 < lefts["a"] < 140
