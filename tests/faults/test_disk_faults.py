"""Disks that fail mid-run (a real small tmpfs that fills, or is remounted read-only): one clear error, no traceback, resume once the disk is back.

``python -m cli.main run`` against the suite's Prefect server. Mounting needs
root (CI runs as root); elsewhere the tests say why they skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from tests.conftest import TEST_API_KEY, make_pdf, mounted_tmpfs, write_config
from tests.faults.records import journal_counts, run_meta

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
PAGES = 150
KEY_ENV = "TRACR_DISK_TEST_KEY"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path, "300k")


def _wordy_pdf(path: Path, pages: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_textbox(pymupdf.Rect(40, 40, 560, 800), f"Page {i + 1} " + "lorem ipsum dolor sit amet " * 80, fontsize=8)
    doc.save(path)


def _command(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(out), "--no-progress", *extra]


def _run(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(config, out, *extra), cwd=REPO, capture_output=True, text=True, timeout=300, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, KEY_ENV: TEST_API_KEY}


def _remount(mount: Path, options: str) -> None:
    """``mount -o remount,<options>``; a read-only remount is refused while a file is open for writing, so it is retried."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.01)


def test_a_full_disk_fails_in_one_line_and_resume_finishes_once_space_is_back(tmp_path: Path, small_disk: Path) -> None:
    _wordy_pdf(tmp_path / "inputs" / "big.pdf", PAGES)
    model = {"model": "pdf-text-layer", "mode": "local", "provider": "pdf-text"}
    config = write_config(tmp_path / "job.yaml", {"job_id": "full", "input_path": str(tmp_path / "inputs"), "models": [model]})
    first = _run(config, small_disk)
    text = first.stdout + first.stderr
    assert first.returncode == 1, text
    assert "Traceback" not in text and "NoneType: None" not in text, text
    assert "No space left on device" in first.stderr.strip().splitlines()[-1], first.stderr  # said last, in one line
    run_dir = small_disk / "full" / "pdf-text-layer" / "run-1"
    before = journal_counts(run_dir)["big"]
    assert 0 < before["done"] < PAGES, before
    written = {p.name: p.stat().st_mtime_ns for p in (run_dir / "big").glob("*.md")}

    _remount(small_disk, "size=20m")
    second = _run(config, small_disk, "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    after = journal_counts(run_dir)["big"]
    assert after["done"] == PAGES and after["failed"] == 0, after
    assert not (small_disk / "full" / "pdf-text-layer" / "run-2").exists()  # resumed in place
    assert {name: (run_dir / "big" / name).stat().st_mtime_ns for name in written} == written  # no finished page rewritten


def test_outputs_made_read_only_mid_run_fail_in_one_line_and_resume_finishes(tmp_path: Path, small_disk: Path, stub_server) -> None:
    pages = 40
    stub = stub_server(latency_s=0.3)
    make_pdf(tmp_path / "inputs" / "doc.pdf", pages)
    model = {"model": "stub-ocr", "base_url": stub.base_url, "api_key_env": KEY_ENV, "retries": 0, "max_concurrent_requests": 2}
    config = write_config(tmp_path / "job.yaml", {"job_id": "ro", "input_path": str(tmp_path / "inputs"), "models": [model]})
    run_dir = small_disk / "ro" / "stub-ocr" / "run-1"
    job = subprocess.Popen(_command(config, small_disk), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "doc" / "pages.jsonl").exists() or journal_counts(run_dir)["doc"]["done"] < 3:
            assert time.monotonic() < deadline and job.poll() is None, "the job never got going"
            time.sleep(0.1)
        _remount(small_disk, "ro")
        stdout, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    text = stdout + stderr
    assert job.returncode == 1, text
    assert "Traceback" not in text, text
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("job failed:") and "Read-only file system" in last, stderr
    assert " running " not in stdout, stdout  # the final table says how each run ended
    before = journal_counts(run_dir)["doc"]
    assert 3 <= before["done"] < pages, before
    written = {p.name: p.stat().st_mtime_ns for p in (run_dir / "doc").glob("*.md")}
    print(f"read-only mid-run: {before['done']} of {pages} done, then {last!r}")

    _remount(small_disk, "rw")
    second = _run(config, small_disk, "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    after = journal_counts(run_dir)["doc"]
    assert after == {"done": pages, "failed": 0}, after
    assert run_meta(run_dir)["status"] == "completed"
    assert {name: (run_dir / "doc" / name).stat().st_mtime_ns for name in written} == written  # no finished page rewritten
