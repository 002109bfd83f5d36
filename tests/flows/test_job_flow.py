"""The job flow end to end against a real Prefect server and a real stub model server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY, write_config
from tracr.outputs.files import read_json, write_json_atomic
from tracr.outputs.inputs import read_job_inputs
from tracr.outputs.journal import read_page_journal
from tracr.outputs.layout import OutputLayout

pytestmark = pytest.mark.usefixtures("prefect_server")

KEY_ENV = "TRACR_TEST_STUB_KEY"


def _config(inputs: Any, base_url: str, **model: Any) -> dict[str, Any]:
    spec = {
        "model": "stub-ocr",
        "mode": "api",
        "provider": "custom",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "max_concurrent_requests": 8,
        "timeout_s": 10,
        "retries": 3,
        "retry_backoff_s": 0.01,
        "retry_backoff_max_s": 0.05,
    }
    spec.update(model)
    return {
        "job_id": "flowtest",
        "title": "flow test",
        "input_path": inputs,
        "prompt": "OCR this page.",
        "max_tokens": 256,
        "models": [spec],
    }


async def _run(config_path: Path, outputs: Path, **kwargs: Any):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    return await ocr_job_flow(JobRequest(config_path=str(config_path), outputs=str(outputs), **kwargs), return_state=True)


async def test_job_writes_layout_metadata_and_pages(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.02)
    pdf_factory("alpha.pdf", 3)
    pdf_factory("beta.pdf", 2)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url))
    outputs = tmp_path / "out"

    state = await _run(config, outputs)
    assert state.is_completed(), state.message

    layout = OutputLayout(outputs)
    run_dir = outputs / "flowtest" / "stub-ocr" / "run-1"
    pages = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.md")}
    assert pages == {"alpha/1.md", "alpha/2.md", "alpha/3.md", "beta/1.md", "beta/2.md"}
    texts = {(run_dir / p).read_text() for p in pages}
    assert len(texts) == 5 and all(t.startswith("stub page sha256=") for t in texts)

    job = read_json(layout.job_metadata("flowtest"))
    assert job["title"] == "flow test"
    assert job["rollup"]["pages_done"] == 5 and job["rollup"]["pages_failed"] == 0
    assert job["models"][0]["model_slug"] == "stub-ocr" and job["models"][0]["latest_status"] == "completed"
    assert "api_key" not in job["config"]["models"][0]
    assert job["inputs"] == {"file": "inputs.jsonl", "pdfs": 2, "broken": 0, "pages_selected": 5}
    assert read_job_inputs(layout, "flowtest") == [
        {"pdf_slug": slug, "path": str(tmp_path / "inputs" / f"{slug}.pdf"), "page_count": n, "pages_selected": n, "error": None}
        for slug, n in (("alpha", 3), ("beta", 2))
    ]

    model = read_json(layout.model_metadata("flowtest", "stub-ocr"))
    assert [r["run"] for r in model["runs"]] == [1]

    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "completed"
    assert [h["status"] for h in run["status_history"]] == ["queued", "starting", "running", "completed"]
    assert run["rollup"]["pages_done"] == 5 and run["rollup"]["output_tokens"] > 0
    assert run["rollup"]["pages_per_s"] > 0
    assert run["documents"] == {"total": 2, "by_status": {"completed": 2}, "not_completed": [], "not_completed_unlisted": 0}

    pdf = read_json(run_dir / "alpha" / "pdf_metadata.json")
    assert pdf["status"] == "completed" and pdf["page_count"] == 3
    assert [p["page"] for p in pdf["pages"]] == [1, 2, 3]
    first = pdf["pages"][0]
    assert first["status"] == "done" and first["attempts"] == 1
    assert first["latency_s"] >= 0.02 and first["ttft_s"] is not None and first["ttft_s"] <= first["latency_s"]
    assert first["input_tokens"] > 0 and first["output_tokens"] > 0 and first["finish_reason"] == "stop"
    assert first["chars"] == len((run_dir / "alpha" / "1.md").read_text())
    # no temp files left behind by atomic writes
    assert not [p for p in outputs.rglob("*.tmp")]


async def test_reusing_job_id_appends_a_run(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server()
    pdf_factory("one.pdf", 1)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url))
    outputs = tmp_path / "out"
    for _ in range(2):
        assert (await _run(config, outputs)).is_completed()
    layout = OutputLayout(outputs)
    assert layout.run_numbers("flowtest", "stub-ocr") == [1, 2]
    model = read_json(layout.model_metadata("flowtest", "stub-ocr"))
    assert [r["run"] for r in model["runs"]] == [1, 2] and model["rollup"]["pages_done"] == 2
    # --job-id override goes to a separate job folder
    assert (await _run(config, outputs, job_id="other-job")).is_completed()
    assert layout.job_ids() == ["flowtest", "other-job"]


async def test_transient_faults_are_retried(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    rules = [
        {"fault": "429", "times": 1, "retry_after_s": 0},
        {"fault": "500", "times": 1},
        {"fault": "drop", "times": 1},
        {"fault": "malformed", "times": 1},
    ]
    stub = stub_server(rules=rules)
    pdf_factory("retry.pdf", 3)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, retries=5))
    state = await _run(config, tmp_path / "out")
    assert state.is_completed(), state.message
    pdf = read_json(tmp_path / "out/flowtest/stub-ocr/run-1/retry/pdf_metadata.json")
    assert [p["status"] for p in pdf["pages"]] == ["done"] * 3
    assert [p["attempts"] for p in pdf["pages"]] == [5, 5, 5]
    stats = stub.stats()
    assert stats["total_requests"] == 15


async def test_a_stream_cut_short_or_a_proxy_page_is_never_stored_as_the_page(tmp_path, stub_server, pdf_factory, monkeypatch):
    """A stream that ends with neither text nor a finish_reason, or a gateway's HTML page, fails the page (its class, its reason)."""
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(rules=[{"fault": "empty", "times": -1, "image_width": 1288}, {"fault": "html", "times": -1}])
    pdf_factory("cut.pdf", 1, width=842, height=595)
    pdf_factory("proxy.pdf", 1)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, retries=1))
    assert (await _run(config, tmp_path / "out")).is_completed()
    run_dir = tmp_path / "out/flowtest/stub-ocr/run-1"
    cut = read_json(run_dir / "cut" / "pdf_metadata.json")["pages"][0]
    assert (cut["status"], cut["attempts"], cut["error_class"]) == ("failed", 2, "malformed_response")
    assert cut["error"].startswith("IncompleteResponse: the response stream ended with no text and no finish_reason")
    proxy = read_json(run_dir / "proxy" / "pdf_metadata.json")["pages"][0]
    assert (proxy["status"], proxy["attempts"]) == ("failed", 2) and "502" in proxy["error"]
    assert not list(run_dir.glob("*/*.md"))


async def test_timeouts_are_retried_then_recorded(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(rules=[{"fault": "timeout", "times": -1}], timeout_sleep_s=5)
    pdf_factory("slow.pdf", 1)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, timeout_s=0.5, retries=1))
    state = await _run(config, tmp_path / "out")
    assert state.is_completed()
    page = read_json(tmp_path / "out/flowtest/stub-ocr/run-1/slow/pdf_metadata.json")["pages"][0]
    assert page["status"] == "failed" and page["attempts"] == 2 and page["error_class"] == "timeout"
    # The message says which timeout, its value and how many attempts were made.
    assert page["error"] == "no complete answer within the request timeout (timeout_s: 0.5 s) (after 2 attempts)"


async def test_failed_pages_are_recorded_and_the_run_goes_on(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    # Landscape pages render 1288 px wide; portrait ones narrower: fail only the landscape PDF.
    stub = stub_server(rules=[{"fault": "500", "times": -1, "image_width": 1288}])
    pdf_factory("good.pdf", 2)
    pdf_factory("bad.pdf", 2, width=842, height=595)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, retries=2))
    state = await _run(config, tmp_path / "out")
    assert state.is_completed()
    run_dir = tmp_path / "out/flowtest/stub-ocr/run-1"
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "completed"
    assert run["rollup"]["pages_done"] == 2 and run["rollup"]["pages_failed"] == 2
    assert run["error_counts"] == {"server_error": 2}
    bad = read_json(run_dir / "bad" / "pdf_metadata.json")
    assert [(p["status"], p["attempts"], p["error_class"]) for p in bad["pages"]] == [("failed", 3, "server_error")] * 2
    assert "HTTP 500" in bad["pages"][0]["error"]
    assert not list((run_dir / "bad").glob("*.md"))
    assert sorted(p.name for p in (run_dir / "good").glob("*.md")) == ["1.md", "2.md"]
    journal = read_page_journal(run_dir / "bad" / "pages.jsonl")
    assert sorted(r.page for r in journal) == [1, 2]


async def test_broken_and_encrypted_pdfs_fail_alone(tmp_path, stub_server, pdf_factory, monkeypatch):
    import pymupdf

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server()
    pdf_factory("fine.pdf", 2)
    (tmp_path / "inputs" / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    locked = pymupdf.open()
    locked.new_page().insert_text((72, 72), "secret")
    locked.save(tmp_path / "inputs" / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u")
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url))
    state = await _run(config, tmp_path / "out")
    assert state.is_completed()
    run_dir = tmp_path / "out/flowtest/stub-ocr/run-1"
    assert read_json(run_dir / "fine" / "pdf_metadata.json")["rollup"]["pages_done"] == 2
    broken = read_json(run_dir / "broken" / "pdf_metadata.json")
    locked_meta = read_json(run_dir / "locked" / "pdf_metadata.json")
    assert broken["status"] == "failed" and "cannot open" in broken["error"]
    assert locked_meta["status"] == "failed" and "encrypted" in locked_meta["error"]
    job = read_json(tmp_path / "out/flowtest/job_metadata.json")
    assert job["inputs"] == {"file": "inputs.jsonl", "pdfs": 3, "broken": 2, "pages_selected": 2}
    inputs = read_job_inputs(OutputLayout(tmp_path / "out"), "flowtest")
    assert {i["pdf_slug"] for i in inputs if i["error"]} == {"broken", "locked"}


def test_a_rerun_moves_an_old_input_list_out_of_job_metadata(tmp_path, pdf_factory, monkeypatch):
    from flows.ocr_job import _record_job_start
    from tracr.config.job import parse_job_config
    from tracr.run.plan import PdfPlan

    layout = OutputLayout(tmp_path / "out")
    layout.job_dir("flowtest").mkdir(parents=True)
    old = [{"pdf_slug": "gone", "path": "/old/gone.pdf", "page_count": 1, "pages_selected": 1, "error": None}]
    write_json_atomic(layout.job_metadata("flowtest"), {"job_id": "flowtest", "inputs": old})
    assert read_job_inputs(layout, "flowtest") == old  # a tree written before inputs.jsonl
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    pdf_factory("a.pdf", 3)
    job = parse_job_config(_config(str(tmp_path / "inputs"), "http://127.0.0.1:9/v1")).config
    pdfs = [PdfPlan(path="/new/a.pdf", slug="a", page_count=3, pages=[1, 3]), PdfPlan(path="/new/b.pdf", slug="b", error="encrypted")]
    _record_job_start(layout, job, "job.yaml", pdfs, [])
    meta = read_json(layout.job_metadata("flowtest"))
    assert meta["inputs"] == {"file": "inputs.jsonl", "pdfs": 2, "broken": 1, "pages_selected": 2}
    assert read_job_inputs(layout, "flowtest") == [
        {"pdf_slug": "a", "path": "/new/a.pdf", "page_count": 3, "pages_selected": 2, "error": None},
        {"pdf_slug": "b", "path": "/new/b.pdf", "page_count": 0, "pages_selected": 0, "error": "encrypted"},
    ]


async def test_concurrency_is_bounded_per_model(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.15)
    pdf_factory("many.pdf", 24)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, max_concurrent_requests=3))
    assert (await _run(config, tmp_path / "out")).is_completed()
    stats = stub.stats()
    assert stats["max_in_flight"] == 3


async def test_wrong_key_fails_the_run_fast(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    stub = stub_server()
    pdf_factory("doc.pdf", 20)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url))
    state = await _run(config, tmp_path / "out")
    assert state.is_failed()
    run = read_json(tmp_path / "out/flowtest/stub-ocr/run-1/run_metadata.json")
    assert run["status"] == "failed" and "HTTP 401" in run["error"]
    assert stub.stats()["total_requests"] < 20


async def test_two_models_run_concurrently_with_readable_names(tmp_path, stub_server, pdf_factory, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterParentFlowRunId

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    first = stub_server(latency_s=1.0, model="model-a")
    second = stub_server(latency_s=1.0, model="model-b")
    pdf_factory("doc.pdf", 4)
    config = _config(str(tmp_path / "inputs"), first.base_url, model="model-a", max_concurrent_requests=1)
    config["models"].append({**config["models"][0], "model": "model-b", "base_url": second.base_url})
    config["job_id"] = "two-models"
    path = write_config(tmp_path / "job.yaml", config)
    state = await _run(path, tmp_path / "out")
    assert state.is_completed()
    runs = [read_json(tmp_path / f"out/two-models/{m}/run-1/run_metadata.json") for m in ("model-a", "model-b")]
    # each model needs >= 4 x 1 s alone; overlapping spans show they ran at the same time
    # (Prefect on SQLite may delay a sibling subflow's start by ~2 s: it answers 503 to concurrent writes)
    spans = [(r["started_at"], r["ended_at"]) for r in runs]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]
    job = read_json(tmp_path / "out/two-models/job_metadata.json")
    run_walls = [r["rollup"]["wall_seconds"] for r in runs]
    assert max(run_walls) <= job["rollup"]["wall_seconds"] < sum(run_walls)  # overlap counted once
    assert job["latest_rollup"]["pages_done"] == 8

    async with get_client() as client:
        parent = await client.read_flow_run(state.state_details.flow_run_id)
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id]))
        )
        # by key: the session's server holds every test's artifacts, more than one unfiltered page
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="two-models-")))
    assert parent.name == "two-models"
    assert sorted(c.name for c in children) == ["two-models · model-a · run-1", "two-models · model-b · run-1"]
    keys = {a.key for a in artifacts}
    assert "two-models-model-a-run-1-summary" in keys and "two-models-model-b-run-1-progress" in keys
    summary = next(a for a in artifacts if a.key == "two-models-model-a-run-1-summary")
    rows = json.loads(summary.data) if isinstance(summary.data, str) else summary.data
    assert rows[-1]["pdf"] == "TOTAL" and rows[-1]["pages done"] == 4


async def test_api_key_never_reaches_outputs_or_prefect(tmp_path, stub_server, pdf_factory, monkeypatch, prefect_server):
    """The key, from an env var and written literally in a config, appears nowhere."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.logging.handlers import APILogHandler

    literal_key = "sk-literal-7d3e91b0c2a4f658-must-stay-secret"
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    env_stub = stub_server(model="env-model")
    literal_stub = stub_server(model="literal-model", api_key=literal_key)
    pdf_factory("doc.pdf", 2)
    (tmp_path / "inputs" / "junk.pdf").write_bytes(b"not a pdf")
    config = _config(str(tmp_path / "inputs"), env_stub.base_url, model="env-model")
    literal = {**config["models"][0], "model": "literal-model", "base_url": literal_stub.base_url, "api_key": literal_key}
    del literal["api_key_env"]
    config["models"].append(literal)
    config["job_id"] = "secret-job"
    path = write_config(tmp_path / "job.yaml", config)
    state = await _run(path, tmp_path / "out")
    assert state.is_completed(), state.message
    assert read_json(tmp_path / "out/secret-job/literal-model/run-1/run_metadata.json")["rollup"]["pages_done"] == 2

    await APILogHandler.aflush()
    for secret in (TEST_API_KEY, literal_key):
        for file in (tmp_path / "out").rglob("*"):
            if file.is_file():
                assert secret.encode() not in file.read_bytes(), file
    async with get_client() as client:
        flow_runs = await client.read_flow_runs()
        logs = await client.read_logs()
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="secret-job")))
    dumped = json.dumps([r.model_dump(mode="json") for r in flow_runs + logs + artifacts])
    assert artifacts, "this job's artifacts were read"
    assert TEST_API_KEY not in dumped and literal_key not in dumped
    assert "secret-job" in dumped and any(log.message for log in logs)  # we did look at this job's records
    db_path = Path(re.sub(r"^sqlite\+aiosqlite:///", "", prefect_server))
    db_files = list(db_path.parent.glob(db_path.name + "*"))
    assert any(b"secret-job" in f.read_bytes() for f in db_files)
    for file in db_files:
        raw = file.read_bytes()
        assert TEST_API_KEY.encode() not in raw and literal_key.encode() not in raw


async def test_a_page_that_cannot_be_written_fails_alone_and_its_text_is_kept(tmp_path, stub_server, monkeypatch):
    from tests.conftest import make_pdf

    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    # Landscape pages render 1288 px wide: their first request is refused (400, not retried), so they fail.
    stub = stub_server(latency_s=0.01, rules=[{"fault": "400", "times": 1, "image_width": 1288}])
    make_pdf(tmp_path / "inputs" / "portrait.pdf", 3)
    make_pdf(tmp_path / "inputs" / "landscape.pdf", 2, width=842, height=595)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url))
    outputs = tmp_path / "out"
    run_dir = outputs / "flowtest" / "stub-ocr" / "run-1"
    assert (await _run(config, outputs)).is_completed()
    assert read_json(run_dir / "run_metadata.json")["rollup"]["pages_failed"] == 2

    (run_dir / "landscape" / "1.md").mkdir()  # something in the way of one page file
    state = await _run(config, outputs, resume=True)
    assert state.is_completed(), state.message

    journal = {r.page: r for r in read_page_journal(run_dir / "landscape" / "pages.jsonl")}
    assert journal[2].status == "done" and (run_dir / "landscape" / "2.md").is_file()
    blocked = journal[1]
    assert blocked.status == "failed" and blocked.error_class == "write" and "1.md" in (blocked.error or "")
    kept = outputs / ".tracr" / "unwritten" / "flowtest" / "stub-ocr" / "run-1" / "landscape" / "1.md"
    assert kept.read_text(encoding="utf-8").strip() and str(kept) in (blocked.error or "")
    # The records agree with the journals, at every level.
    run = read_json(run_dir / "run_metadata.json")
    assert run["status"] == "completed" and run["rollup"]["pages_done"] == 4 and run["rollup"]["pages_failed"] == 1
    pdf = read_json(run_dir / "landscape" / "pdf_metadata.json")
    assert [p["status"] for p in pdf["pages"]] == ["failed", "done"] and pdf["rollup"]["pages_failed"] == 1
    assert read_json(run_dir / "metrics.json")["failures_by_class"] == {"write": 1}


async def test_truncated_and_runaway_pages_are_flagged_and_capped(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    stub = stub_server(latency_s=0.01, finish_reason="length", output_tokens=600)
    pdf_factory("doc.pdf", 2)
    config = write_config(tmp_path / "job.yaml", _config(str(tmp_path / "inputs"), stub.base_url, max_page_chars=1000))
    outputs = tmp_path / "out"
    assert (await _run(config, outputs)).is_completed()
    run_dir = outputs / "flowtest" / "stub-ocr" / "run-1"
    records = read_page_journal(run_dir / "doc" / "pages.jsonl")
    assert [r.truncated for r in records] == [True, True] and [r.capped_at for r in records] == [1000, 1000]
    assert all(len((run_dir / "doc" / f"{r.page}.md").read_text(encoding="utf-8")) == 1000 for r in records)
    assert read_json(run_dir / "run_metadata.json")["rollup"]["pages_truncated"] == 2
