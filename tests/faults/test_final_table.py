"""After ``tracr run`` returns no run of it is left ``running``: what settles one that could not record its end."""

from __future__ import annotations

from tracr.outputs.files import read_json
from tracr.outputs.layout import OutputLayout
from tracr.outputs.report import run_rows
from tracr.run.recorder import RunRecorder, refresh_model_metadata, settle_unfinished_runs
from tracr.run.state import RunStatus


def _run_left_running(layout: OutputLayout, job_id: str, slug: str) -> RunRecorder:
    location = layout.allocate_run(job_id, slug)
    recorder = RunRecorder(location, {"model": {"model": slug}})
    recorder.set_status(RunStatus.RUNNING)
    refresh_model_metadata(layout, job_id, slug, {"model": slug})  # as a run's flow does when it starts
    return recorder


def test_an_unfinished_run_is_settled_with_its_true_ending_and_finished_ones_are_left_alone(tmp_path):
    layout = OutputLayout(tmp_path)
    crashed = _run_left_running(layout, "job", "crashed-model")
    done = _run_left_running(layout, "job", "done-model")
    done.set_status(RunStatus.COMPLETED)
    refresh_model_metadata(layout, "job", "done-model")  # as its flow does when it ends
    runs = [{"model_slug": "crashed-model", "run": 1}, {"model_slug": "done-model", "run": 1}]

    marked = settle_unfinished_runs(layout, "job", runs, RunStatus.FAILED, "the job ended Crashed before this run recorded its end")

    assert marked == ["crashed-model run-1"]
    meta = read_json(crashed.location.run_metadata)
    assert meta["status"] == "failed" and meta["ended_at"] and "Crashed" in meta["error"]
    assert read_json(done.location.run_metadata)["status"] == "completed"
    assert {r["model"]: r["status"] for r in run_rows(layout, "job")} == {"crashed-model": "failed", "done-model": "completed"}
    assert {m["model_slug"]: m["latest_status"] for m in read_json(layout.job_metadata("job"))["models"]} == {
        "crashed-model": "failed",
        "done-model": "completed",
    }
    assert settle_unfinished_runs(layout, "job", runs, RunStatus.CANCELLED, "again") == []  # settled once
