"""The append-only vote journal: concurrency, torn lines, identifier validation, derived ratings."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from pydantic import ValidationError

from tracr.outputs.files import read_json
from tracr.outputs.identifiers import InvalidIdentifier, safe_child, validate_job_id, validate_slug
from tracr.review.ratings import leaderboard, rebuild_ratings
from tracr.review.votes import PageRef, Vote, append_vote, new_vote, read_votes, vote_files, voter_host, votes_path

A = PageRef(model_slug="model-a", run=1, pdf_slug="report", page=1)
B = PageRef(model_slug="model-b", run=2, pdf_slug="report", page=1)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for job in ("job1", "job2"):
        (tmp_path / job).mkdir()
        (tmp_path / job / "job_metadata.json").write_text("{}")
        for ref in (A, B):  # votes must name outputs that exist
            page_dir = tmp_path / job / ref.model_slug / f"run-{ref.run}" / ref.pdf_slug
            page_dir.mkdir(parents=True)
            (page_dir / f"{ref.page}.md").write_text("text")
    return tmp_path


def test_vote_round_trips_through_the_journal(root):
    vote = new_vote("job1", A, B, "left", "ann")
    append_vote(root, vote)
    assert votes_path(root, "job1", "node-a") == root / "job1" / "elo" / "votes-node-a.jsonl"
    assert votes_path(root, "job1") == root / "job1" / "elo" / f"votes-{voter_host()}.jsonl"  # this host's file
    line = json.loads(votes_path(root, "job1").read_text().splitlines()[0])
    assert line["left"] == {"model_slug": "model-a", "run": 1, "pdf_slug": "report", "page": 1}
    assert line["outcome"] == "left" and line["voter"] == "ann" and line["created_at"].endswith("Z")
    assert len(line["vote_id"]) == 32
    assert read_votes(root, "job1") == [vote]
    assert read_votes(root, "job2") == []


def test_read_votes_across_jobs(root):
    append_vote(root, new_vote("job1", A, B, "left", "ann"))
    append_vote(root, new_vote("job2", B, A, "tie", "bob"))
    (root / "not-a-job").mkdir()
    votes = read_votes(root, None)
    assert [(v.job_id, v.outcome) for v in votes] == [("job1", "left"), ("job2", "tie")]
    board = {r.model: r for r in leaderboard(votes, rounds=50)}  # one board over every job's votes
    assert (board["model-a"].wins, board["model-a"].ties, board["model-a"].votes) == (1, 1, 2)
    assert board["model-a"].rating > board["model-b"].rating


def test_reviewers_on_several_hosts_write_their_own_files_read_together(root, monkeypatch):
    """No two machines append to one file (NFS appends are not atomic); readers merge every host's file by time."""
    legacy = root / "job1" / "elo" / "votes.jsonl"  # a votes file from before per-host files
    legacy.parent.mkdir(parents=True)
    old = new_vote("job1", A, B, "tie", "old").model_copy(update={"created_at": "2026-01-01T00:00:00.000Z"})
    legacy.write_text(old.model_dump_json() + "\n")
    cast = []
    for second, (host, outcome) in enumerate((("node-b", "left"), ("node-a", "right"), ("node-b", "skip"))):
        monkeypatch.setenv("TRACR_GPU_HOST", host)
        vote = new_vote("job1", A, B, outcome, f"reviewer-{host}")  # votes cast in one millisecond would tie: space them
        cast.append(vote.model_copy(update={"created_at": f"2026-06-01T00:00:0{second}.000Z"}))
        append_vote(root, cast[-1])
    names = [p.name for p in vote_files(root, "job1")]
    assert names == ["votes.jsonl", "votes-node-a.jsonl", "votes-node-b.jsonl"]
    assert len((root / "job1/elo/votes-node-b.jsonl").read_text().splitlines()) == 2
    assert read_votes(root, "job1") == [old, *cast]  # oldest first across files
    assert [v.job_id for v in read_votes(root, None)] == ["job1"] * 4


def _vote_many(root: str, worker: int, count: int) -> None:
    for i in range(count):
        outcome = ("left", "right", "tie", "both_bad", "skip")[i % 5]
        append_vote(Path(root), new_vote("job1", A, B, outcome, f"voter-{worker}"))


def test_concurrent_processes_lose_no_vote(root):
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_vote_many, args=(str(root), w, 200)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    lines = votes_path(root, "job1").read_text().splitlines()
    assert len(lines) == 800
    votes = [Vote.model_validate_json(line) for line in lines]  # every line parses on its own
    assert len({v.vote_id for v in votes}) == 800
    assert {v.voter: sum(1 for x in votes if x.voter == v.voter) for v in votes} == {f"voter-{w}": 200 for w in range(4)}
    assert len(read_votes(root, "job1")) == 800


def test_torn_last_line_is_skipped_and_the_next_vote_survives(root):
    append_vote(root, new_vote("job1", A, B, "left", "ann"))
    path = votes_path(root, "job1")
    with path.open("a") as handle:
        handle.write('{"vote_id": "abc", "job_id": "job1", "left": {"model_')  # power cut mid-line
    assert len(read_votes(root, "job1")) == 1
    append_vote(root, new_vote("job1", A, B, "right", "ann"))
    assert [v.outcome for v in read_votes(root, "job1")] == ["left", "right"]
    assert path.read_text().count("\n") == 3  # the fragment kept on its own line, nothing deleted


def test_a_line_filed_under_the_wrong_job_is_not_counted(root):
    other = new_vote("job2", A, B, "left", "ann")
    path = votes_path(root, "job1")
    path.parent.mkdir()
    path.write_text(other.model_dump_json() + "\n")
    assert read_votes(root, "job1") == []


@pytest.mark.parametrize("job_id", ["..", "../etc", "a/b", "/abs", ".hidden", "", "a\x00b", "x" * 200])
def test_bad_job_ids_never_become_paths(root, job_id):
    with pytest.raises(InvalidIdentifier, match="invalid job id"):
        votes_path(root, job_id)
    with pytest.raises(InvalidIdentifier):
        read_votes(root, job_id)
    with pytest.raises(ValidationError, match="invalid job id"):
        new_vote(job_id, A, B, "left", "ann")


@pytest.mark.parametrize("slug", ["..", "../x", "a/b", "A", "-x", "", "a b", "a\\b"])
def test_bad_slugs_are_refused(slug):
    with pytest.raises(ValidationError, match="invalid model slug"):
        PageRef(model_slug=slug, run=1, pdf_slug="report", page=1)
    with pytest.raises(ValidationError, match="invalid PDF slug"):
        PageRef(model_slug="model-a", run=1, pdf_slug=slug, page=1)
    with pytest.raises(InvalidIdentifier):
        validate_slug(slug)


def test_bad_numbers_outcomes_and_missing_jobs_are_refused(root):
    with pytest.raises(ValidationError, match="invalid page"):
        PageRef(model_slug="a", run=1, pdf_slug="b", page=0)
    with pytest.raises(ValidationError, match="invalid run"):
        PageRef(model_slug="a", run=-1, pdf_slug="b", page=1)
    with pytest.raises(ValidationError):
        new_vote("job1", A, B, "maybe", "ann")
    with pytest.raises(ValidationError):
        new_vote("job1", A, B, "left", "")
    with pytest.raises(ValidationError, match="ISO-8601"):
        Vote(job_id="job1", left=A, right=B, outcome="left", voter="ann", created_at="yesterday")
    with pytest.raises(ValidationError, match="time zone"):
        Vote(job_id="job1", left=A, right=B, outcome="left", voter="ann", created_at="2026-11-25T00:00:00")
    with pytest.raises(FileNotFoundError, match="no job 'job9'"):
        append_vote(root, new_vote("job9", A, B, "left", "ann"))
    assert not (root / "job9").exists()


def test_safe_child_stays_inside_the_root(root):
    assert safe_child(root, "job1", "elo") == root / "job1" / "elo"
    for part in ("..", "a/../..", "/etc", ""):
        with pytest.raises(InvalidIdentifier):
            safe_child(root, part)
    (root / "escape").symlink_to("/")
    with pytest.raises(InvalidIdentifier, match="leaves the outputs root"):
        safe_child(root, "escape")
    assert validate_job_id("Job_1.v2") == "Job_1.v2"


def test_ratings_json_is_derived_and_rebuildable(root):
    for outcome in ["left", "left", "left", "right", "tie", "both_bad", "skip"]:
        append_vote(root, new_vote("job1", A, B, outcome, "ann"))
    path = rebuild_ratings(root, "job1", seed=3)
    first = read_json(path)
    assert path == root / "job1" / "elo" / "ratings.json"
    assert first["votes"] == 7 and first["outcomes"]["skip"] == 1 and first["seed"] == 3
    board = {r["model"]: r for r in first["ratings"]}
    assert board["model-a"]["rating"] > board["model-b"]["rating"]
    assert (board["model-a"]["wins"], board["model-a"]["losses"], board["model-a"]["ties"]) == (3, 1, 2)
    path.unlink()
    again = read_json(rebuild_ratings(root, "job1", seed=3))
    first.pop("updated_at"), again.pop("updated_at")
    assert again == first
