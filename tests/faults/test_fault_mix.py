"""Every fault kind at once, at rates, then kill -9 at random moments: the invariants hold.

Real parts: the suite's Prefect server, the loopback stub (a real HTTP process)
drawing a fault per page image from a seeded hash (``rate`` in its rules), real
``tracr run`` processes killed with SIGKILL. The invariants, whatever the mix:

* every planned page ends ``done`` or ``failed``, a failed one with its class;
* a done page holds the page's own text (no half-read or garbage body stored),
  cut-off pages say so and runaway ones are capped;
* the run's and the PDFs' records agree with the journals;
* once the faults are gone, ``--resume`` finishes every page and rewrites none;
* no secret in any file of the tree.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tests.faults.records import assert_records_agree, run_meta, stub_job, text_under
from tests.flows.test_resume import KEY_ENV, _env, _tracr, _wait_for
from tracr.outputs.journal import latest_page_records, read_page_journal
from tracr.testing.processes import start_server_process, stop_process_group

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
PDFS = {"alpha": 24, "beta": 16}
CAP = 4_000

#: Transient kinds first (one attempt each, retried), then one that outlasts the
#: retries (the page fails, and succeeds on resume), then the two that are not
#: errors at all but must be marked (cut off, runaway).
MIX = [
    {"fault": "429", "rate": 0.15, "retry_after_s": 0.2},
    {"fault": "500", "rate": 0.1},
    {"fault": "drop", "rate": 0.1},
    {"fault": "malformed", "rate": 0.1},
    {"fault": "html", "rate": 0.1},
    {"fault": "empty", "rate": 0.1},
    {"fault": "timeout", "rate": 0.05},
    {"fault": "503", "rate": 0.15, "times": 3},
    {"fault": "length", "rate": 0.1, "times": -1},
    {"fault": "huge", "rate": 0.05, "times": -1},
]


def _config(inputs: Path, base_url: str, job_id: str, retries: int = 2) -> dict:
    return stub_job(
        inputs, base_url, job_id, KEY_ENV, pdf_concurrency=2, retries=retries, retry_backoff_s=0.05, retry_backoff_max_s=0.2,
        max_concurrent_requests=6, timeout_s=4, max_page_chars=CAP,
    )  # fmt: skip


def _stub(port: int, rules: list[dict], seed: int) -> tuple[subprocess.Popen, int]:
    """A stub process on ``port`` (0: any); the test restarts it clean on the same address, so the config stays the same."""
    # 50 words a chunk: a runaway reply is 400 chunks, not 5,000, so it streams well within the timeout on a busy machine
    config = {"api_key": TEST_API_KEY, "latency_s": 0.02, "timeout_sleep_s": 8, "huge_words": 20_000, "chunk_words": 50}
    config["rules"] = [{**rule, "seed": seed} for rule in rules]
    proc, bound = start_server_process(["tracr.testing.openai_stub", "--port", str(port), "--config", json.dumps(config)])
    assert port in (0, bound)
    return proc, bound


def _latest(run_dir: Path) -> dict[tuple[str, int], object]:
    return {(j.parent.name, r.page): r for j in sorted(run_dir.glob("*/pages.jsonl")) for r in latest_page_records(read_page_journal(j))}


def _run(config: Path, out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        _tracr("run", str(config), "--outputs", str(out), *extra), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def test_every_fault_kind_at_rates_then_resume_once_they_are_gone(tmp_path):
    for name, pages in PDFS.items():
        make_pdf(tmp_path / "inputs" / f"{name}.pdf", pages, label=name)
    total = sum(PDFS.values())
    faulty, port = _stub(0, MIX, seed=7)
    config = write_config(tmp_path / "job.yaml", _config(tmp_path / "inputs", f"http://127.0.0.1:{port}/v1", "faultmix"))
    out = tmp_path / "out"
    run_dir = out / "faultmix" / "stub-ocr" / "run-1"
    try:
        first = _run(config, out)
    finally:
        stop_process_group(faulty)
    assert first.returncode in (0, 1), first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr, first.stdout + first.stderr

    latest = _latest(run_dir)
    assert len(latest) == total  # every planned page is accounted for
    failed = {key: r for key, r in latest.items() if r.status == "failed"}
    done = {key: r for key, r in latest.items() if r.status == "done"}
    assert len(failed) + len(done) == total
    assert failed and done, f"the mix should fail some pages and not all: {len(failed)} failed"
    assert all(r.error_class and r.error for r in failed.values()), failed
    for (slug, page), record in done.items():
        text = (run_dir / slug / f"{page}.md").read_text()
        assert text.startswith("stub page sha256="), (slug, page, text[:80])  # the page's own reply, nothing else
        assert len(text) <= CAP and record.chars == len(text)
    truncated = [key for key, r in done.items() if r.truncated]
    capped = [key for key, r in done.items() if r.capped_at == CAP]
    assert truncated and capped, (truncated, capped)
    assert_records_agree(run_dir)
    assert TEST_API_KEY not in text_under(out)
    done_files = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/*.md")}
    print(f"fault mix: {total} pages, {len(done)} done ({len(truncated)} cut off, {len(capped)} capped), {len(failed)} failed")

    # The faults are gone (a clean stub on the same address): resume sends exactly the failed pages.
    clean, _ = _stub(port, [], seed=0)
    try:
        resumed = _run(config, out, "--resume")
    finally:
        stop_process_group(clean)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    latest = _latest(run_dir)
    assert all(r.status == "done" for r in latest.values()) and len(latest) == total
    assert {p: p.stat().st_mtime_ns for p in done_files} == done_files, "a finished page was rewritten"
    assert run_meta(run_dir)["status"] == "completed"
    assert_records_agree(run_dir)
    assert TEST_API_KEY not in text_under(out)


def test_kill_9_at_random_moments_then_resume_loses_and_repeats_nothing(tmp_path, stub_server):
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    for name, pages in PDFS.items():
        make_pdf(tmp_path / "inputs" / f"{name}.pdf", pages, label=name)
    total = sum(PDFS.values())
    transient = [{**rule, "times": 1} for rule in MIX[:7]]
    stub = stub_server(latency_s=0.15, rules=[{**rule, "seed": seed} for rule in transient], timeout_sleep_s=8)
    # Retries enough for a page every transient rule was drawn for (7): the final resume must finish every page.
    config = write_config(tmp_path / "job.yaml", _config(tmp_path / "inputs", stub.base_url, "killmix", retries=len(transient)))
    out = tmp_path / "out"
    run_dir = out / "killmix" / "stub-ocr" / "run-1"

    def done_now() -> int:
        return sum(1 for r in _latest(run_dir).values() if r.status == "done")

    kills = []
    for _ in range(3):
        target = min(done_now() + rng.randint(1, 8), total - 1)
        job = subprocess.Popen(
            _tracr("run", str(config), "--outputs", str(out), *(["--resume"] if kills else [])),
            env=_env(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_for(
                lambda job=job, target=target: done_now() >= target or job.poll() is not None, 180, f"{target} pages done (seed {seed})"
            )
            time.sleep(rng.uniform(0, 0.3))  # between page writes, or in the middle of one
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
        kills.append(done_now())
        # whatever the moment, every metadata file still parses
        for path in run_dir.rglob("*.json"):
            json.loads(path.read_text())

    finished = _run(config, out, "--resume")
    assert finished.returncode == 0, f"seed {seed}\n{finished.stdout}{finished.stderr}"
    latest = _latest(run_dir)
    assert len(latest) == total and all(r.status == "done" for r in latest.values()), f"seed {seed}"
    # no page was done twice: a finished page is never sent again
    for journal in run_dir.glob("*/pages.jsonl"):
        done_lines = [r.page for r in read_page_journal(journal) if r.status == "done"]
        assert len(done_lines) == len(set(done_lines)), f"seed {seed}: {journal.parent.name} pages done twice"
    assert run_meta(run_dir)["status"] == "completed"
    assert_records_agree(run_dir)
    print(f"kill -9 at random (seed {seed}): done after each kill {kills}, then {total}/{total}, none twice")
