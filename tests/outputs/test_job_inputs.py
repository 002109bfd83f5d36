"""The job's input list in ``inputs.jsonl``: written whole and atomically, read a line at a time, old trees still read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.inputs import INPUT_KEYS, iter_job_inputs, read_job_inputs, write_job_inputs
from tracr.outputs.layout import OutputLayout
from tracr.run.recorder import refresh_job_metadata

JOB = "inputs-job"


def _row(slug: str, pages: int | None = 2, error: str | None = None) -> dict[str, Any]:
    return {"pdf_slug": slug, "path": f"/data/{slug}.pdf", "page_count": pages, "pages_selected": pages, "error": error}


ROWS = [
    _row("alpha", 3),
    _row("beta-é", 1),  # a non-ASCII slug and path round-trip as they are
    _row("broken", 0, error="cannot open: not a PDF"),
    _row("unknown", None),  # an import without page counts
    _row("locked", 0, error="encrypted"),
]


def test_rows_round_trip_in_order_with_the_list_keys_only(tmp_path):
    layout = OutputLayout(tmp_path)
    extra = {**_row("gamma"), "size_bytes": 10}
    write_job_inputs(layout, JOB, [*ROWS, extra])
    rows = read_job_inputs(layout, JOB)
    assert rows == [*ROWS, _row("gamma")]
    assert all(tuple(row) == INPUT_KEYS for row in rows)
    assert layout.job_inputs(JOB) == tmp_path / JOB / "inputs.jsonl"
    assert len(layout.job_inputs(JOB).read_text(encoding="utf-8").splitlines()) == 6  # one line per PDF


def test_the_summary_counts_pdfs_broken_ones_and_selected_pages(tmp_path):
    summary = write_job_inputs(OutputLayout(tmp_path), JOB, iter(ROWS))  # a generator is enough
    assert summary == {"file": "inputs.jsonl", "pdfs": 5, "broken": 2, "pages_selected": 4}
    assert write_job_inputs(OutputLayout(tmp_path), "empty", []) == {"file": "inputs.jsonl", "pdfs": 0, "broken": 0, "pages_selected": 0}
    assert read_job_inputs(OutputLayout(tmp_path), "empty") == []


def test_a_job_written_before_the_file_is_read_from_its_metadata_list(tmp_path):
    layout = OutputLayout(tmp_path)
    layout.job_dir(JOB).mkdir()
    write_json_atomic(layout.job_metadata(JOB), {"job_id": JOB, "inputs": [*ROWS[:2], "not a row", None]})
    assert read_job_inputs(layout, JOB) == ROWS[:2]


def test_the_file_wins_over_an_old_list_and_a_summary_without_its_file_is_no_rows(tmp_path):
    layout = OutputLayout(tmp_path)
    layout.job_dir(JOB).mkdir()
    write_json_atomic(layout.job_metadata(JOB), {"job_id": JOB, "inputs": ROWS})
    write_job_inputs(layout, JOB, ROWS[:1])
    assert read_job_inputs(layout, JOB) == ROWS[:1]
    layout.job_inputs(JOB).unlink()
    write_json_atomic(layout.job_metadata(JOB), {"job_id": JOB, "inputs": {"file": "inputs.jsonl", "pdfs": 5}})
    assert read_job_inputs(layout, JOB) == []
    assert read_job_inputs(layout, "no-such-job") == []


def test_malformed_lines_are_skipped(tmp_path):
    layout = OutputLayout(tmp_path)
    write_job_inputs(layout, JOB, ROWS[:2])
    path = layout.job_inputs(JOB)
    good = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"not json\n" + good[0] + b"\n" + b"[1, 2]\n" + b'"a string"\n' + good[1] + b'{"pdf_slug": "torn", "pa')
    assert read_job_inputs(layout, JOB) == ROWS[:2]


def test_iterating_reads_lazily(tmp_path):
    layout = OutputLayout(tmp_path)
    write_job_inputs(layout, JOB, ROWS)
    rows = iter_job_inputs(layout, JOB)
    assert next(rows) == ROWS[0]
    layout.job_inputs(JOB).unlink()  # the open file is still read to its end
    assert list(rows) == ROWS[1:]


def test_a_rewrite_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    layout = OutputLayout(tmp_path)
    write_job_inputs(layout, JOB, ROWS)
    summary = write_job_inputs(layout, JOB, ROWS[3:])
    assert summary["pdfs"] == 2
    assert read_job_inputs(layout, JOB) == ROWS[3:]
    assert sorted(p.name for p in layout.job_dir(JOB).iterdir()) == ["inputs.jsonl"]


def test_a_failed_rewrite_keeps_the_old_file_whole(tmp_path):
    layout = OutputLayout(tmp_path)
    write_job_inputs(layout, JOB, ROWS)
    before = layout.job_inputs(JOB).read_bytes()

    def rows() -> Iterator[dict[str, Any]]:
        yield _row("new")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        write_job_inputs(layout, JOB, rows())
    assert layout.job_inputs(JOB).read_bytes() == before
    assert sorted(p.name for p in layout.job_dir(JOB).iterdir()) == ["inputs.jsonl"]


def test_the_summary_replaces_an_old_list_in_job_metadata(tmp_path):
    layout = OutputLayout(tmp_path)
    layout.job_dir(JOB).mkdir()
    write_json_atomic(layout.job_metadata(JOB), {"job_id": JOB, "title": "old", "inputs": ROWS})
    refresh_job_metadata(layout, JOB, {"inputs": write_job_inputs(layout, JOB, ROWS[:2])})
    meta = read_json(layout.job_metadata(JOB))
    assert meta is not None and meta["title"] == "old"
    assert meta["inputs"] == {"file": "inputs.jsonl", "pdfs": 2, "broken": 0, "pages_selected": 4}
    assert read_job_inputs(layout, JOB) == ROWS[:2]
    assert json.dumps(ROWS[0]["path"]) not in layout.job_metadata(JOB).read_text(encoding="utf-8")
