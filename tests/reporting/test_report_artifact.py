"""``tracr score`` on the real Prefect server attaches the job's report as a markdown artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cli.main import main
from tasks.scoring.report import report_key
from tracr.testing.collections_job import write_two_collection_job


def _artifacts(key: str) -> list[object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> list[object]:
        async with get_client() as client:
            return list(await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))))

    return asyncio.run(read())


def test_scored_job_gets_the_report_as_an_artifact(tmp_path: Path, prefect_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_two_collection_job(tmp_path / "out", tmp_path / "in", "Art_Job.1", votes_per_collection=20)
    assert main(["score", "Art_Job.1", "--outputs", str(tmp_path / "out"), "--tests", str(paths["tests"])]) == 0, capsys.readouterr()
    key = report_key("Art_Job.1")
    assert key == "art-job-1-report"
    found = _artifacts(key)
    assert len(found) == 1
    body = str(getattr(found[0], "data", ""))
    assert "## Leaderboards per collection" in body and "### Collection: invoices (6 pages)" in body
    assert "## Winners by collection" in body and "_(page image in the HTML report)_" in body
