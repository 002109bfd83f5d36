"""The page journal when the disk fills: no torn line, so records appended after space is freed are read back.

The full disk is a real, tiny tmpfs (root can mount one, as CI runs); the torn
tail a power loss would leave is written by hand.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import mounted_tmpfs
from tracr.outputs.journal import PageRecord, append_record, latest_entries


def _record(page: int, status: str = "done") -> PageRecord:
    return PageRecord(page=page, status=status, attempts=1, latency_s=0.1, chars=10)


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    journal = tmp_path / "pages.jsonl"
    append_record(journal, _record(1))
    with open(journal, "ab") as handle:
        handle.write(b'{"page": 2, "status": "do')  # what a power loss mid-write leaves
    append_record(journal, _record(3))
    assert sorted(latest_entries(journal)) == [1, 3]  # the torn record is skipped, the next one is whole


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path, "64k")


def test_a_write_cut_short_by_a_full_disk_is_taken_back(tiny_disk: Path) -> None:
    journal = tiny_disk / "pages.jsonl"
    append_record(journal, _record(1))
    filler = tiny_disk / "filler"
    with open(filler, "wb", buffering=0) as handle:  # fill the disk to within a few bytes
        try:
            while True:
                handle.write(b"x" * 512)
        except OSError:
            pass
    big = PageRecord(page=2, status="failed", attempts=1, latency_s=0.1, chars=0, error="x" * 4000, error_class="write")
    with pytest.raises(OSError) as raised:
        for _ in range(50):  # until one write no longer fits: it is cut short or refused, never left torn
            append_record(journal, big)
    assert raised.value.errno == errno.ENOSPC
    assert journal.read_bytes().endswith(b"\n")
    os.unlink(filler)  # space is back
    append_record(journal, _record(3))
    entries = latest_entries(journal)
    assert entries[1]["status"] == "done" and entries[3]["status"] == "done"
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in journal.read_bytes().splitlines())
