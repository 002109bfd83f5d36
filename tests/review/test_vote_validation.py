"""Votes must compare two real outputs of one page: refused when cast, skipped when read."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tracr.errors import ErrorClass, TracrError
from tracr.review.ratings import leaderboard
from tracr.review.votes import PageRef, Vote, VoteRefused, append_vote, new_vote, read_votes, votes_path

JOB = "job1"
A = PageRef(model_slug="model-a", run=1, pdf_slug="report", page=1)
B = PageRef(model_slug="model-b", run=1, pdf_slug="report", page=1)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / JOB).mkdir()
    (tmp_path / JOB / "job_metadata.json").write_text("{}")
    for ref in (A, B):
        page_dir = tmp_path / JOB / ref.model_slug / f"run-{ref.run}" / ref.pdf_slug
        page_dir.mkdir(parents=True)
        (page_dir / "1.md").write_text("text")
        (page_dir / "2.md").write_text("text")
    return tmp_path


def lines(root: Path) -> list[str]:
    path = votes_path(root, JOB)
    return path.read_text().splitlines() if path.exists() else []


def test_a_vote_on_two_real_outputs_is_kept(root: Path) -> None:
    vote = new_vote(JOB, A, B, "left", "ann")
    append_vote(root, vote)
    assert read_votes(root, JOB) == [vote]


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        (A, PageRef(model_slug="fake-ocr", run=1, pdf_slug="report", page=1), "no run-1 of model 'fake-ocr'"),
        (A, PageRef(model_slug="model-b", run=7, pdf_slug="report", page=1), "no run-7 of model 'model-b'"),
        (
            PageRef(model_slug="model-a", run=1, pdf_slug="report", page=9),
            PageRef(model_slug="model-b", run=1, pdf_slug="report", page=9),
            "left side: run-1 of model 'model-a' has no output of page 9 of PDF 'report'",
        ),
        (
            PageRef(model_slug="model-a", run=1, pdf_slug="ghost", page=1),
            PageRef(model_slug="model-b", run=1, pdf_slug="ghost", page=1),
            "no output of page 1 of PDF 'ghost'",
        ),
        (A, PageRef(model_slug="model-a", run=1, pdf_slug="report", page=1), "on both sides"),
        (A, PageRef(model_slug="model-b", run=1, pdf_slug="report", page=2), "different pages"),
    ],
)
def test_a_vote_on_something_that_does_not_exist_is_refused(root: Path, left: PageRef, right: PageRef, message: str) -> None:
    with pytest.raises(VoteRefused, match=message) as caught:
        append_vote(root, new_vote(JOB, left, right, "left", "ann"))
    assert isinstance(caught.value, TracrError) and caught.value.error_class is ErrorClass.INPUT
    assert "\n" not in caught.value.one_line()
    assert lines(root) == []  # nothing reached the file


def test_a_run_folder_without_the_page_file_is_not_enough(root: Path) -> None:
    (root / JOB / "model-c" / "run-1" / "report").mkdir(parents=True)  # the run exists, the page was never written
    with pytest.raises(VoteRefused, match="run-1 of model 'model-c' has no output of page 1"):
        append_vote(root, new_vote(JOB, A, PageRef(model_slug="model-c", run=1, pdf_slug="report", page=1), "right", "ann"))


def test_a_symlink_out_of_the_root_does_not_count_as_a_run(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "run-1" / "report").mkdir(parents=True)
    (outside / "run-1" / "report" / "1.md").write_text("planted")
    (root / JOB / "planted").symlink_to(outside)
    with pytest.raises(VoteRefused, match="leaves the outputs root"):
        append_vote(root, new_vote(JOB, A, PageRef(model_slug="planted", run=1, pdf_slug="report", page=1), "right", "ann"))


def test_an_old_votes_file_with_a_fake_model_cannot_lead(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    real = new_vote(JOB, A, B, "left", "ann")
    append_vote(root, real)
    fake = PageRef(model_slug="fake-ocr", run=1, pdf_slug="report", page=1)
    forged = [
        Vote(job_id=JOB, left=fake, right=A, outcome="left", voter="mallory"),  # a model that never ran
        Vote(job_id=JOB, left=A, right=A, outcome="left", voter="mallory"),  # one model on both sides
    ]
    with votes_path(root, JOB).open("a") as handle:  # written by an older tracr, or by hand
        for vote in forged:
            handle.write(vote.model_dump_json() + "\n")
    with caplog.at_level(logging.WARNING, logger="tracr.review.votes"):
        votes = read_votes(root, JOB)
    assert votes == [real]
    assert sum("references nothing real" in r.getMessage() for r in caplog.records) == 2
    assert [r.model for r in leaderboard(votes, rounds=20)] == ["model-a", "model-b"]
    assert len(lines(root)) == 3  # skipped, not deleted
    assert read_votes(root, None) == [real]


def test_a_vote_whose_output_was_deleted_later_is_no_longer_counted(root: Path) -> None:
    append_vote(root, new_vote(JOB, A, B, "left", "ann"))
    (root / JOB / "model-b" / "run-1" / "report" / "1.md").unlink()
    assert read_votes(root, JOB) == []
