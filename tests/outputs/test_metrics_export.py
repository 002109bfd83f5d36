"""metrics.json, job_metrics.json, ``tracr show`` and ``tracr export`` on a real run.

The config file carries its key inline (``api_key``): the test checks the value
reaches none of metrics, exports, events or the flow-run parameters stored by Prefect.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from tests.conftest import TEST_API_KEY, make_pdf, write_config
from tracr.outputs.files import read_json
from tracr.outputs.metrics import percentiles

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_percentiles_interpolate_between_ranks():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentiles(values) == {"p50": 50.5, "p90": 90.1, "p99": 99.01}
    assert percentiles([3.0]) == {"p50": 3.0, "p90": 3.0, "p99": 3.0}
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None}


async def test_metrics_show_and_export(tmp_path, stub_server, capsys):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterTags

    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    stub = stub_server(latency_s=0.1, ttft_s=0.05, output_tokens=20, rules=[{"fault": "400", "times": -1, "image_width": 1288}])
    make_pdf(tmp_path / "in" / "portrait.pdf", 5)
    make_pdf(tmp_path / "in" / "landscape.pdf", 1, width=842, height=595)
    model = {"model": "stub-ocr", "base_url": stub.base_url, "api_key": TEST_API_KEY, "retries": 0, "timeout_s": 30}
    config = write_config(
        tmp_path / "job.yaml", {"job_id": "mjob", "input_path": str(tmp_path / "in"), "prompt": "OCR", "max_tokens": 64, "models": [model]}
    )
    out = tmp_path / "out"
    assert (await ocr_job_flow(JobRequest(config_path=str(config), outputs=str(out)), return_state=True)).is_completed()

    run_dir = out / "mjob" / "stub-ocr" / "run-1"
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed"
    assert (metrics["pages_done"], metrics["pages_failed"], metrics["pages_total"]) == (5, 1, 6)
    assert metrics["failures_by_class"] == {"bad_request": 1}
    assert metrics["latency_s"]["p50"] >= 0.1 and metrics["latency_s"]["p50"] <= metrics["latency_s"]["p90"] <= metrics["latency_s"]["p99"]
    assert 0.05 <= metrics["ttft_s"]["p50"] < metrics["latency_s"]["p50"]
    assert metrics["output_tokens"] >= 5 * 20 and metrics["input_tokens"] > 0
    assert metrics["pages_per_s"] > 0 and metrics["output_tokens_per_s"] > 0 and metrics["wall_seconds"] > 0
    assert metrics["hardware"]["hostname"] and isinstance(metrics["hardware"]["gpus"], list)
    job_metrics = read_json(out / "mjob" / "job_metrics.json")
    assert job_metrics["models"]["stub-ocr"]["latency_s"] == metrics["latency_s"]
    assert job_metrics["totals"]["pages_done"] == 5 and job_metrics["totals"]["failures_by_class"] == {"bad_request": 1}

    assert main(["show", "mjob", "--outputs", str(out)]) == 0
    shown = capsys.readouterr().out
    header = next(line for line in shown.splitlines() if line.startswith("model"))
    for column in ("status", "done", "failed", "pages/s", "p50 s", "p90 s", "ttft p50 s", "tokens in/out", "errors"):
        assert column in header
    row = next(line for line in shown.splitlines() if line.startswith("stub-ocr"))
    assert "completed" in row and "bad_request:1" in row and f"{metrics['latency_s']['p50']:.3f}" in row

    csv_path = tmp_path / "pages.csv"
    assert main(["export", "mjob", "--format", "csv", "--output", str(csv_path), "--outputs", str(out)]) == 0
    assert main(["export", "mjob", "--format", "parquet", "--outputs", str(out)]) == 0
    parquet_path = out / "mjob" / "pages.parquet"
    for path, reader in ((csv_path, "read_csv_auto"), (parquet_path, "read_parquet")):
        rows = duckdb.sql(f"SELECT * FROM {reader}('{path}') ORDER BY pdf_slug, page").fetchall()
        columns = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM {reader}('{path}')").fetchall()]
        assert columns[:6] == ["job_id", "model_slug", "run", "pdf_slug", "page", "status"] and "markdown_path" in columns
        assert len(rows) == 6
        record = dict(zip(columns, rows[0], strict=False))
        assert record["pdf_slug"] == "landscape" and record["status"] == "failed" and record["error_class"] == "bad_request"
        assert record["markdown_path"] is None
        done = [dict(zip(columns, r, strict=False)) for r in rows[1:]]
        assert all(Path(r["markdown_path"]).is_file() and r["latency_s"] > 0 for r in done)
        assert all(r["truncated"] is False and r["capped_at"] is None for r in done)  # the truncation marks travel too
        assert TEST_API_KEY not in path.read_bytes().decode("latin-1")
    assert main(["export", "nope", "--outputs", str(out)]) == 2

    for path in out.rglob("*"):
        if path.is_file():
            assert TEST_API_KEY not in path.read_bytes().decode("latin-1"), path
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["tracr-job:mjob"])))
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs])))
    assert {r.flow_id for r in runs} and len(runs) == 2  # the job flow run and its model run, both tagged
    ocr_tasks = [t for t in task_runs if " · " in t.name]  # "<model> · <pdf>", or a batch of small PDFs
    assert [t.name for t in ocr_tasks] == ["stub-ocr · landscape … portrait (2 PDFs)"], [t.name for t in task_runs]
    assert all(not t.tags for t in ocr_tasks), "a tagged task run takes a tag concurrency slot: two server writes each"
    for run in runs:
        assert TEST_API_KEY not in json.dumps(run.parameters, default=str)
