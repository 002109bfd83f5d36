"""A disk that fills mid-run (a real 400 KB tmpfs): one clear error, no traceback, and a resume once space is back.

``python -m cli.main run`` of the text-layer baseline against the suite's Prefect
server. Mounting needs root (CI runs as root); elsewhere the test says why it skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from tests.conftest import mounted_tmpfs, write_config
from tests.faults.records import journal_counts

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]
PAGES = 150


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path, "300k")


def _wordy_pdf(path: Path, pages: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_textbox(pymupdf.Rect(40, 40, 560, 800), f"Page {i + 1} " + "lorem ipsum dolor sit amet " * 80, fontsize=8)
    doc.save(path)


def _run(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cli.main", "run", str(config), "--outputs", str(out), "--no-progress", *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_a_full_disk_fails_in_one_line_and_resume_finishes_once_space_is_back(tmp_path: Path, small_disk: Path) -> None:
    _wordy_pdf(tmp_path / "inputs" / "big.pdf", PAGES)
    model = {"model": "pdf-text-layer", "mode": "local", "provider": "pdf-text"}
    config = write_config(tmp_path / "job.yaml", {"job_id": "full", "input_path": str(tmp_path / "inputs"), "models": [model]})
    first = _run(config, small_disk)
    text = first.stdout + first.stderr
    assert first.returncode == 1, text
    assert "Traceback" not in text, text
    assert "No space left on device" in first.stderr.strip().splitlines()[-1], first.stderr  # said last, in one line
    run_dir = small_disk / "full" / "pdf-text-layer" / "run-1"
    before = journal_counts(run_dir)["big"]
    assert 0 < before["done"] < PAGES, before
    written = {p.name: p.stat().st_mtime_ns for p in (run_dir / "big").glob("*.md")}

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    second = _run(config, small_disk, "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    after = journal_counts(run_dir)["big"]
    assert after["done"] == PAGES and after["failed"] == 0, after
    assert not (small_disk / "full" / "pdf-text-layer" / "run-2").exists()  # resumed in place
    assert {name: (run_dir / "big" / name).stat().st_mtime_ns for name in written} == written  # no finished page rewritten
