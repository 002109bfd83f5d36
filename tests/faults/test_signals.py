"""SIGTERM to ``tracr run`` (alone, and to its whole process group): a cancel, said once, recorded alike.

Real processes: ``python -m cli.main run`` against the suite's Prefect server
and the loopback stub. Before the fix SIGTERM printed Prefect's
``TerminationSignal`` traceback and left the flow runs Crashed while tracr
recorded ``cancelled``; the whole group took minutes to exit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tests.faults.records import journal_counts, run_meta, text_under

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "TRACR_SIGNAL_TEST_KEY"
PAGES = 40
#: A liveness bound, not a speed target: SIGTERM took 303 s before.
EXIT_WITHIN_S = 30


def _start(tmp_path: Path, stub, job_id: str, **popen: Any) -> tuple[Path, Path, Path, subprocess.Popen[str]]:
    """A `tracr run` of two PDFs (PAGES pages at 0.3 s, two at a time); returns once three pages are done."""
    make_pdf(tmp_path / "inputs" / "doc.pdf", PAGES // 2)
    make_pdf(tmp_path / "inputs" / "more.pdf", PAGES // 2)
    model = {"model": "stub-ocr", "base_url": stub.base_url, "api_key_env": KEY_ENV, "retries": 0, "max_concurrent_requests": 2}
    config = write_config(tmp_path / "job.yaml", {"job_id": job_id, "input_path": str(tmp_path / "inputs"), "models": [model]})
    out = tmp_path / "out"
    run_dir = out / job_id / "stub-ocr" / "run-1"
    proc = _spawn(config, out, **popen)
    deadline = time.monotonic() + 180
    while sum(c["done"] for c in journal_counts(run_dir).values()) < 3:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the job did not get going: {proc.communicate()}")
        time.sleep(0.2)
    return config, out, run_dir, proc


def _spawn(config: Path, out: Path, **popen: Any) -> subprocess.Popen[str]:
    """``tracr run CONFIG`` as a real process, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(out), "--no-progress"],
        env={**os.environ, KEY_ENV: TEST_API_KEY},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _stop(proc: subprocess.Popen[str], send: Any) -> tuple[float, str, str]:
    """Send the signal; returns (seconds to exit, stdout, stderr)."""
    sent = time.monotonic()
    send()
    try:
        stdout, stderr = proc.communicate(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if proc.pid == os.getpgid(proc.pid) else proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(f"tracr run did not exit within {EXIT_WITHIN_S} s of SIGTERM\n{stderr[-4000:]}") from None
    return time.monotonic() - sent, stdout, stderr


def _flow_run_states(job_id: str) -> list[tuple[str, str]]:
    """(name, state type) of every flow run of the job, the job's own and its model runs'."""

    async def read() -> list[tuple[str, str]]:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"tracr-job:{job_id}"])))
        return [(r.name, r.state.type.value if r.state else "?") for r in runs]

    return asyncio.run(read())


def _check_records(run_dir: Path) -> dict[str, int]:
    """Records agree with the journals after a stop; returns the journal's counts."""
    meta = run_meta(run_dir)
    assert meta["status"] == "cancelled", meta["status"]
    counts = journal_counts(run_dir)
    done = sum(c["done"] for c in counts.values())
    failed = sum(c["failed"] for c in counts.values())
    assert (meta["rollup"]["pages_done"], meta["rollup"]["pages_failed"]) == (done, failed)
    assert failed == 0, counts  # nothing was failed by the stop itself (no client-closed, no broken render pool)
    assert done == len(list(run_dir.glob("*/*.md")))
    assert 3 <= done < PAGES
    return {"done": done, "failed": failed}


def _resume(config: Path, out: Path, run_dir: Path, stub, done_before: dict[Path, int]) -> int:
    """``--resume`` finishes every page and rewrites none; returns the pages it sent."""
    requests_before = stub.stats()["total_requests"]
    resumed = subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(out), "--resume", "--no-progress"],
        env={**os.environ, KEY_ENV: TEST_API_KEY},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    meta = run_meta(run_dir)
    assert meta["status"] == "completed" and meta["rollup"]["pages_done"] == PAGES and meta["rollup"]["pages_failed"] == 0
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before, "a finished page was rewritten"
    sent = stub.stats()["total_requests"] - requests_before
    assert sent == PAGES - len(done_before)
    return sent


def _stderr_lines(stderr: str) -> list[str]:
    """stderr without the line that says where to watch the job."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("watch this job:", "flow run "))]


def _table_statuses(stdout: str) -> list[str]:
    """The status column of the final table ``tracr run`` printed."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model") and "status" in line)
    column = lines[header].index("status")
    rows = []
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        rows.append(line[column:].split()[0])
    return rows


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_cancels_the_job_in_one_line_and_resume_finishes_it(tmp_path, stub_server, sig, code, word):
    stub = stub_server(latency_s=0.3)
    job_id = f"signal-{sig.name.lower()}"
    config, out, run_dir, proc = _start(tmp_path, stub, job_id)
    seconds, stdout, stderr = _stop(proc, lambda: proc.send_signal(sig))

    assert proc.returncode == code, stdout + stderr
    lines = _stderr_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{word}: run cancelled"), stderr
    assert "--resume" in lines[0]
    assert "Traceback" not in stdout + stderr and "TerminationSignal" not in stdout + stderr
    assert _table_statuses(stdout) == ["cancelled"], stdout  # never "running"
    counts = _check_records(run_dir)
    states = _flow_run_states(job_id)
    assert states and all(state == "CANCELLED" for _, state in states), states
    assert "client has been closed" not in text_under(out)

    done_before = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/*.md")}
    sent = _resume(config, out, run_dir, stub, done_before)
    print(f"{sig.name}: exit {proc.returncode} after {seconds:.1f} s; {counts['done']} done, 0 failed; resume sent {sent}, 0 rewritten")


def test_sigterm_to_the_process_group_exits_with_records_intact(tmp_path, stub_server):
    stub = stub_server(latency_s=0.3)
    config, out, run_dir, proc = _start(tmp_path, stub, "groupterm", start_new_session=True)
    seconds, stdout, stderr = _stop(proc, lambda: os.killpg(proc.pid, signal.SIGTERM))

    assert proc.returncode == 143, stdout + stderr
    assert "Traceback" not in stdout + stderr, stderr[-4000:]
    assert "All connection attempts failed" not in stdout + stderr
    assert len(_stderr_lines(stderr)) == 1, stderr
    assert _table_statuses(stdout) == ["cancelled"], stdout
    counts = _check_records(run_dir)
    states = _flow_run_states("groupterm")
    assert states and all(state == "CANCELLED" for _, state in states), states
    done_before = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/*.md")}
    sent = _resume(config, out, run_dir, stub, done_before)
    print(f"group SIGTERM: exit after {seconds:.1f} s; {counts['done']} done, 0 failed; resume sent {sent}, 0 rewritten")


def _mapped(pid: int, library: str) -> bool:
    """Whether the process has mapped a shared library (how far its imports have got)."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_sigterm_before_the_job_flow_starts_exits_in_one_line_and_leaves_nothing(tmp_path, stub_server):
    stub = stub_server(latency_s=0.01)
    make_pdf(tmp_path / "inputs" / "doc.pdf", 2)
    model = {"model": "stub-ocr", "base_url": stub.base_url, "api_key_env": KEY_ENV, "retries": 0}
    config = write_config(tmp_path / "job.yaml", {"job_id": "early-term", "input_path": str(tmp_path / "inputs"), "models": [model]})
    out = tmp_path / "out"
    proc = _spawn(config, out)
    deadline = time.monotonic() + 60
    while not _mapped(proc.pid, "_pendulum"):  # Prefect is being imported: the job's flow has not started
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    seconds, stdout, stderr = _stop(proc, lambda: proc.send_signal(signal.SIGTERM))

    assert proc.returncode == 143, stdout + stderr
    assert _stderr_lines(stderr) == ["terminated: finished pages are kept; `tracr run CONFIG --resume` continues"], stderr
    assert "Traceback" not in stdout + stderr
    assert stub.stats()["total_requests"] == 0 and not (out / "early-term").exists()
    assert _flow_run_states("early-term") == []  # no flow run left Running (or made at all)
    print(f"SIGTERM during start-up: exit after {seconds:.2f} s")
