"""Writing and rolling up the metadata files of the output tree.

The run owns ``run_metadata.json`` and each PDF task its ``pdf_metadata.json``;
``model_metadata.json`` and ``job_metadata.json`` are rebuilt from the files below
them, so they can never disagree with what is on disk, whichever process wrote it.
"""

from __future__ import annotations

import platform
import socket
import sys
from pathlib import Path
from typing import Any

from tracr import __version__
from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.layout import OutputLayout, RunLocation
from tracr.outputs.rollup import Rollup, busy_seconds
from tracr.outputs.timestamps import utc_now
from tracr.run.resume import pages_left
from tracr.run.state import TERMINAL_STATUSES, RunStatus, check_resume, check_transition

__all__ = ["RunRecorder", "refresh_model_metadata", "refresh_job_metadata", "host_info", "record_abandoned_runs", "settle_unfinished_runs"]


def host_info() -> dict[str, Any]:
    """Where a run executed: enough to tell machines apart when comparing speed."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tracr": __version__,
    }


class RunRecorder:
    """Owns one run's ``run_metadata.json``: status transitions, rollups, errors."""

    def __init__(self, location: RunLocation, base: dict[str, Any]) -> None:
        self.location = location
        existing = read_json(location.run_metadata)
        self.data: dict[str, Any] = existing or {
            "job_id": location.job_id,
            "model_slug": location.model_slug,
            "run": location.run,
            "status": RunStatus.QUEUED.value,
            "status_history": [{"status": RunStatus.QUEUED.value, "at": utc_now()}],
            "created_at": utc_now(),
            "started_at": None,
            "ended_at": None,
            "error": None,
            "rollup": Rollup().to_dict(),
        }
        self.data.pop("pdfs", None)  # a run from before ``documents`` listed every PDF here; each pdf_metadata.json has it
        self.data.update(base)
        self.write()

    @property
    def status(self) -> RunStatus:
        return RunStatus(self.data["status"])

    def write(self) -> None:
        self.data["updated_at"] = utc_now()
        write_json_atomic(self.location.run_metadata, self.data)

    def set_status(self, new: RunStatus, *, error: str | None = None) -> None:
        """Move to ``new`` (validated) and persist; terminal states stamp ``ended_at``."""
        check_transition(self.status, new)
        now = utc_now()
        self.data["status"] = new.value
        self.data["status_history"].append({"status": new.value, "at": now})
        if new == RunStatus.RUNNING and not self.data.get("started_at"):
            self.data["started_at"] = now
        if new in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
            self.data["ended_at"] = now
        if error is not None:
            self.data["error"] = error
        self.write()

    def resume(self) -> RunStatus:
        """Put an unfinished run back to ``queued`` (validated, recorded with what it resumed from)."""
        previous = self.status
        new = check_resume(previous, pages_left=pages_left(self.data))
        now = utc_now()
        self.data["status"] = new.value
        self.data["status_history"].append(
            {"status": new.value, "at": now, "resumed_from": previous.value, "previous_error": self.data.get("error")}
        )
        self.data["resumes"] = int(self.data.get("resumes", 0)) + 1
        self.data["ended_at"] = None
        self.data["error"] = None
        self.write()
        return previous

    def update(self, rollup: Rollup, **extra: Any) -> None:
        self.data["rollup"] = rollup.to_dict()
        self.data.update(extra)
        self.write()


def refresh_model_metadata(layout: OutputLayout, job_id: str, model_slug: str, model: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild ``model_metadata.json`` from the model's run folders."""
    path = layout.model_metadata(job_id, model_slug)
    previous = read_json(path) or {}
    runs = []
    rollups = []
    for number in layout.run_numbers(job_id, model_slug):
        run = read_json(layout.run(job_id, model_slug, number).run_metadata)
        if run is None:
            continue
        rollup = Rollup.from_dict(run.get("rollup"))
        rollups.append(rollup)
        runs.append(
            {
                "run": number,
                "status": run.get("status"),
                "started_at": run.get("started_at"),
                "ended_at": run.get("ended_at"),
                "error": run.get("error"),
                "rollup": rollup.to_dict(),
            }
        )
    payload = {
        "job_id": job_id,
        "model_slug": model_slug,
        "model": model or previous.get("model"),
        "runs": runs,
        "latest_run": runs[-1]["run"] if runs else None,
        "rollup": Rollup.total(rollups).to_dict(),
        "updated_at": utc_now(),
    }
    write_json_atomic(path, payload)
    return payload


def refresh_job_metadata(layout: OutputLayout, job_id: str, job: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild ``job_metadata.json`` from the model metadata below it.

    ``job`` (title, config, source) is merged in when given; otherwise the previous
    values are kept, so a refresh from ``tracr show`` loses nothing.
    """
    path = layout.job_metadata(job_id)
    payload: dict[str, Any] = read_json(path) or {"job_id": job_id, "created_at": utc_now()}
    if job:
        payload.update(job)
    models = []
    rollups = []
    latest_rollups = []
    spans = []
    for slug in layout.model_slugs(job_id):
        meta = read_json(layout.model_metadata(job_id, slug))
        if meta is None:
            continue
        rollup = Rollup.from_dict(meta.get("rollup"))
        rollups.append(rollup)
        spans += [(run.get("started_at"), run.get("ended_at")) for run in meta.get("runs", [])]
        latest = meta["runs"][-1] if meta.get("runs") else None
        if latest:
            latest_rollups.append(Rollup.from_dict(latest.get("rollup")))
        models.append(
            {
                "model_slug": slug,
                "model": (meta.get("model") or {}).get("model"),
                "runs": len(meta.get("runs", [])),
                "latest_run": latest["run"] if latest else None,
                "latest_status": latest["status"] if latest else None,
                "rollup": rollup.to_dict(),
            }
        )
    payload["models"] = models
    # Runs of different models overlap: the job's wall time is when any run was busy.
    total = Rollup.total(rollups)
    total.wall_seconds = busy_seconds(spans)
    payload["rollup"] = total.to_dict()
    latest_total = Rollup.total(latest_rollups)
    latest_total.wall_seconds = max((r.wall_seconds for r in latest_rollups), default=0.0)
    payload["latest_rollup"] = latest_total.to_dict()
    payload["updated_at"] = utc_now()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, payload)
    return payload


def record_abandoned_runs(layout: OutputLayout, job_id: str, runs: list[dict[str, Any]], reason: str) -> list[str]:
    """Mark the unfinished runs of a job whose process died as ``cancelled``; returns ``<model> run-<n>`` of each.

    Finished pages stay as they are, and ``--resume`` continues each run as it
    would after any cancel. Runs already completed, failed or cancelled are left alone.
    """
    return settle_unfinished_runs(layout, job_id, runs, RunStatus.CANCELLED, reason)


def settle_unfinished_runs(layout: OutputLayout, job_id: str, runs: list[dict[str, Any]], status: RunStatus, reason: str) -> list[str]:
    """Record ``status`` (with ``reason``) for each of ``runs`` still in an active status; returns ``<model> run-<n>`` of each.

    Used once the process that ran them is done with them (it ended, or died), so
    no run is left showing ``running`` that nothing runs. Raises ``OSError`` when
    a record cannot be written.
    """
    marked = []
    for entry in runs:
        location = layout.run(job_id, str(entry["model_slug"]), int(entry["run"]))
        if not location.run_metadata.is_file():
            continue
        current = RunStatus((read_json(location.run_metadata) or {}).get("status", RunStatus.QUEUED.value))
        if current in TERMINAL_STATUSES:
            continue
        recorder = RunRecorder(location, {})
        recorder.set_status(status, error=reason)
        refresh_model_metadata(layout, job_id, location.model_slug)
        marked.append(f"{location.model_slug} run-{location.run}")
    if marked:
        refresh_job_metadata(layout, job_id)
    return marked
