"""A key's budget held in Prefect and adaptive concurrency, end to end: real Prefect server, real stub provider.

The stub enforces the budget itself (429 beyond it) and records when each request
arrived, so "inside the budget" is measured where the provider would measure it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY, write_config
from tracr.outputs.files import read_json

pytestmark = pytest.mark.usefixtures("prefect_server")

KEY_ENV = "TRACR_TEST_STUB_KEY"
REPO = Path(__file__).resolve().parents[2]


def _config(job_id: str, inputs: Path, base_url: str, **model: Any) -> dict[str, Any]:
    spec = {
        "model": "stub-ocr",
        "mode": "api",
        "provider": "custom",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "max_concurrent_requests": 8,
        "timeout_s": 20,
        "retries": 3,
        "retry_backoff_s": 0.05,
        "retry_backoff_max_s": 0.5,
        **model,
    }
    return {"job_id": job_id, "input_path": str(inputs), "prompt": "OCR this page.", "max_tokens": 64, "models": [spec]}


async def _run(config_path: Path, outputs: Path):
    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest

    return await ocr_job_flow(JobRequest(config_path=str(config_path), outputs=str(outputs)), return_state=True)


def _arrivals(port: int) -> list[list[Any]]:
    return httpx.get(f"http://127.0.0.1:{port}/_arrivals", timeout=10).json()["arrivals"]


def max_in_window(times: list[float], window_s: float) -> int:
    """The most requests any sliding window of ``window_s`` seconds holds."""
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_two_jobs_sharing_a_key_stay_inside_its_budget_measured_at_the_provider(tmp_path, stub_server, pdf_factory):
    """Two `tracr run` processes, as two users (or two hosts) would start them, with one key."""
    from prefect.client.orchestration import get_client

    rpm = 120
    stub = stub_server(latency_s=0.02, requests_per_minute=rpm)
    pdf_factory("one.pdf", 35)
    pdf_factory("two.pdf", 35)
    configs = [
        write_config(tmp_path / f"{job}.yaml", _config(job, tmp_path / "inputs", stub.base_url, requests_per_minute=rpm))
        for job in ("budget-a", "budget-b")
    ]
    env = {**os.environ, KEY_ENV: TEST_API_KEY}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", str(c), "--outputs", str(tmp_path / "out")],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for c in configs
    ]
    outputs = [job.communicate(timeout=600)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert all(TEST_API_KEY not in text for text in outputs)

    runs = [read_json(tmp_path / "out" / job / "stub-ocr" / "run-1" / "run_metadata.json") for job in ("budget-a", "budget-b")]
    failed = [line for p in (tmp_path / "out").rglob("pages.jsonl") for line in p.read_text().splitlines() if '"failed"' in line]
    assert [run["rollup"]["pages_done"] for run in runs] == [70, 70], failed
    arrivals = _arrivals(stub.port)
    assert len(arrivals) == 140 > rpm  # more than one minute's budget: the sliding minute was exercised
    assert [a for a in arrivals if a[2] != "ok"] == []  # the provider never had to refuse one
    assert max_in_window([a[0] for a in arrivals], 60.0) <= rpm

    names = [run["requests"]["rate_limits"] for run in runs]
    assert names[0] == names[1] and len(names[0]) == 1 and names[0][0].startswith("tracr-rate-127-0-0-1-key-")
    assert all(run["requests"]["rate_limit_wait_s"] > 0 for run in runs)  # both were held back by the one budget
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and TEST_API_KEY.encode() in p.read_bytes()]
    async with get_client() as client:
        limit = await client.read_global_concurrency_limit_by_name(names[0][0])
    assert limit.slot_decay_per_second > 0 and TEST_API_KEY not in limit.name  # visible (and adjustable) in the UI


async def test_adaptive_concurrency_drops_in_a_429_storm_and_recovers_after_it(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    storm = {"after_requests": 20, "seconds": 4, "retry_after_s": 1, "capacity": 2}
    stub = stub_server(latency_s=0.2, storm=storm)
    pdf_factory("many.pdf", 150)
    config = write_config(tmp_path / "job.yaml", _config("storm", tmp_path / "inputs", stub.base_url, retries=10))
    state = await _run(config, tmp_path / "out")
    assert state.is_completed(), state.message

    run = read_json(tmp_path / "out/storm/stub-ocr/run-1/run_metadata.json")
    assert run["rollup"]["pages_done"] == 150 and run["rollup"]["pages_failed"] == 0
    requests = run["requests"]
    assert requests["adaptive"] and requests["throttled"] > 0 and requests["changes"] >= 2
    assert requests["lowest"] <= 4  # it backed off toward the storm's capacity of 2
    # back at the ceiling once the storm ended, and it says why it moved last
    assert requests["allowed"] == requests["max"] == 8
    assert requests["last_change"] == {"from": 7, "to": 8, "reason": "endpoint recovered"}
    stats = stub.stats()
    assert stats["outcomes"].get("429_storm", 0) > 0


async def test_costs_add_up_to_the_providers_own_count_and_show_prints_them(tmp_path, stub_server, pdf_factory, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_API_KEY)
    # some first attempts refused (429s bill nothing), replies of 40 words
    stub = stub_server(latency_s=0.01, output_tokens=40, rules=[{"fault": "429", "times": 1, "retry_after_s": 0, "rate": 0.3}])
    pdf_factory("doc.pdf", 12)
    config = _config("costs", tmp_path / "inputs", stub.base_url, name="priced")
    config["models"][0]["price"] = {"input_per_million": 1.5, "output_per_million": 6.0, "as_of": "2026-12"}
    config["models"].append({**config["models"][0], "name": "unpriced", "price": None})
    state = await _run(write_config(tmp_path / "job.yaml", config), tmp_path / "out")
    assert state.is_completed(), state.message

    usage = stub.stats()["usage"]
    costs = {slug: read_json(tmp_path / "out/costs" / slug / "run-1/run_metadata.json")["cost"] for slug in ("priced", "unpriced")}
    assert costs["priced"]["input_tokens"] + costs["unpriced"]["input_tokens"] == usage["prompt_tokens"]
    assert costs["priced"]["output_tokens"] + costs["unpriced"]["output_tokens"] == usage["completion_tokens"]
    priced = costs["priced"]
    expected = (priced["input_tokens"] * 1.5 + priced["output_tokens"] * 6.0) / 1e6
    assert priced["total"] == pytest.approx(expected, rel=1e-6) and priced["per_1000_pages"] == pytest.approx(
        expected / 12 * 1000, rel=1e-5
    )
    assert priced["price"]["source"] == "config" and priced["price"]["mode"] == "live"
    assert costs["unpriced"]["total"] is None and costs["unpriced"]["note"] == "no known price"

    shown = subprocess.run(
        [sys.executable, "-m", "cli.main", "show", "costs", "--outputs", str(tmp_path / "out")], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert f"{priced['per_1000_pages']:,.4f} USD" in shown.stdout and "no known price" in shown.stdout
