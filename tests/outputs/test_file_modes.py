"""Files of the output tree are created like ``open()`` creates them: mode 0o666 less the umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_pdf
from tracr.outputs.files import append_line, write_json_atomic, write_text_atomic
from tracr.review.votes import PageRef, append_vote, new_vote, votes_path
from tracr.testing.review_tree import ModelOutputs, write_review_job


@pytest.fixture
def umask() -> Iterator[object]:
    previous = os.umask(0o022)

    def set_to(value: int) -> None:
        os.umask(value)

    try:
        yield set_to
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_writes_and_appends_honour_the_umask(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    page, meta, journal = tmp_path / "1.md", tmp_path / "run_metadata.json", tmp_path / "pages.jsonl"
    write_text_atomic(page, "# page")
    write_json_atomic(meta, {"status": "completed"})
    append_line(journal, "{}")
    expected = 0o666 & ~mask
    assert (mode(page), mode(meta), mode(journal)) == (expected, expected, expected)
    write_text_atomic(page, "# page, rewritten")  # a replaced file gets the mode again, not 0o600
    assert mode(page) == expected and page.read_text() == "# page, rewritten"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder others can traverse (pytest's own temp root is 0o700)."""
    path = Path(tempfile.mkdtemp(prefix="tracr-shared-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_a_whole_job_tree_is_readable_by_another_user_under_umask_022(shared_dir: Path, umask) -> None:
    umask(0o022)
    tmp_path = shared_dir
    root = tmp_path / "outputs"
    pdf = make_pdf(tmp_path / "inputs" / "doc.pdf", 1, label="doc")
    write_review_job(
        root, "shared", {"doc": pdf}, [ModelOutputs("model-a", {("doc", 1): "text a"}), ModelOutputs("model-b", {("doc", 1): "text b"})]
    )
    ref = dict(run=1, pdf_slug="doc", page=1)
    append_vote(root, new_vote("shared", PageRef(model_slug="model-a", **ref), PageRef(model_slug="model-b", **ref), "left", "ann"))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert votes_path(root, "shared") in files and any(p.name == "run_metadata.json" for p in files)
    assert {p.relative_to(root).as_posix(): oct(mode(p)) for p in files if mode(p) != 0o644} == {}
    runner = shutil.which("setpriv")
    if os.geteuid() != 0 or runner is None:
        return
    # Read every file as nobody, a reviewer that is not the user who ran the job.
    result = subprocess.run(
        [runner, "--reuid=65534", "--regid=65534", "--clear-groups", "cat", *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "text a" in result.stdout and '"outcome":"left"' in result.stdout.replace(" ", "")
