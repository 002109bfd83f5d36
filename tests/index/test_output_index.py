"""The DuckDB index of the output tree: content, incremental refresh, concurrency, the flows."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tests.conftest import TEST_API_KEY, write_config
from tracr.config.job_request import JobRequest
from tracr.index.store import READER_LINK_PREFIX, STALE_READER_LINK_S, TABLES, index_path, read_index, refresh_index
from tracr.outputs.journal import PageRecord, latest_page_records, read_page_journal
from tracr.outputs.layout import OutputLayout
from tracr.review.votes import PageRef, append_vote, new_vote
from tracr.testing.output_tree import ModelProfile, TreeSpec, generate_tree

SMALL = TreeSpec(
    job_id="idx",
    models=(ModelProfile("model-a", fail_rate=0.1), ModelProfile("model-b", noise=0.2, fail_rate=0.2)),
    runs_per_model=2,
    pdfs=3,
    pages_per_pdf=4,
    chars_per_page=400,
    seed=5,
)
PAGE_FIELDS = [
    "page",
    "status",
    "attempts",
    "latency_s",
    "ttft_s",
    "input_tokens",
    "output_tokens",
    "finish_reason",
    "chars",
    "error",
    "error_class",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    generate_tree(root, SMALL)
    return root


def _dump(root: Path) -> dict[str, list[tuple]]:
    with read_index(root) as con:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in (*TABLES, "index_runs", "index_jobs")}


def _journal_pages(root: Path) -> dict[tuple, PageRecord]:
    """Every page's latest record, read with tracr.outputs.journal (independent of the index code)."""
    out = {}
    for journal in root.glob("*/*/run-*/*/pages.jsonl"):
        pdf_dir = journal.parent
        run_dir = pdf_dir.parent
        for record in latest_page_records(read_page_journal(journal)):
            out[(run_dir.parent.parent.name, run_dir.parent.name, int(run_dir.name[4:]), pdf_dir.name, record.page)] = record
    return out


def test_pages_hold_every_journal_field_and_the_markdown(tree):
    stats = refresh_index(tree)
    expected = _journal_pages(tree)
    assert stats.written and stats.runs_read == 4 and stats.pages == len(expected) == 2 * 2 * 3 * 4
    with read_index(tree) as con:
        rows = con.execute(
            f"SELECT job_id, model_slug, run, pdf_slug, {', '.join(PAGE_FIELDS)}, strftime(finished_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z', markdown, md_path FROM pages"
        ).fetchall()
    assert len(rows) == len(expected)
    failed = 0
    for row in rows:
        key = row[:4] + (row[4],)
        record = expected[key]
        assert list(row[4 : 4 + len(PAGE_FIELDS)]) == [getattr(record, f) for f in PAGE_FIELDS]
        assert row[-3] == record.finished_at
        markdown, md_path = row[-2], row[-1]
        if record.status == "done":
            assert markdown == (tree / md_path).read_text(encoding="utf-8") and len(markdown) == record.chars
            assert md_path == f"{key[0]}/{key[1]}/run-{key[2]}/{key[3]}/{key[4]}.md"
        else:
            failed += 1
            assert markdown is None and md_path is None and record.error_class
    assert failed > 0
    with read_index(tree) as con:
        columns = {row[0] for row in con.execute("SELECT column_name FROM (DESCRIBE pages)").fetchall()}
    assert {f.name for f in fields(PageRecord)} <= columns  # a field added to the journal must reach the index


def test_runs_pdfs_and_jobs_roll_up_the_pages(tree):
    refresh_index(tree)
    expected = _journal_pages(tree)
    with read_index(tree) as con:
        runs = con.execute("SELECT * FROM runs ORDER BY model_slug, run").df()
        pdfs = con.execute("SELECT * FROM pdfs").df()
        jobs = con.execute("SELECT * FROM jobs").df()
    assert list(runs["status"]) == ["completed"] * 4 and set(runs["provider"]) == {"openai-compatible"}
    assert list(runs["model"]) == ["vendor/model-a"] * 2 + ["vendor/model-b"] * 2
    for run in runs.itertuples():
        mine = [r for k, r in expected.items() if k[1] == run.model_slug and k[2] == run.run]
        done = [r for r in mine if r.status == "done"]
        assert (run.pages_total, run.pages_done, run.pages_failed) == (12, len(done), len(mine) - len(done))
        assert run.output_tokens == sum(r.output_tokens or 0 for r in mine)
        for q, column in ((50, "latency_p50"), (90, "latency_p90"), (99, "latency_p99")):
            assert getattr(run, column) == pytest.approx(np.percentile([r.latency_s for r in done], q))
        assert run.ttft_p90 == pytest.approx(np.percentile([r.ttft_s for r in done], 90))
        assert run.pages_per_s == pytest.approx(round(len(done) / run.wall_seconds, 3))
        assert run.run_dir == f"idx/{run.model_slug}/run-{run.run}" and (tree / run.run_dir / "run_metadata.json").is_file()
    assert len(pdfs) == 12 and set(pdfs["page_count"]) == {4} and set(pdfs["status"]) == {"completed"}
    assert int(pdfs["pages_done"].sum() + pdfs["pages_failed"].sum()) == 48
    assert jobs.to_dict("records")[0] | {"created_at": None} == {
        "job_id": "idx",
        "title": "synthetic job idx",
        "created_at": None,
        "models": 2,
        "runs": 4,
        "pages_done": int(runs["pages_done"].sum()),
        "pages_failed": int(runs["pages_failed"].sum()),
    }


def test_runs_are_read_in_chunks_that_add_up_to_the_whole(tree):
    from tracr.index.load import iter_run_chunks, load_runs
    from tracr.index.scan import scan_tree

    sources = list(scan_tree(str(tree)).runs.values())
    whole = load_runs(sources, str(tree))
    chunks = list(iter_run_chunks(sources, str(tree), pages_per_chunk=5))
    assert len(chunks) > len(sources)  # runs were split at PDF boundaries
    assert all(len(pages["page"]) <= 8 for _, _, pages in chunks)  # 5 rounded up to a whole 4-page PDF
    for part, full in zip(zip(*chunks, strict=False), whole, strict=False):
        assert {name: np.concatenate([frame[name] for frame in part]).tolist() for name in full} == {
            name: column.tolist() for name, column in full.items()
        }
        assert len(full["job_id"]) > 0


def test_background_reader_stops_when_its_consumer_does(tree):
    import threading

    from tracr.index.load import read_in_background
    from tracr.index.scan import scan_tree

    sources = list(scan_tree(str(tree)).runs.values())
    reader = read_in_background(sources, str(tree), pages_per_chunk=4)  # 12 chunks, the queue holds 2
    _, pdfs, pages = next(reader)
    assert (len(pdfs["pdf_slug"]), len(pages["page"])) == (1, 4)
    time.sleep(0.3)  # let the worker fill the queue and block on it
    reader.close()  # e.g. the insert failed: the worker thread must not hang on a full queue
    assert not [t for t in threading.enumerate() if t.name == "index-reader"]
    assert sum(len(p["page"]) for _, _, p in read_in_background(sources, str(tree))) == 48


def test_latest_record_wins_and_a_torn_line_is_skipped(tree):
    run_dir = tree / "idx" / "model-b" / "run-1" / "doc-00000"
    (run_dir / "1.md").write_text("# redone\n", encoding="utf-8")
    with (run_dir / "pages.jsonl").open("a") as journal:
        journal.write(PageRecord(page=1, status="done", attempts=3, latency_s=9.5, chars=9, finish_reason="stop").to_json() + "\n")
        journal.write('{"page": 2, "status": "fail')  # torn by a power cut
    refresh_index(tree)
    with read_index(tree) as con:
        row = con.execute(
            "SELECT status, attempts, latency_s, markdown FROM pages WHERE model_slug='model-b' AND run=1 AND pdf_slug='doc-00000' AND page=1"
        ).fetchone()
        pages = con.execute("SELECT count(*) FROM pages WHERE model_slug='model-b' AND run=1 AND pdf_slug='doc-00000'").fetchone()[0]
    assert row == ("done", 3, 9.5, "# redone\n")
    assert pages == 4


def test_no_change_refresh_does_not_write(tree):
    refresh_index(tree)
    before = index_path(tree).stat()
    stats = refresh_index(tree)
    after = index_path(tree).stat()
    assert not stats.written and stats.runs_read == 0 and stats.runs_unchanged == 4 and stats.pages == 48
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert not list(OutputLayout(tree).index_state_dir.glob("build.*"))


def test_incremental_refresh_rereads_changed_runs_only_and_equals_a_rebuild(tree):
    refresh_index(tree)
    run = tree / "idx" / "model-a" / "run-2"
    with (run / "doc-00001" / "pages.jsonl").open("a") as journal:
        journal.write(PageRecord(page=2, status="failed", attempts=5, error="late failure", error_class="timeout").to_json() + "\n")
    stats = refresh_index(tree)
    assert (stats.runs_read, stats.runs_unchanged, stats.runs_removed) == (1, 3, 0)
    incremental = _dump(tree)
    with (run / "doc-00002" / "pages.jsonl").open("a") as journal:  # the compacting path gives the same rows
        journal.write(PageRecord(page=3, status="done", attempts=2, latency_s=1.0, chars=0).to_json() + "\n")
    (run / "doc-00002" / "3.md").write_text("")
    stats = refresh_index(tree, compact=True)
    assert (stats.runs_read, stats.runs_unchanged) == (1, 3)
    incremental = _dump(tree)
    index_path(tree).unlink()
    rebuilt = refresh_index(tree)
    assert rebuilt.runs_read == 4
    assert _dump(tree) == incremental
    assert ("late failure" in str(incremental["pages"])) and refresh_index(tree, rebuild=True).runs_read == 4


def test_repeated_incremental_refreshes_keep_the_file_size_bounded(tmp_path):
    root = tmp_path / "outputs"
    generate_tree(
        root, TreeSpec(job_id="grow", models=(ModelProfile("m-a"), ModelProfile("m-b")), pdfs=60, pages_per_pdf=10, chars_per_page=2000)
    )
    refresh_index(root)
    fresh = index_path(root).stat().st_size
    journal = next((root / "grow" / "m-b" / "run-1").glob("*/pages.jsonl"))
    sizes = []
    for _ in range(12):  # a run that keeps changing, refreshed each time: rows deleted and re-added in a copy
        with journal.open("a") as handle:
            handle.write(PageRecord(page=1, status="failed", error="again", error_class="timeout").to_json() + "\n")
        assert refresh_index(root).runs_read == 1
        sizes.append(index_path(root).stat().st_size)
    assert max(sizes) < 2.5 * fresh, (fresh, sizes)  # freed space is reused or compacted away, never piles up
    incremental = _dump(root)
    index_path(root).unlink()
    refresh_index(root)
    assert _dump(root) == incremental


def test_removed_and_added_runs_and_jobs(tree):
    refresh_index(tree)
    import shutil

    shutil.rmtree(tree / "idx" / "model-b" / "run-2")
    generate_tree(tree, TreeSpec(job_id="second", models=(ModelProfile("model-z"),), pdfs=1, pages_per_pdf=2))
    stats = refresh_index(tree)
    assert (stats.runs_read, stats.runs_unchanged, stats.runs_removed) == (1, 3, 1)
    with read_index(tree) as con:
        assert con.execute("SELECT job_id, runs FROM jobs ORDER BY job_id").fetchall() == [("idx", 3), ("second", 1)]
        assert con.execute("SELECT count(*) FROM pages WHERE model_slug='model-b' AND run=2").fetchone()[0] == 0


def test_votes_are_indexed_and_a_new_vote_triggers_a_refresh(tree):
    refresh_index(tree)
    a = PageRef(model_slug="model-a", run=1, pdf_slug="doc-00000", page=1)
    b = PageRef(model_slug="model-b", run=1, pdf_slug="doc-00000", page=1)
    vote = new_vote("idx", a, b, "left", "ann")
    append_vote(tree, vote)
    stats = refresh_index(tree)
    assert stats.written and stats.runs_read == 0
    assert stats.ratings_rebuilt == ("idx",) and "ratings.json rebuilt for idx" in stats.summary()
    ratings = json.loads((tree / "idx" / "elo" / "ratings.json").read_text())
    assert ratings["votes"] == 1 and [r["model"] for r in ratings["ratings"]] == ["model-a", "model-b"]
    assert refresh_index(tree).ratings_rebuilt == ()  # votes unchanged: nothing to redo
    with read_index(tree) as con:
        row = con.execute(
            "SELECT vote_id, job_id, voter, outcome, left_model_slug, left_run, left_pdf_slug, left_page, right_model_slug FROM votes"
        ).fetchone()
    assert row == (vote.vote_id, "idx", "ann", "left", "model-a", 1, "doc-00000", 1, "model-b")


def test_folders_that_are_not_valid_ids_are_ignored(tree):
    (tree / "idx" / "Bad Model" / "run-1" / "x").mkdir(parents=True)
    (tree / "idx" / "model-a" / "run-1" / "..weird").mkdir()
    (tree / "idx" / "model-a" / "run-01").mkdir()
    (tree / "not a job").mkdir()
    (tree / "not a job" / "job_metadata.json").write_text("{}")
    refresh_index(tree)
    with read_index(tree) as con:
        assert con.execute("SELECT DISTINCT model_slug FROM runs ORDER BY 1").fetchall() == [("model-a",), ("model-b",)]
        assert con.execute("SELECT count(*) FROM pdfs WHERE pdf_slug LIKE '%weird%'").fetchone()[0] == 0


def test_read_index_builds_a_missing_index_and_a_missing_root_is_a_clear_error(tmp_path, tree):
    assert not index_path(tree).exists()
    with read_index(tree) as con:
        assert con.execute("SELECT count(*) FROM pages").fetchone()[0] == 48
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM pages")  # readers are read-only
    with pytest.raises(FileNotFoundError, match="does not exist"):
        refresh_index(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert refresh_index(empty).pages == 0
    with read_index(empty) as con:
        assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_an_index_of_another_schema_or_a_corrupt_one_is_rebuilt(tree):
    index_path(tree).write_bytes(b"this is not a duckdb file")
    stats = refresh_index(tree)
    assert stats.written and stats.runs_read == 4
    with read_index(tree) as con:
        assert con.execute("SELECT count(*) FROM pages").fetchone()[0] == 48


def test_a_reader_opened_after_a_refresh_sees_it_while_an_older_one_keeps_its_snapshot(tree):
    refresh_index(tree)
    journal = tree / "idx" / "model-a" / "run-1" / "doc-00000" / "pages.jsonl"
    query = "SELECT error FROM pages WHERE model_slug = 'model-a' AND run = 1 AND pdf_slug = 'doc-00000' AND page = 1"
    with read_index(tree) as old:
        before = old.execute(query).fetchone()
        with journal.open("a") as handle:
            handle.write(PageRecord(page=1, status="failed", error="newer", error_class="timeout").to_json() + "\n")
        assert refresh_index(tree).written
        with read_index(tree) as new:  # same process, the older connection still open
            assert new.execute(query).fetchone() == ("newer",)
        assert old.execute(query).fetchone() == before != ("newer",)


# --- real processes: a refresher and a reader never block each other ---------------------


def _keep_refreshing(root: str, seconds: float, queue) -> None:
    journal = Path(root) / "idx" / "model-a" / "run-1" / "doc-00000" / "pages.jsonl"
    writes = errors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with journal.open("a") as handle:  # a job still writing pages
                handle.write(PageRecord(page=1, status="failed", error="x", error_class="timeout").to_json() + "\n")
            writes += refresh_index(Path(root)).written
        except Exception as exc:  # reported, not raised: the parent asserts on it
            errors += 1
            queue.put(("writer-error", repr(exc)))
    queue.put(("writer", writes, errors))


def _keep_reading(root: str, seconds: float, queue) -> None:
    reads = errors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with read_index(Path(root)) as con:
                assert con.execute("SELECT count(*) FROM pages").fetchone()[0] == 48
                con.execute("SELECT model_slug, avg(latency_s) FROM pages GROUP BY 1").fetchall()
            reads += 1
        except Exception as exc:
            errors += 1
            queue.put(("reader-error", repr(exc)))
    queue.put(("reader", reads, errors))


def test_a_reader_and_a_refresher_in_two_processes_never_block_each_other(tree):
    refresh_index(tree)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_keep_refreshing, args=(str(tree), 8.0, queue)),
        ctx.Process(target=_keep_reading, args=(str(tree), 8.0, queue)),
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(2)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    by_kind = {r[0]: r[1:] for r in results}
    assert set(by_kind) == {"writer", "reader"}, results  # an error message would show here
    assert by_kind["writer"][1] == 0 and by_kind["reader"][1] == 0
    assert by_kind["writer"][0] >= 3 and by_kind["reader"][0] >= 10, by_kind


def _publish_alternately(root: str, first: str, second: str, seconds: float, queue) -> None:
    """A refresher at its fastest: publish one complete index after the other with ``os.replace``."""
    swaps = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        staged = Path(root) / f".index.duckdb.swap-{swaps}.tmp"
        os.link(first if swaps % 2 else second, staged)
        os.replace(staged, index_path(Path(root)))
        swaps += 1
    queue.put(("writer", swaps))


def _count_pages(root: str, seconds: float, queue) -> None:
    reads, errors, counts = 0, [], set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with read_index(Path(root)) as con:
                counts.add(con.execute("SELECT count(*) FROM pages").fetchone()[0])
            reads += 1
        except Exception as exc:
            errors.append(repr(exc))
    queue.put(("reader", reads, errors[:3], len(errors), sorted(counts)))


def test_a_reader_never_pairs_one_index_files_headers_with_anothers_blocks(tree, tmp_path):
    """DuckDB opens an attached file by name twice (headers, then blocks); a swap in between tore reads.

    Two complete indexes of different sizes are published one after the other as
    fast as ``os.replace`` allows while another process reads: every read must see
    one whole index. Attaching ``index.duckdb`` by name tore 28-36 reads of every such run.
    """
    refresh_index(tree)
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    os.link(index_path(tree), first)  # a fresh file, then a refreshed copy of it: what refreshes publish
    generate_tree(tree, TreeSpec(job_id="later", models=(ModelProfile("model-c"),), pdfs=9, pages_per_pdf=20, chars_per_page=3000, seed=2))
    assert refresh_index(tree).runs_read == 1
    os.link(index_path(tree), second)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_publish_alternately, args=(str(tree), str(first), str(second), 5.0, queue)),
        ctx.Process(target=_count_pages, args=(str(tree), 5.0, queue)),
    ]
    for p in procs:
        p.start()
    results = {r[0]: r[1:] for r in (queue.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reads, errors, error_count, counts = results["reader"]
    assert error_count == 0, errors
    assert results["writer"][0] > 1000 and reads >= 20, results
    assert counts == [48, 228], "each read saw one whole index, and both were seen"
    assert not list(OutputLayout(tree).index_state_dir.glob(f"{READER_LINK_PREFIX}*")), "a reader's link lives only while it attaches"


def test_a_refresh_sweeps_links_left_by_readers_that_died(tree):
    refresh_index(tree)
    now = time.time_ns()
    dead = OutputLayout(tree).index_state_dir / f"{READER_LINK_PREFIX}{now - int((STALE_READER_LINK_S + 5) * 1e9)}.1.dead"
    live = OutputLayout(tree).index_state_dir / f"{READER_LINK_PREFIX}{now}.2.live"
    for link in (dead, live):
        os.link(index_path(tree), link)
    (tree / "idx" / "model-a" / "run-1" / "doc-00000" / "pages.jsonl").open("a").close()
    os.utime(tree / "idx" / "model-a" / "run-1" / "doc-00000" / "pages.jsonl", ns=(now, now))
    assert refresh_index(tree).written
    assert not dead.exists() and live.exists(), "only a link older than a reader could need is removed"


def _refresh_once(root: str, queue) -> None:
    try:
        stats = refresh_index(Path(root))
        queue.put(("ok", stats.pages))
    except Exception as exc:
        queue.put(("error", repr(exc)))


def test_concurrent_refreshers_take_turns(tree):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_refresh_once, args=(str(tree), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert results == [("ok", 48)] * 3
    assert not list(OutputLayout(tree).index_state_dir.glob("build.*"))


def test_tracr_index_command(tree):
    env = {**os.environ, "TRACR_OUTPUTS": str(tree)}
    first = subprocess.run([sys.executable, "-m", "cli.main", "index"], capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "index refreshed: 4 run(s) read" in first.stdout and str(index_path(tree)) in first.stdout
    again = subprocess.run([sys.executable, "-m", "cli.main", "index", "--outputs", str(tree)], capture_output=True, text=True, timeout=120)
    assert "index up to date" in again.stdout
    rebuilt = subprocess.run(
        [sys.executable, "-m", "cli.main", "index", "--outputs", str(tree), "--rebuild"], capture_output=True, text=True, timeout=120
    )
    assert "4 run(s) read" in rebuilt.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "cli.main", "index", "--outputs", str(tree / "nope")], capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    index_path(tree).unlink()
    index_path(tree).mkdir()  # something in the way: a clear message, exit 1, no temp file left
    blocked = subprocess.run(
        [sys.executable, "-m", "cli.main", "index", "--outputs", str(tree)], capture_output=True, text=True, timeout=120
    )
    assert blocked.returncode == 1 and "could not refresh the index" in blocked.stderr and "Traceback" not in blocked.stderr
    assert not list(OutputLayout(tree).index_state_dir.glob("build.*"))


# --- through Prefect: a real job run, then the index-outputs flow --------------------------


def _job(tmp_path: Path, base_url: str, job_id: str) -> Path:
    model = {
        "model": "stub-ocr",
        "mode": "api",
        "provider": "custom",
        "base_url": base_url,
        "api_key_env": "TRACR_TEST_STUB_KEY",
        "retries": 1,
        "retry_backoff_s": 0.01,
    }
    return write_config(
        tmp_path / f"{job_id}.yaml", {"job_id": job_id, "input_path": str(tmp_path / "inputs"), "max_tokens": 64, "models": [model]}
    )


async def test_a_job_run_refreshes_the_index_when_it_ends(tmp_path, prefect_server, stub_server, pdf_factory, monkeypatch):
    from flows.index_outputs import index_outputs_flow
    from flows.ocr_job import ocr_job_flow

    monkeypatch.setenv("TRACR_TEST_STUB_KEY", TEST_API_KEY)
    stub = stub_server(latency_s=0.01)
    pdf_factory("alpha.pdf", 3)
    pdf_factory("beta.pdf", 1)
    outputs = tmp_path / "out"
    state = await ocr_job_flow(
        JobRequest(config_path=str(_job(tmp_path, stub.base_url, "indexed")), outputs=str(outputs)), return_state=True
    )
    assert state.is_completed(), state.message

    run_dir = OutputLayout(outputs).run("indexed", "stub-ocr", 1).run_dir
    with read_index(outputs) as con:  # built by the job, not by read_index
        pages = con.execute("SELECT pdf_slug, page, status, markdown FROM pages WHERE job_id='indexed' ORDER BY ALL").fetchall()
        run = con.execute("SELECT status, pages_done, pages_failed FROM runs WHERE job_id='indexed'").fetchone()
    assert [(p[0], p[1], p[2]) for p in pages] == [("alpha", 1, "done"), ("alpha", 2, "done"), ("alpha", 3, "done"), ("beta", 1, "done")]
    assert all(p[3] == (run_dir / p[0] / f"{p[1]}.md").read_text(encoding="utf-8") for p in pages)
    assert run == ("completed", 4, 0)
    assert TEST_API_KEY.encode() not in index_path(outputs).read_bytes()

    result = await index_outputs_flow(outputs=str(outputs))
    assert result["written"] is False and result["runs_unchanged"] == 1 and result["pages"] == 4
    result = await index_outputs_flow(outputs=str(outputs), rebuild=True)
    assert result["written"] is True and result["runs_read"] == 1


async def test_an_index_that_cannot_be_written_fails_its_flow_run_in_one_line(tmp_path, prefect_server, caplog):
    from flows.index_outputs import index_outputs_flow

    missing = tmp_path / "never-made"
    state = await index_outputs_flow(outputs=str(missing), return_state=True)
    assert state.is_failed()
    assert (
        state.message == f"could not refresh the outputs index: outputs root {missing} does not exist (run a job first, or pass --outputs)"
    )
    assert "Traceback" not in caplog.text and "FileNotFoundError" not in caplog.text


async def test_a_failing_index_does_not_fail_the_job(tmp_path, prefect_server, stub_server, pdf_factory, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    from flows.ocr_job import ocr_job_flow

    monkeypatch.setenv("TRACR_TEST_STUB_KEY", TEST_API_KEY)
    stub = stub_server()
    pdf_factory("alpha.pdf", 1)
    outputs = tmp_path / "out"
    index_path(outputs).mkdir(parents=True)  # a directory where the index file must go: the swap fails
    state = await ocr_job_flow(
        JobRequest(config_path=str(_job(tmp_path, stub.base_url, "unindexable")), outputs=str(outputs)), return_state=True
    )
    assert state.is_completed(), state.message
    assert index_path(outputs).is_dir()
    await APILogHandler.aflush()
    async with get_client() as client:
        logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert any("could not refresh the outputs index" in log.message for log in logs), [log.message for log in logs]
    assert not any("Traceback" in log.message or "exception" in log.message for log in logs), [log.message for log in logs]
    assert (outputs / "unindexable" / "stub-ocr" / "run-1" / "alpha" / "1.md").is_file()
    assert not list(OutputLayout(outputs).index_state_dir.glob("build.*"))


def test_a_refresh_sweeps_reader_links_an_older_tracr_left_beside_the_index(tree):
    refresh_index(tree)
    old = time.time_ns() - int((STALE_READER_LINK_S + 5) * 1e9)
    legacy = tree / f".index.duckdb.reader.{old}.1.dead"
    os.link(index_path(tree), legacy)
    (tree / "idx" / "model-a" / "run-1" / "doc-00000" / "pages.jsonl").open("a").close()
    now = time.time_ns()
    os.utime(tree / "idx" / "model-a" / "run-1" / "doc-00000" / "pages.jsonl", ns=(now, now))
    assert refresh_index(tree).written
    assert not legacy.exists()


def test_a_refresh_from_a_flow_runs_in_a_child_that_takes_duckdb_with_it(tree: Path) -> None:
    """The job process never loads DuckDB: the memory a refresh takes leaves with the child."""
    script = (
        "import asyncio, json, sys\n"
        "from pathlib import Path\n"
        "from tasks.index_outputs import _refresh_in_child\n"
        f"_, stats = asyncio.run(_refresh_in_child(Path({str(tree)!r}), False))\n"
        "print(json.dumps({'pages': stats['pages'], 'written': stats['written'], 'duckdb_here': 'duckdb' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    pages = sum(len(latest_page_records(read_page_journal(journal))) for journal in tree.glob("*/*/run-*/*/pages.jsonl"))
    assert result["written"] and result["pages"] == pages > 0
    assert result["duckdb_here"] is False
    with read_index(tree) as con:
        assert con.execute("SELECT count(*) FROM pages").fetchone() == (pages,)
