"""Output layout, slugs, page selection, atomic writes and the run state machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracr.config.pages import parse_page_selection
from tracr.outputs.files import append_line, write_bytes_atomic, write_json_atomic
from tracr.outputs.journal import PageRecord, latest_page_records, read_page_journal
from tracr.outputs.layout import OutputLayout
from tracr.outputs.rollup import Rollup
from tracr.outputs.slugs import pdf_slugs, slugify
from tracr.run.state import InvalidTransition, RunStatus, check_transition


def test_run_numbers_are_allocated_in_order_and_never_reused(tmp_path):
    layout = OutputLayout(tmp_path)
    assert [layout.allocate_run("job", "m").run for _ in range(3)] == [1, 2, 3]
    (tmp_path / "job" / "m" / "run-7").mkdir()
    assert layout.allocate_run("job", "m").run == 8
    assert layout.run_numbers("job", "m") == [1, 2, 3, 7, 8]
    location = layout.run("job", "m", 2)
    assert location.page_markdown("doc", 5) == tmp_path / "job" / "m" / "run-2" / "doc" / "5.md"


def test_run_allocation_is_race_free_across_processes(tmp_path):
    code = "import sys; from tracr.outputs.layout import OutputLayout; print(OutputLayout(__import__('pathlib').Path(sys.argv[1])).allocate_run('j','m').run)"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    numbers = sorted(int(p.communicate()[0]) for p in procs)
    assert numbers == [1, 2, 3, 4, 5, 6]


def test_slugs():
    assert slugify("allenai/olmOCR-2-7B-1025") == "allenai-olmocr-2-7b-1025"
    assert slugify("Zürich Report (final)") == "zurich-report-final"
    assert slugify("///") == "item"
    slugs = pdf_slugs([Path("/d/a/report.pdf"), Path("/d/b/report.pdf"), Path("/d/other.pdf")])
    assert slugs[Path("/d/a/report.pdf")] == "d-a-report"
    assert slugs[Path("/d/b/report.pdf")] == "d-b-report"
    assert slugs[Path("/d/other.pdf")] == "other"
    clash = pdf_slugs([Path("/x/a/r.pdf"), Path("/y/x/a/r.pdf")])
    assert len(set(clash.values())) == 2


@pytest.mark.parametrize(
    ("spec", "count", "pages"),
    [
        (None, 3, [1, 2, 3]),
        ("all", 2, [1, 2]),
        ("1-3,7", 10, [1, 2, 3, 7]),
        ("8-", 10, [8, 9, 10]),
        ([2, 5], 4, [2]),
        (4, 9, [4]),
        ("2-4,3-5", 10, [2, 3, 4, 5]),
    ],
)
def test_page_selection(spec, count, pages):
    assert parse_page_selection(spec).resolve(count) == pages


@pytest.mark.parametrize("spec", ["0", "a-b", "5-2", [0], "1,,2"])
def test_bad_page_selection(spec):
    with pytest.raises(ValueError):
        parse_page_selection(spec)


def test_atomic_json_never_leaves_partial_files(tmp_path):
    target = tmp_path / "meta.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # fails inside the write, after the temp file exists
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["meta.json"]


def test_journal_skips_torn_line_and_last_record_wins(tmp_path):
    journal = tmp_path / "pages.jsonl"
    append_line(journal, PageRecord(page=1, status="failed", error="x").to_json())
    append_line(journal, PageRecord(page=1, status="done", chars=3).to_json())
    append_line(journal, PageRecord(page=2, status="done").to_json())
    with open(journal, "a") as handle:
        handle.write('{"page": 3, "sta')  # what power loss could leave
    records = latest_page_records(read_page_journal(journal))
    assert [(r.page, r.status) for r in records] == [(1, "done"), (2, "done")]


def test_rollup_sums_and_rates():
    rollup = Rollup(pages_total=3)
    rollup.add_page(PageRecord(page=1, status="done", input_tokens=10, output_tokens=5, latency_s=1.0))
    rollup.add_page(PageRecord(page=2, status="failed", latency_s=None))
    rollup.wall_seconds = 2.0
    assert (rollup.pages_done, rollup.pages_failed, rollup.input_tokens, rollup.pages_per_s) == (1, 1, 10, 0.5)
    total = Rollup.total([rollup, Rollup.from_dict(rollup.to_dict())])
    assert total.pages_done == 2 and total.pages_total == 6


def test_busy_seconds_counts_overlapping_runs_once():
    from tracr.outputs.rollup import busy_seconds

    spans = [
        ("2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z"),  # two models side by side
        ("2026-01-01T00:00:30.000Z", "2026-01-01T00:01:30.000Z"),
        ("2026-01-02T00:00:00.000Z", "2026-01-02T00:00:10.000Z"),  # a later run
        ("2026-01-03T00:00:00.000Z", None),  # still running: ignored
    ]
    assert busy_seconds(spans) == 100.0


def test_run_state_machine_refuses_invalid_moves():
    assert check_transition(RunStatus.QUEUED, RunStatus.RUNNING) == RunStatus.RUNNING
    with pytest.raises(InvalidTransition, match="completed to running"):
        check_transition(RunStatus.COMPLETED, RunStatus.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(RunStatus.QUEUED, RunStatus.COMPLETED)


def test_domain_package_does_not_import_prefect():
    """``tracr`` is the pure layer: importing all of it must not pull Prefect in."""
    code = (
        "import importlib, pkgutil, sys, tracr\n"
        "for m in pkgutil.walk_packages(tracr.__path__, 'tracr.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('prefect' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_retry_policy_backoff_jitter_and_retry_after():
    import random

    from tracr.errors import ErrorClass
    from tracr.run.retry import RetryPolicy

    policy = RetryPolicy(retries=3, base_delay_s=1.0, max_delay_s=5.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (6, 5.0)]:
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.3  # jittered, not lock-step
    assert policy.delay(1, retry_after_s=3.0, rng=rng) == 3.0  # the server's Retry-After wins when longer
    assert policy.delay(1, retry_after_s=30.0, rng=rng) == 5.0  # but stays within the cap
    assert policy.should_retry(ErrorClass.RATE_LIMITED, 3) and not policy.should_retry(ErrorClass.RATE_LIMITED, 4)
    assert not policy.should_retry(ErrorClass.BAD_REQUEST, 1)


def test_every_run_folder_is_parsed_one_way(tmp_path):
    from tracr.outputs.layout import parse_run_dir

    assert [parse_run_dir(n) for n in ("run-1", "run-12", "run-01", "run-0", "run-", "run-1a", "elo")] == [
        1,
        12,
        None,
        None,
        None,
        None,
        None,
    ]
    for name in ("run-01", "run-3"):
        (tmp_path / "job" / "m" / name).mkdir(parents=True)
    assert OutputLayout(tmp_path).run_numbers("job", "m") == [3], "run-01 would be written as run-1, so it is no run"


def test_tracr_bookkeeping_lives_under_one_hidden_folder(tmp_path):
    layout = OutputLayout(tmp_path)
    hidden = {layout.claims_dir, layout.servers_dir, layout.index_state_dir}
    assert all(path.parent == tmp_path / ".tracr" for path in hidden)
    assert layout.index == tmp_path / "index.duckdb" and layout.votes("j") == tmp_path / "j" / "elo" / "votes.jsonl"
    assert layout.run("j", "m", 2).metrics == tmp_path / "j" / "m" / "run-2" / "metrics.json"
    (tmp_path / "j" / "elo").mkdir(parents=True)
    (tmp_path / "j" / "elo" / "run-1").mkdir()  # a stray folder: still not a model
    assert layout.model_slugs("j") == []


def test_a_live_claim_in_a_tree_written_before_the_tracr_folder_still_blocks(tmp_path):
    from tracr.run.claims import read_claim, release_claim, try_claim

    legacy = tmp_path / ".tracr-claims" / "d1.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({"digest": "d1", "token": "old", "pid": os.getpid(), "host": "here"}))
    acquired, holder = try_claim(tmp_path, "d1", {})
    assert not acquired and holder["token"] == "old"
    assert read_claim(tmp_path, "d1")["token"] == "old"
    assert release_claim(tmp_path, {"digest": "d1", "token": "old"}) and not legacy.exists()
    acquired, mine = try_claim(tmp_path, "d1", {})
    assert acquired and (tmp_path / ".tracr" / "claims" / "d1.json").is_file()
