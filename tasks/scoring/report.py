"""The shared report of a scored job as a Prefect markdown artifact (docs/report.md).

Built from the output tree after ``scores/`` is written: the same sections as
``tracr report --markdown``, the page images left out (an artifact is text; the HTML
report carries them). A report that cannot be built is a warning: the scores stand.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tracr.reporting.content import build_content
from tracr.reporting.job_data import load_job_data
from tracr.reporting.markdown import render_markdown

__all__ = ["report_key", "report_markdown", "report_artifact_task"]


def report_key(job_id: str) -> str:
    """The artifact's key: Prefect allows lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]", "-", f"{job_id.lower()}-report")


def report_markdown(outputs: str, job_id: str, *, rounds: int = 1000, seed: int = 0) -> str:
    """The job's report as Markdown without images."""
    data = load_job_data(Path(outputs), job_id)
    return render_markdown(build_content(Path(outputs), data, rounds=rounds, seed=seed, pages=2))


@task(name="report-artifact", cache_policy=NO_CACHE)
def report_artifact_task(outputs: str, job_id: str, rounds: int = 1000, seed: int = 0) -> str | None:
    """Publish the report; returns the artifact's key, or None (with a warning) when it could not be built."""
    try:
        text = report_markdown(outputs, job_id, rounds=rounds, seed=seed)
    except Exception as exc:  # the scores are written; a report failure must not fail the scoring
        get_run_logger().warning("no report artifact for job %s: %s", job_id, exc)
        return None
    key = report_key(job_id)
    create_markdown_artifact(text, key=key, description=f"tracr report of job {job_id} (tracr report {job_id} --html FILE for images)")
    return key
