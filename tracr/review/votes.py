"""Pairwise votes: an append-only journal per job, and the ratings derived from it.

``<root>/<job_id>/elo/votes-<host>.jsonl`` holds one JSON line per vote cast on
that host; together with ``votes.jsonl`` (votes from before per-host files) they
are the only source of truth, read together; ``ratings.json`` beside them is
derived and can be rebuilt from the votes at any time
(:func:`tracr.review.ratings.rebuild_ratings`). Votes are appended with one
``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``, so several
reviewers voting at once on one host (threads or processes) never interleave or
lose a line; a file per host means no two machines ever append to the same file
(appends from several NFS clients are not atomic, and ``flock`` over NFS is only
as good as its lock manager).
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tracr.errors import ErrorClass, TracrError
from tracr.outputs.files import append_line_durably
from tracr.outputs.identifiers import InvalidIdentifier, safe_child, validate_job_id, validate_number, validate_slug
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.serving.host import host_id

__all__ = [
    "Outcome",
    "OUTCOMES",
    "PageRef",
    "Vote",
    "VoteRefused",
    "vote_problem",
    "votes_path",
    "vote_files",
    "voter_host",
    "ratings_path",
    "new_vote",
    "append_vote",
    "read_votes",
]

log = logging.getLogger(__name__)

Outcome = Literal["left", "right", "tie", "both_bad", "skip"]
OUTCOMES: tuple[str, ...] = ("left", "right", "tie", "both_bad", "skip")


class PageRef(BaseModel):
    """One side of a comparison: a page of one run of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_slug: str
    run: int
    pdf_slug: str
    page: int

    @field_validator("model_slug", "pdf_slug")
    @classmethod
    def _slug(cls, value: str, info: ValidationInfo) -> str:
        return validate_slug(value, "model slug" if info.field_name == "model_slug" else "PDF slug")

    @field_validator("run", "page")
    @classmethod
    def _number(cls, value: int, info: ValidationInfo) -> int:
        return validate_number(value, str(info.field_name))


class Vote(BaseModel):
    """A reviewer's verdict on two outputs of the same page."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    vote_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    job_id: str
    left: PageRef
    right: PageRef
    outcome: Outcome
    voter: str = Field(min_length=1, max_length=200)
    created_at: str = Field(default_factory=utc_now)

    @field_validator("job_id")
    @classmethod
    def _job_id(cls, value: str) -> str:
        return validate_job_id(value)

    @field_validator("created_at")
    @classmethod
    def _created_at(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO-8601 timestamp such as 2026-11-25T00:31:07.412Z") from None
        if moment.tzinfo is None:
            raise ValueError("must carry a time zone (tracr writes UTC with a Z)")
        return value

    @field_validator("vote_id")
    @classmethod
    def _vote_id(cls, value: str) -> str:
        if not (1 <= len(value) <= 64) or not value.isalnum():
            raise ValueError("must be 1-64 letters or digits (a uuid4 hex)")
        return value


class VoteRefused(TracrError, ValueError):
    """A vote that does not compare two real outputs of one page of the job."""

    default_class = ErrorClass.INPUT


def _ref_problem(outputs_root: Path, job_id: str, side: str, ref: PageRef, seen: dict[PageRef, str | None] | None = None) -> str | None:
    if seen is not None and ref in seen:
        return seen[ref]
    location = OutputLayout(Path(outputs_root)).run(job_id, ref.model_slug, ref.run)
    problem: str | None = None
    try:
        run_dir = safe_child(Path(outputs_root), job_id, ref.model_slug, location.run_dir.name)
        page_file = safe_child(run_dir, ref.pdf_slug, location.page_markdown(ref.pdf_slug, ref.page).name)
    except InvalidIdentifier as exc:
        problem = f"{side} side: {exc}"
    else:
        if not run_dir.is_dir():
            problem = f"{side} side: job {job_id!r} has no run-{ref.run} of model {ref.model_slug!r}"
        elif not page_file.is_file():
            problem = f"{side} side: run-{ref.run} of model {ref.model_slug!r} has no output of page {ref.page} of PDF {ref.pdf_slug!r}"
    if seen is not None:
        seen[ref] = problem
    return problem


def vote_problem(outputs_root: Path, vote: Vote, seen: dict[PageRef, str | None] | None = None) -> str | None:
    """Why ``vote`` does not compare two real outputs of one page of its job, or ``None`` when it does.

    Each side's run folder and page file must exist in the output tree, both sides must be the
    same page, and they must be two different models. ``seen`` caches the checks of each side
    across many votes (one ``stat`` per distinct output, not per vote).
    """
    left, right = vote.left, vote.right
    if left.model_slug == right.model_slug:
        return f"model {left.model_slug!r} is on both sides: a vote compares two different models"
    if (left.pdf_slug, left.page) != (right.pdf_slug, right.page):
        return f"the sides are different pages ({left.pdf_slug!r} page {left.page}, {right.pdf_slug!r} page {right.page}): a vote compares one page"
    for side, ref in (("left", left), ("right", right)):
        problem = _ref_problem(outputs_root, vote.job_id, side, ref, seen)
        if problem:
            return problem
    return None


def new_vote(job_id: str, left: PageRef, right: PageRef, outcome: Outcome, voter: str) -> Vote:
    """A vote stamped now with a fresh id."""
    return Vote(job_id=job_id, left=left, right=right, outcome=outcome, voter=voter)


def voter_host() -> str:
    """This machine's name for its votes file: the host id (``TRACR_GPU_HOST``, else the hostname)."""
    return host_id()


def votes_path(outputs_root: Path, job_id: str, host: str | None = None) -> Path:
    """``<root>/<job_id>/elo/votes-<host>.jsonl``, where this host appends (the job id validated first)."""
    return OutputLayout(Path(outputs_root)).host_votes(validate_job_id(job_id), host or voter_host())


def vote_files(outputs_root: Path, job_id: str) -> list[Path]:
    """Every votes file of a job, read together: ``votes.jsonl`` and each host's ``votes-<host>.jsonl``."""
    return OutputLayout(Path(outputs_root)).vote_files(validate_job_id(job_id))


def ratings_path(outputs_root: Path, job_id: str) -> Path:
    """``<root>/<job_id>/elo/ratings.json`` (the job id validated first)."""
    return OutputLayout(Path(outputs_root)).ratings(validate_job_id(job_id))


def append_vote(outputs_root: Path, vote: Vote) -> None:
    """Append one vote as one line, durably, safe against concurrent writers.

    The job folder must exist (a vote on a job that was never run is refused), the
    line is re-validated so nothing unreadable ever reaches the file, and a vote that
    does not compare two real outputs of one page (:func:`vote_problem`) raises
    :class:`VoteRefused`, so no vote can put a model that never ran on the leaderboard.
    """
    vote = Vote.model_validate(vote.model_dump())
    job_dir = safe_child(Path(outputs_root), vote.job_id)
    if not job_dir.is_dir():
        raise FileNotFoundError(f"no job {vote.job_id!r} under {outputs_root}")
    problem = vote_problem(outputs_root, vote)
    if problem:
        raise VoteRefused(f"vote refused: {problem}")
    path = votes_path(outputs_root, vote.job_id)
    path.parent.mkdir(exist_ok=True)
    append_line_durably(path, (vote.model_dump_json() + "\n").encode("utf-8"))


def _job_ids_with_votes(outputs_root: Path) -> list[str]:
    root = Path(outputs_root)
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and OutputLayout(root).vote_files(entry.name):
            try:
                found.append(validate_job_id(entry.name))
            except ValueError:
                continue
    return found


def read_votes(outputs_root: Path, job_id: str | None = None) -> list[Vote]:
    """Every vote of ``job_id`` (``None``: of every job), oldest first.

    Each file is in its own append order; several files (one per reviewer host)
    are merged by ``created_at`` with a stable sort, so votes stamped alike keep
    their file order. Unparsable lines (a torn last line after power loss) and votes
    that do not compare two real outputs of one page (:func:`vote_problem`: a model or
    page that is not in the output tree, one model on both sides) are skipped with a
    warning; they stay in the file, so nothing is lost by reading.
    """
    job_ids = _job_ids_with_votes(outputs_root) if job_id is None else [validate_job_id(job_id)]
    votes: list[Vote] = []
    seen: dict[PageRef, str | None] = {}
    for jid in job_ids:
        seen.clear()
        files = vote_files(outputs_root, jid)
        job_votes = [vote for path in files for vote in _read_file(outputs_root, path, jid, seen)]
        votes += sorted(job_votes, key=lambda v: v.created_at) if len(files) > 1 else job_votes
    return votes


def _read_file(outputs_root: Path, path: Path, jid: str, seen: dict[PageRef, str | None]) -> list[Vote]:
    votes: list[Vote] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return votes
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            vote = Vote.model_validate_json(line)
        except ValidationError as exc:
            log.warning("%s:%d: skipping unreadable vote (%s)", path, number, exc.errors()[0].get("msg", exc))
            continue
        if vote.job_id != jid:
            log.warning("%s:%d: skipping vote for job %r filed under %r", path, number, vote.job_id, jid)
            continue
        problem = vote_problem(outputs_root, vote, seen)
        if problem:
            log.warning("%s:%d: skipping vote that references nothing real (%s)", path, number, problem)
            continue
        votes.append(vote)
    return votes
