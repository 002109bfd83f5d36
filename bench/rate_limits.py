"""A key's per-minute budget held in Prefect, and adaptive concurrency through a 429 storm.

    python bench/rate_limits.py                          # both parts, about 4 minutes
    python bench/rate_limits.py --part budget --rpm 600 --seconds 90
    python bench/rate_limits.py --part storm

Both parts drive tracr's own OCR client (``tasks/ocr/request.py`` ``OcrClient``, with
the gate and pacer ``engine_for`` gives a hosted model) against a loopback stub
provider (``tracr.testing.openai_stub``) that enforces the budget itself and records
when each request arrived, with a Prefect test server holding the limits.

* budget: two processes (two jobs, or two hosts) share one key whose budget is
  ``--rpm`` requests per minute, each with 16 requests in flight and pages enough to
  go far over it. Reported: requests/s reaching the provider over the run (the first
  second's burst left out) against the budget's rpm/60 (goal >= 0.95), the most
  requests any sliding minute held (must be <= rpm) and the 429s the provider sent (goal 0).
* storm: one client, 16 in flight, 0.2 s per request; after ``--storm-after`` s the
  provider serves only 4 at once for 30 s and answers the rest 429 with Retry-After 1.
  Fixed (today's semaphore) against adaptive (AIMD + Retry-After). Reported per phase
  (before, during, the 20 s after): pages/s, and over the run the 429s received and
  pages that failed after their retries.

Results go to ``bench/results/rate_limits.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KEY = "sk-bench-shared-key"


def _png_data_url() -> str:
    import base64

    import pymupdf

    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pix.clear_with(200)
    return "data:image/png;base64," + base64.b64encode(pix.tobytes("png")).decode()


def _client(base_url: str, adaptive: bool, rpm: int | None, retries: int = 10) -> Any:
    from tasks.ocr.rate_limits import ProviderPacer
    from tasks.ocr.request import OcrClient
    from tracr.ratelimits.budget import RateBudget, budget_base_name
    from tracr.ratelimits.gate import AdaptiveGate
    from tracr.run.retry import RetryPolicy

    pacer = ProviderPacer(RateBudget(budget_base_name("custom", base_url, KEY), rpm)) if rpm else None
    return OcrClient(
        base_url=base_url,
        api_key=KEY,
        model="stub-ocr",
        max_concurrent_requests=16,
        timeout_s=60,
        policy=RetryPolicy(retries, 1.0, 8.0),
        gate=AdaptiveGate(16, adaptive=adaptive),
        pacer=pacer,
    )


async def _pages(client: Any, seconds: float, image: str, done: list[tuple[float, bool]]) -> None:
    """Pages as fast as the client lets them go, 32 waiting at a time, for ``seconds``."""
    if client.pacer is not None:
        await client.pacer.ensure()
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            result = await client.ocr(image, prompt="OCR this page.", max_tokens=64, temperature=0.0)
            done.append((time.monotonic(), result.ok))

    await asyncio.gather(*(worker() for _ in range(32)))
    await client.aclose()


def _budget_worker(base_url: str, rpm: int, seconds: float, api_url: str, out: Any) -> None:
    os.environ["PREFECT_API_URL"] = api_url
    done: list[tuple[float, bool]] = []
    asyncio.run(_pages(_client(base_url, True, rpm), seconds, _png_data_url(), done))
    out.put(len(done))


def _arrivals(port: int) -> list[list[Any]]:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/_arrivals", timeout=30).json()["arrivals"]


def _max_in_window(times: list[float], window: float) -> int:
    times, most, first = sorted(times), 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def _stub(config: dict[str, Any]) -> tuple[Any, int]:
    from tracr.testing.processes import start_server_process

    return start_server_process(["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps({"api_key": KEY, **config})])


def bench_budget(rpm: int, seconds: float, api_url: str) -> dict[str, Any]:
    from tracr.testing.processes import stop_process_group

    proc, port = _stub({"latency_s": 0.05, "requests_per_minute": rpm})
    try:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        workers = [ctx.Process(target=_budget_worker, args=(f"http://127.0.0.1:{port}/v1", rpm, seconds, api_url, out)) for _ in range(2)]
        for w in workers:
            w.start()
        pages = [out.get(timeout=seconds + 300) for _ in workers]
        for w in workers:
            w.join()
        arrivals = _arrivals(port)
    finally:
        stop_process_group(proc)
    times = [a[0] for a in arrivals if a[2] == "ok"]
    refused = sum(1 for a in arrivals if a[2] != "ok")
    steady = [t for t in times if t >= 1.0]
    span = (max(steady) - min(steady)) if len(steady) > 1 else 0.0
    rate = (len(steady) - 1) / span if span else 0.0
    return {
        "rpm": rpm,
        "seconds": seconds,
        "requests": len(times),
        "pages_per_worker": pages,
        "requests_per_s": round(rate, 3),
        "budget_per_s": round(rpm / 60, 3),
        "ratio_to_budget": round(rate / (rpm / 60), 3),
        "max_in_sliding_minute": _max_in_window(times, 60.0),
        "provider_429s": refused,
    }


async def _storm_once(adaptive: bool, storm_after: float, api_url: str) -> dict[str, Any]:
    from tracr.testing.processes import stop_process_group

    storm_s, after_s = 30.0, 20.0
    storm = {"after_s": storm_after, "seconds": storm_s, "retry_after_s": 1, "capacity": 4}
    proc, port = _stub({"latency_s": 0.2, "storm": storm})
    try:
        done: list[tuple[float, bool]] = []
        started = time.monotonic()
        client = _client(f"http://127.0.0.1:{port}/v1", adaptive, None)
        await _pages(client, storm_after + storm_s + after_s, _png_data_url(), done)
        arrivals = _arrivals(port)
    finally:
        stop_process_group(proc)
    refused = sum(1 for a in arrivals if a[2] == "storm")
    first_arrival = started  # the stub's clock starts at the first request: within milliseconds of the client's start
    storm_start, storm_end = storm_after, storm_after + storm_s

    def rate(lo: float, hi: float) -> float:
        n = sum(1 for t, ok in done if ok and lo <= t - first_arrival < hi)
        return round(n / (hi - lo), 2)

    return {
        "mode": "adaptive" if adaptive else "fixed",
        "pages_per_s_before": rate(1.0, storm_start),
        "pages_per_s_during": rate(storm_start, storm_end),
        "pages_per_s_after_first_5s": rate(storm_end, storm_end + 5),
        "pages_per_s_after_20s": rate(storm_end, storm_end + after_s),
        "provider_429s": refused,
        "pages_failed": sum(1 for _, ok in done if not ok),
        "pages_done": sum(1 for _, ok in done if ok),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("budget", "storm", "both"), default="both")
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--storm-after", type=float, default=10.0)
    args = parser.parse_args()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    results: dict[str, Any] = {"date": datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    with prefect_test_harness(server_startup_timeout=120):
        api_url = str(PREFECT_API_URL.value())
        if args.part in ("budget", "both"):
            results["budget"] = bench_budget(args.rpm, args.seconds, api_url)
            print(json.dumps(results["budget"]), flush=True)
        if args.part in ("storm", "both"):
            results["storm"] = [asyncio.run(_storm_once(adaptive, args.storm_after, api_url)) for adaptive in (False, True)]
            for row in results["storm"]:
                print(json.dumps(row), flush=True)
    out = REPO / "bench" / "results" / "rate_limits.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
