"""The batch journal and result lines: what makes a killed batch run resumable without paying twice."""

from __future__ import annotations

import json

from tasks.ocr.batch_engine import BatchJournal, BatchPageEngine, batch_custom_id
from tracr.adapters.registry import GENERIC
from tracr.config.render import RenderSettings
from tracr.errors import ErrorClass


def test_custom_ids_are_stable_and_distinct():
    assert batch_custom_id("/in/a.pdf", 3) == batch_custom_id("/in/a.pdf", 3)
    assert len({batch_custom_id("/in/a.pdf", 3), batch_custom_id("/in/b.pdf", 3), batch_custom_id("/in/a.pdf", 4)}) == 3


def test_the_journal_remembers_open_batches_across_sessions(tmp_path):
    first = BatchJournal(tmp_path)
    first.submitted("batch_1", "file-1", ["a-p1", "a-p2"])
    first.submitted("batch_2", "file-2", ["a-p3"])
    first.ended("batch_2", "collected", "completed", {"total": 1, "completed": 1, "failed": 0})
    again = BatchJournal(tmp_path)  # a new session reads what the killed one wrote
    assert again.open == {"batch_1": ["a-p1", "a-p2"]}
    assert again.batch_of("a-p2") == "batch_1" and again.batch_of("a-p3") is None
    again.ended("batch_1", "cancelled", "cancelling", None)
    assert BatchJournal(tmp_path).open == {}
    events = [json.loads(line)["event"] for line in (tmp_path / "batches.jsonl").read_text().splitlines()]
    assert events == ["submitted", "submitted", "collected", "cancelled"]


def _engine(tmp_path) -> BatchPageEngine:
    return BatchPageEngine(
        pool=None,  # type: ignore[arg-type]  (reading result lines needs neither pool nor client)
        client=None,  # type: ignore[arg-type]
        model="m",
        render=RenderSettings(),
        adapter=GENERIC,
        journal=BatchJournal(tmp_path),
        max_pages=10,
        poll_s=1,
        retries=1,
    )


def test_result_lines_become_page_results(tmp_path):
    engine = _engine(tmp_path)
    ok = engine._result(
        {
            "custom_id": "x",
            "response": {
                "status_code": 200,
                "body": {
                    "choices": [{"message": {"content": "text"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7},
                },
            },
        }
    )
    assert ok.ok and ok.text == "text" and (ok.input_tokens, ok.output_tokens, ok.finish_reason) == (5, 7, "stop")
    failed = engine._result(
        {"custom_id": "x", "response": {"status_code": 500, "body": {}}, "error": {"code": "server_error", "message": "boom"}}
    )
    assert not failed.ok and failed.error_class is ErrorClass.SERVER_ERROR and "boom" in failed.error
    expired = engine._result(
        {"custom_id": "x", "response": {"status_code": 400, "body": {}}, "error": {"code": "batch_expired", "message": "late"}}
    )
    assert expired.error_class is ErrorClass.BAD_REQUEST and "batch_expired" in expired.error
