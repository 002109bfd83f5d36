"""A DuckDB index of the output tree, for SQL over jobs, runs, PDFs, pages and votes.

The output tree stays the source of truth: ``<root>/index.duckdb`` is derived and
can be deleted at any time. A refresh never modifies the current index file.
It builds a complete new one beside it (a copy of the old file with the changed
runs' rows replaced by rows re-read from disk) and ``os.replace``-s it into place; readers open
short-lived read-only connections to whichever file is current. So a reviewer
reading and a job indexing never block each other, which DuckDB's one-writer-
XOR-many-readers file lock would otherwise force. Refreshers serialise on a
``flock`` so two of them do not build the same file twice, and a refresh that
finds no change (by per-run signatures of file sizes and mtimes, see
:mod:`tracr.index.scan`) does not write at all. Tables: docs/index.md.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tracr.index.load import PDF_SCHEMA, RUN_SCHEMA, Batch, Frame, load_jobs, load_scores, read_in_background, to_frame
from tracr.index.scan import JobSource, TreeScan, scan_tree
from tracr.index.schema import (
    CHANGED_PAGES,
    COPY_UNCHANGED,
    DDL,
    DELETE_CHANGED,
    INSERT_JOBS,
    INSERT_PAGES,
    INSERT_PDFS,
    INSERT_RUNS,
    RUN_TABLES,
    SCHEMA_VERSION,
    TABLES,
    VOTE_SCHEMA,
    WHOLE_TABLES,
)
from tracr.outputs.layout import OutputLayout
from tracr.outputs.timestamps import utc_now
from tracr.review.ratings import rebuild_ratings
from tracr.review.votes import read_votes

__all__ = ["SCHEMA_VERSION", "TABLES", "IndexStats", "index_path", "refresh_index", "read_index"]

log = logging.getLogger(__name__)

READER_LINK_PREFIX = "reader."
"""Name prefix of the short-lived hard links readers attach (see ``_open_read_only``)."""
_LEGACY_HIDDEN = ".index.duckdb."
"""Trees written before ``.tracr/index/`` kept temp builds and reader links beside the index."""
STALE_READER_LINK_S = 60.0
LINK_ATTEMPTS = 5
COMPACT_WHEN_FREE = 0.5
"""Share of free blocks in the index file above which a refresh writes a compact new file."""


@dataclass
class IndexStats:
    """What a refresh did."""

    runs_read: int
    runs_unchanged: int
    runs_removed: int
    pages: int
    seconds: float
    written: bool = False
    ratings_rebuilt: tuple[str, ...] = ()

    def summary(self) -> str:
        if not self.written:
            return (
                f"index up to date: nothing changed in {self.runs_unchanged} run(s), {self.pages} page(s); checked in {self.seconds:.2f} s"
            )
        text = (
            f"index refreshed: {self.runs_read} run(s) read, {self.runs_unchanged} unchanged, "
            f"{self.runs_removed} removed; {self.pages} page(s) indexed in {self.seconds:.2f} s"
        )
        if self.ratings_rebuilt:
            text += f"; ratings.json rebuilt for {', '.join(self.ratings_rebuilt)}"
        return text


def index_path(outputs_root: Path) -> Path:
    """``<outputs root>/index.duckdb``."""
    return OutputLayout(Path(outputs_root)).index


def _one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The single row an aggregate query returns."""
    row = con.execute(sql).fetchone()
    if row is None:
        raise duckdb.Error(f"no row from {sql!r}")
    return row


@dataclass
class _Previous:
    runs: dict[tuple[str, str, int], str]
    jobs: dict[str, str]
    pages: int
    bloated: bool


def _previous_state(path: Path) -> _Previous | None:
    """Signatures, page count and free space of the current index, or ``None`` if unusable."""
    if not path.is_file():
        return None
    try:
        with _open_read_only(path) as con:
            info = dict(con.execute("SELECT key, value FROM index_info").fetchall())
            if info.get("schema_version") != SCHEMA_VERSION:
                return None
            runs = {(j, m, r): s for j, m, r, s in con.execute("SELECT job_id, model_slug, run, signature FROM index_runs").fetchall()}
            jobs = dict(con.execute("SELECT job_id, signature FROM index_jobs").fetchall())
            pages = _one_row(con, "SELECT count(*) FROM pages")[0]
            total, free = _one_row(
                con, "SELECT total_blocks, free_blocks FROM pragma_database_size() WHERE database_name = 'outputs_index'"
            )
            return _Previous(runs, jobs, int(pages), bloated=bool(total) and free / total > COMPACT_WHEN_FREE)
    except duckdb.Error as exc:
        log.warning("index %s is unreadable (%s); rebuilding it", path, exc)
        return None


@contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    state = OutputLayout(root).index_state_dir
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remove_stale_temp_files(root: Path) -> None:
    """Temp files of a refresh that crashed, and reader links left by a reader that crashed.

    Only called under the writer lock, so no other refresh is using a temp
    file. A reader's link lives for the milliseconds of one ATTACH; one older
    than :data:`STALE_READER_LINK_S` belongs to a reader that died.
    """
    state = OutputLayout(root).index_state_dir
    for leftover in [*state.glob("build.*.tmp*"), *root.glob(f"{_LEGACY_HIDDEN}*.tmp*")]:
        leftover.unlink(missing_ok=True)
    oldest_live = time.time_ns() - int(STALE_READER_LINK_S * 1e9)
    for prefix, folder in ((READER_LINK_PREFIX, state), (f"{_LEGACY_HIDDEN}{READER_LINK_PREFIX}", root)):
        for link in folder.glob(f"{prefix}*"):
            created = link.name[len(prefix) :].split(".", 1)[0]
            if created.isdigit() and int(created) < oldest_live:
                link.unlink(missing_ok=True)


def _vote_table(root: Path) -> Frame:
    batch = Batch(VOTE_SCHEMA)
    for vote in read_votes(root, None):
        sides = {}
        for side, ref in (("left", vote.left), ("right", vote.right)):
            sides.update(
                {f"{side}_model_slug": ref.model_slug, f"{side}_run": ref.run, f"{side}_pdf_slug": ref.pdf_slug, f"{side}_page": ref.page}
            )
        batch.add(vote_id=vote.vote_id, job_id=vote.job_id, created_at=vote.created_at, voter=vote.voter, outcome=vote.outcome, **sides)
    return batch.to_frame()


def _build(root: Path, target: Path, scan: TreeScan, previous: Path | None, kept: list[tuple[str, str, int]], *, compact: bool) -> int:
    """Write a complete index to ``target``; returns its page count.

    Without a usable ``previous`` index every run is read. With one, the kept
    (unchanged) runs come from it: by default the previous file is copied and
    the changed runs' rows replaced in the copy (cheap: no unchanged row is
    rewritten); with ``compact`` a fresh file is filled instead, which leaves no
    free blocks behind (done when deletions have left the file half empty).
    """
    kept_keys = set(kept)
    changed = [source for key, source in scan.runs.items() if key not in kept_keys]
    new_jobs = load_jobs((job.job_id, job.job_dir, job.signature) for job in scan.jobs.values())
    kept_table = to_frame({"job_id": [k[0] for k in kept], "model_slug": [k[1] for k in kept], "run": [k[2] for k in kept]})
    votes = _vote_table(root)
    health, tests, model_scores = load_scores((job.job_id, job.job_dir) for job in scan.jobs.values())
    in_place = previous is not None and not compact
    if previous is not None and in_place:
        shutil.copyfile(previous, target)  # the published file itself is never written
    with duckdb.connect(str(target)) as con:
        scored = (("new_health", health), ("new_tests", tests), ("new_model_scores", model_scores))
        for name, frame in (("new_jobs", new_jobs), ("kept", kept_table), ("new_votes", votes), *scored):
            con.register(name, frame)
        con.execute(f"CREATE TEMP TABLE new_runs ({RUN_SCHEMA.ddl()}); CREATE TEMP TABLE new_pdfs ({PDF_SCHEMA.ddl()})")
        if in_place:
            for table in RUN_TABLES:
                con.execute(DELETE_CHANGED.format(table=table))
            for table in WHOLE_TABLES:
                con.execute(f"DELETE FROM {table}")
        else:
            con.execute(DDL)
            if previous is not None and kept:
                con.execute(f"ATTACH '{_sql_string(previous)}' AS old (READ_ONLY)")
                for table in RUN_TABLES:
                    con.execute(COPY_UNCHANGED.format(table=table))
                con.execute("DETACH old")
        for run_rows, pdf_rows, page_rows in read_in_background(changed, str(root)):
            con.register("chunk_pages", page_rows)
            con.execute(INSERT_PAGES)
            con.register("chunk_runs", run_rows)
            con.register("chunk_pdfs", pdf_rows)
            con.execute("INSERT INTO new_runs FROM chunk_runs; INSERT INTO new_pdfs FROM chunk_pdfs")
            for name in ("chunk_pages", "chunk_runs", "chunk_pdfs"):
                con.unregister(name)
        con.execute(INSERT_PDFS.format(changed=CHANGED_PAGES))
        con.execute(INSERT_RUNS.format(changed=CHANGED_PAGES))
        con.execute("INSERT INTO index_runs SELECT job_id, model_slug, run, signature FROM new_runs")
        con.execute(INSERT_JOBS)
        con.execute("INSERT INTO index_jobs SELECT job_id, signature FROM new_jobs")
        con.execute("INSERT INTO votes SELECT * REPLACE (TRY_CAST(created_at AS TIMESTAMP) AS created_at) FROM new_votes")
        con.execute("INSERT INTO page_health FROM new_health; INSERT INTO test_outcomes FROM new_tests")
        con.execute("INSERT INTO model_scores SELECT * REPLACE (TRY_CAST(scored_at AS TIMESTAMP) AS scored_at) FROM new_model_scores")
        con.executemany(
            "INSERT INTO index_info VALUES (?, ?)",
            [["schema_version", SCHEMA_VERSION], ["refreshed_at", utc_now()], ["outputs_root", str(root)]],
        )
        return int(_one_row(con, "SELECT count(*) FROM pages")[0])


def refresh_index(outputs_root: Path, *, rebuild: bool = False, compact: bool = False) -> IndexStats:
    """Bring ``<root>/index.duckdb`` up to date with the output tree.

    Runs whose signature is unchanged are kept from the current index instead
    of being re-read; ``rebuild=True`` re-reads everything. When nothing changed
    the index file is not opened for writing at all. ``compact=True`` (also
    chosen by itself once half the file is free blocks) writes the kept rows
    into a fresh file rather than patching a copy of the old one.
    """
    started = time.perf_counter()
    root = Path(outputs_root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"outputs root {root} does not exist (run a job first, or pass --outputs)")
    path = index_path(root)
    with _writer_lock(root):
        scan = scan_tree(str(root))
        previous = None if rebuild else _previous_state(path)
        old_runs = previous.runs if previous is not None else {}
        kept = sorted(key for key, source in scan.runs.items() if old_runs.get(key) == source.signature)
        removed = sum(1 for key in old_runs if key not in scan.runs)
        jobs_same = previous is not None and previous.jobs == {job_id: job.signature for job_id, job in scan.jobs.items()}
        if previous is not None and len(kept) == len(scan.runs) and not removed and jobs_same and not compact:
            return IndexStats(0, len(kept), 0, previous.pages, time.perf_counter() - started, written=False)
        _remove_stale_temp_files(root)
        temp = OutputLayout(root).index_state_dir / f"build.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            reuse = path if previous is not None else None
            pages = _build(root, temp, scan, reuse, kept, compact=previous is not None and (compact or previous.bloated))
            os.replace(temp, path)
        finally:
            for leftover in (temp, Path(f"{temp}.wal")):
                leftover.unlink(missing_ok=True)
        old_jobs = previous.jobs if previous is not None else {}
        voted = [
            j.job_id
            for j in scan.jobs.values()
            if j.votes_token != "-" and JobSource.votes_part(old_jobs.get(j.job_id, "")) != j.votes_token
        ]
        rebuilt = _rebuild_ratings(root, voted)
    return IndexStats(
        len(scan.runs) - len(kept), len(kept), removed, pages, time.perf_counter() - started, written=True, ratings_rebuilt=rebuilt
    )


def _rebuild_ratings(root: Path, job_ids: list[str]) -> tuple[str, ...]:
    """Rewrite ``elo/ratings.json`` of jobs whose votes changed; a failure is logged, not raised.

    The index is not needed for it, but a refresh is where changed vote files are
    noticed anyway, so the derived ratings file stays current without a command of its own.
    """
    done = []
    for job_id in job_ids:
        try:
            rebuild_ratings(root, job_id)
            done.append(job_id)
        except (OSError, ValueError) as exc:
            log.warning("could not rebuild ratings.json of job %s: %s", job_id, exc)
    return tuple(done)


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with ``path`` attached read-only and in use.

    Not ``duckdb.connect(path)``: DuckDB caches one database per path and process,
    so a second connection opened while a first is still open would get the old
    file's instance and miss a refresh that replaced the file in between.

    Not ``ATTACH path`` either: DuckDB opens the file by name twice, once for
    its headers and once for its blocks, so a refresh's ``os.replace`` landing
    between the two pairs the old file's headers with the new file's blocks (a
    torn read). The current file is hard-linked to a private name first, which
    no refresh ever replaces, and that name is attached and then unlinked
    (DuckDB keeps its handle). Where no link can be made (a read-only outputs
    folder, say) the path is attached directly and the rare race remains.
    """
    con = duckdb.connect(":memory:")
    pinned = _pin(path)
    try:
        con.execute(f"ATTACH '{_sql_string(pinned or path)}' AS outputs_index (READ_ONLY); USE outputs_index")
    except BaseException:
        con.close()
        raise
    finally:
        if pinned is not None:
            pinned.unlink(missing_ok=True)
    return con


def _pin(path: Path) -> Path | None:
    """A new hard link to the file ``path`` names right now, or ``None`` if none can be made.

    ``link(2)`` answers ENOENT when the file it found is replaced at that moment
    (its old inode just lost its last name), so that answer is retried: the next
    try finds the new file. Only an index that stays missing is raised.
    """
    folder = OutputLayout(path.parent).index_state_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.debug("cannot create %s (%s); attaching %s by name", folder, exc, path)
        return None
    link = folder / f"{READER_LINK_PREFIX}{time.time_ns()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    attempts = 0
    while True:
        attempts += 1
        try:
            os.link(path, link)
            return link
        except FileNotFoundError:
            if attempts >= LINK_ATTEMPTS:
                raise
        except OSError as exc:
            log.debug("cannot hard-link %s (%s); attaching it by name", path, exc)
            return None


@contextmanager
def read_index(outputs_root: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the current index, closed on exit.

    Keep it short-lived: a refresh replaces the file, and a connection keeps
    seeing the version it opened. Builds the index first if there is none.
    """
    path = index_path(outputs_root)
    if not path.is_file():
        refresh_index(outputs_root)
    con = _open_read_only(path)
    try:
        yield con
    finally:
        con.close()


def _sql_string(path: Path) -> str:
    """``path`` for a single-quoted SQL literal."""
    return str(path).replace("'", "''")
