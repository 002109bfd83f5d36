"""The ``tracr`` command as a user runs it: a real subprocess against the test Prefect server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY, write_config
from tracr.outputs.files import read_json

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[2]


def tracr(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        timeout=600,
    )


def test_example_job_runs_both_builtin_models(tmp_path):
    result = tracr("run", "job_configs/example.yaml", "--outputs", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"outputs: {tmp_path / 'out' / 'example'}" in result.stdout
    assert "tracr-ocr" in result.stdout and "pdf-text-layer" in result.stdout
    job = read_json(tmp_path / "out/example/job_metadata.json")
    assert {m["model_slug"]: m["latest_status"] for m in job["models"]} == {"tracr-ocr": "completed", "pdf-text-layer": "completed"}
    assert job["rollup"]["pages_done"] == 10 and job["rollup"]["pages_failed"] == 0
    ocr = (tmp_path / "out/example/tracr-ocr/run-1/scanned_letter/1.md").read_text().lower().replace(" ", "")
    assert "order" in ocr and "7781" in ocr  # the image-only page, read by OCR
    rotated = (tmp_path / "out/example/tracr-ocr/run-1/rotated_page/1.md").read_text().lower().replace(" ", "")
    assert "rotatedby90degrees" in rotated  # rendered upright, so OCR reads it
    assert (tmp_path / "out/example/pdf-text-layer/run-1/scanned_letter/1.md").read_text().strip() == ""  # no text layer
    assert "rotated by 90 degrees" in (tmp_path / "out/example/pdf-text-layer/run-1/rotated_page/1.md").read_text()

    listing = tracr("list", "--outputs", str(tmp_path / "out"))
    assert listing.returncode == 0 and "example" in listing.stdout
    shown = tracr("show", "example", "--outputs", str(tmp_path / "out"))
    assert shown.returncode == 0 and "tracr-ocr" in shown.stdout and "completed" in shown.stdout
    missing = tracr("show", "nope", "--outputs", str(tmp_path / "out"))
    assert missing.returncode == 1 and "no job 'nope'" in missing.stdout


def test_bad_config_fails_before_anything_starts(tmp_path):
    config = write_config(
        tmp_path / "bad.yaml",
        {"job_id": "bad", "input_path": str(tmp_path / "none"), "models": [{"model": "m", "mode": "api", "base_url": None, "colour": 1}]},
    )
    result = tracr("run", str(config), "--outputs", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "models[0].colour: unknown key" in result.stderr
    assert "no such file or folder" in result.stderr
    assert not (tmp_path / "out").exists()


def test_failed_pages_give_a_nonzero_exit_and_a_summary(tmp_path, stub_server, pdf_factory):
    stub = stub_server(rules=[{"fault": "500", "times": -1, "image_width": 1288}])
    pdf_factory("ok.pdf", 1)
    pdf_factory("wide.pdf", 1, width=842, height=595)
    (tmp_path / "inputs" / "junk.pdf").write_bytes(b"not a pdf")
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "cli-fail",
            "input_path": str(tmp_path / "inputs"),
            "models": [
                {
                    "model": "stub-ocr",
                    "provider": "custom",
                    "base_url": stub.base_url,
                    "api_key_env": "CLI_KEY",
                    "retries": 1,
                    "retry_backoff_s": 0.01,
                }
            ],
        },
    )
    result = tracr("run", str(config), "--outputs", str(tmp_path / "out"), "--job-id", "renamed", env={"CLI_KEY": TEST_API_KEY})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wide" in result.stdout and "server_error" in result.stdout
    assert "PDFs that could not be read: junk\n" in result.stdout
    assert read_json(tmp_path / "out/renamed/job_metadata.json")["inputs"] == {
        "file": "inputs.jsonl",
        "pdfs": 3,
        "broken": 1,
        "pages_selected": 2,
    }
    assert TEST_API_KEY not in result.stdout + result.stderr
    assert read_json(tmp_path / "out/renamed/stub-ocr/run-1/run_metadata.json")["rollup"]["pages_failed"] == 1


def test_outputs_root_from_environment(tmp_path):
    config = write_config(
        tmp_path / "job.yaml",
        {
            "job_id": "envroot",
            "input_path": str(REPO / "tracr/samples/table_invoice.pdf"),
            "models": [{"model": "text", "mode": "local", "provider": "pdf-text"}],
        },
    )
    result = tracr("run", str(config), env={"TRACR_OUTPUTS": str(tmp_path / "elsewhere")}, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Invoice 0042" in (tmp_path / "elsewhere/envroot/text/run-1/table_invoice/1.md").read_text()


def test_serve_ocr_command_serves_the_builtin_model():
    import httpx

    from tracr.testing.processes import start_server_process, stop_process_group

    proc, port = start_server_process(["cli.main", "serve-ocr", "--port", "0", "--model-name", "my-ocr"])
    try:
        deadline = time.monotonic() + 60
        while True:  # models load in the background after the READY line
            response = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [m["id"] for m in response.json()["data"]] == ["my-ocr"]
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["status"] == "ok"
    finally:
        stop_process_group(proc)
