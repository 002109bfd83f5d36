"""The run state machine and its record in run_metadata.json."""

from __future__ import annotations

import pytest

from tracr.outputs.files import read_json
from tracr.outputs.layout import RunLocation
from tracr.run.recorder import RunRecorder
from tracr.run.state import InvalidTransition, RunStatus, check_resume, check_transition

S = RunStatus


@pytest.mark.parametrize(
    "path",
    [
        [S.QUEUED, S.WAITING_RESOURCES, S.STARTING, S.RUNNING, S.COMPLETED],
        [S.QUEUED, S.STARTING, S.RUNNING, S.FAILED],
        [S.QUEUED, S.RUNNING, S.CANCELLED],
        [S.QUEUED, S.STARTING, S.FAILED],
        [S.QUEUED, S.WAITING_RESOURCES, S.CANCELLED],
    ],
)
def test_valid_paths(path):
    for current, new in zip(path, path[1:], strict=False):
        assert check_transition(current, new) == new


@pytest.mark.parametrize(
    "current,new",
    [
        (S.COMPLETED, S.RUNNING),
        (S.FAILED, S.RUNNING),
        (S.CANCELLED, S.COMPLETED),
        (S.RUNNING, S.STARTING),
        (S.STARTING, S.COMPLETED),
        (S.QUEUED, S.COMPLETED),
        (S.RUNNING, S.QUEUED),
    ],
)
def test_invalid_transitions_are_refused_with_what_is_allowed(current, new):
    with pytest.raises(InvalidTransition, match=f"cannot go from {current.value} to {new.value} \\(allowed: "):
        check_transition(current, new)


def test_resume_goes_back_to_queued_unless_every_page_is_done():
    for status in (S.FAILED, S.CANCELLED, S.RUNNING, S.STARTING, S.QUEUED, S.WAITING_RESOURCES):
        assert check_resume(status) == S.QUEUED
    assert check_resume(S.COMPLETED, pages_left=True) == S.QUEUED  # completed with failed or missing pages
    with pytest.raises(InvalidTransition, match="every page is done, nothing to resume"):
        check_resume(S.COMPLETED)


def test_a_run_has_pages_left_when_a_page_failed_or_was_never_written():
    from tracr.run.resume import pages_left

    assert pages_left({"rollup": {"pages_total": 10, "pages_done": 9, "pages_failed": 1}})
    assert pages_left({"rollup": {"pages_total": 10, "pages_done": 8, "pages_failed": 0}})
    assert not pages_left({"rollup": {"pages_total": 10, "pages_done": 10, "pages_failed": 0}})
    assert not pages_left({})


def test_recorder_keeps_history_and_refuses_bad_moves(tmp_path):
    location = RunLocation(tmp_path, "job", "model", 1)
    location.run_dir.mkdir(parents=True)
    recorder = RunRecorder(location, {"config_digest": "abc"})
    recorder.set_status(S.STARTING)
    recorder.set_status(S.RUNNING)
    recorder.set_status(S.CANCELLED, error="cancelled")
    with pytest.raises(InvalidTransition):
        recorder.set_status(S.RUNNING)
    assert read_json(location.run_metadata)["status"] == "cancelled"  # a refused move changes nothing on disk

    resumed = RunRecorder(location, {})  # a later process picks the record up
    assert resumed.resume() == S.CANCELLED
    resumed.set_status(S.STARTING)
    resumed.set_status(S.RUNNING)
    resumed.set_status(S.COMPLETED)
    data = read_json(location.run_metadata)
    assert [h["status"] for h in data["status_history"]] == [
        "queued",
        "starting",
        "running",
        "cancelled",
        "queued",
        "starting",
        "running",
        "completed",
    ]
    assert data["status_history"][4]["resumed_from"] == "cancelled" and data["status_history"][4]["previous_error"] == "cancelled"
    assert data["resumes"] == 1 and data["error"] is None and data["config_digest"] == "abc" and data["ended_at"]
    with pytest.raises(InvalidTransition):
        resumed.resume()
