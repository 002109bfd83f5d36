"""Throughput of a whole tracr job against a bare asyncio loop, same client and server.

    python bench/throughput.py                     # 2,000 pages, 100 ms per request, 64 in flight
    python bench/throughput.py --pages 500 --memory-steps 250,500,1000

Both sides OCR the same generated PDF against one loopback stub server process
(``tracr.testing.openai_stub``) answering each request in ``--latency`` seconds:

* reference: a hand-written asyncio loop — the ``openai.AsyncOpenAI`` streaming
  client, PyMuPDF rendering in a process pool of one worker per core, at most
  ``--inflight`` requests in flight, nothing written to disk;
* tracr: ``ocr_job_flow`` through Prefect (an already running Prefect server, as
  in a deployment), writing the full output tree and metadata.

Each measurement runs in its own process (so peak memory is its own), and the
two sides alternate ``--repeat`` times. The result is the ratio of pages/s,
tracr over reference, plus the peak RSS of both main processes at several job
sizes: what tracr adds over the loop must not grow with the pages. Results go to
``bench/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_pdf(path: Path, pages: int) -> Path:
    """Simple text pages, each different so every rendered image is distinct."""
    import pymupdf

    if path.exists():
        return path
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 72), f"Benchmark page {number}", fontsize=18)
        for line in range(30):
            page.insert_text(
                (72, 110 + line * 20), f"Line {line} of page {number}: the quick brown fox jumps over the lazy dog.", fontsize=10
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


# --------------------------------------------------------------------------- reference


async def reference_loop(pdf: Path, base_url: str, inflight: int, pages: int) -> dict:
    """What a user would write by hand over one PDF's first ``pages`` pages."""
    return await reference_loop_over([(pdf, page) for page in range(1, pages + 1)], base_url, inflight)


async def reference_loop_over(items: list[tuple[Path, int]], base_url: str, inflight: int) -> dict:
    """What a user would write by hand: render ahead in processes, stream, bounded in flight; ``items`` are (PDF, page)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import httpx
    import openai

    from tracr.documents.pdf import render_page_data_url, worker_count

    started = time.perf_counter()  # the pool's start-up counts, as tracr's does
    workers = worker_count()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight), timeout=60)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, http_client=http)
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(inflight + 4 * workers)
    requests = asyncio.Semaphore(inflight)
    done = 0

    async def one(pdf: Path, page: int) -> None:
        nonlocal done
        try:
            url = await loop.run_in_executor(pool, render_page_data_url, str(pdf), page, 1288, "png", 90)
            async with requests:
                stream = await client.chat.completions.create(
                    model="stub-ocr",
                    messages=[
                        {"role": "user", "content": [{"type": "text", "text": "OCR"}, {"type": "image_url", "image_url": {"url": url}}]}
                    ],
                    max_tokens=512,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                parts = []
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            parts.append(choice.delta.content)
            done += 1
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        for pdf, page in items:
            await slots.acquire()
            group.create_task(one(pdf, page))
    elapsed = time.perf_counter() - started
    await client.close()
    pool.shutdown()
    return {"pages": done, "seconds": elapsed}


# --------------------------------------------------------------------------- tracr


def bench_job_config(job_id: str, input_path: Path, base_url: str, inflight: int, pages: int | None = None) -> dict:
    """The job every bench runs: one stub model, ``inflight`` requests at once, the first ``pages`` pages (None: all)."""
    config = {
        "job_id": job_id,
        "input_path": str(input_path),
        "prompt": "OCR",
        "max_tokens": 512,
        "models": [
            {
                "model": "stub-ocr",
                "provider": "custom",
                "base_url": base_url,
                "api_key_env": "BENCH_KEY",
                "max_concurrent_requests": inflight,
                "timeout_s": 60,
            }
        ],
    }
    if pages is not None:
        config["pages"] = f"1-{pages}"
    return config


def tracr_job(pdf: Path, base_url: str, inflight: int, pages: int, workdir: Path) -> dict:
    import yaml

    from flows.ocr_job import ocr_job_flow
    from tracr.config.job_request import JobRequest
    from tracr.outputs.files import read_json

    config = bench_job_config("bench", pdf, base_url, inflight, pages)
    os.environ["BENCH_KEY"] = "bench"
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    outputs = workdir / "out"
    started = time.perf_counter()
    wall_start = time.time()
    state = asyncio.run(ocr_job_flow(JobRequest(config_path=str(path), outputs=str(outputs)), return_state=True))
    elapsed = time.perf_counter() - started
    run = read_json(outputs / "bench" / "stub-ocr" / "run-1" / "run_metadata.json") or {}
    rollup = run.get("rollup", {})
    if os.environ.get("BENCH_TIMELINE"):
        from datetime import datetime

        def at(stamp: str) -> float:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - wall_start

        print(
            "TIMELINE",
            {h["status"]: round(at(h["at"]), 3) for h in run["status_history"]},
            "flow returned",
            round(time.time() - wall_start, 3),
            file=sys.stderr,
        )
    return {
        "pages": rollup.get("pages_done", 0),
        "failed": rollup.get("pages_failed", 0),
        "seconds": elapsed,
        "run_seconds": rollup.get("wall_seconds"),
        "state": state.type.value,
    }


# --------------------------------------------------------------------------- harness


def child_main(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line with the result and peak RSS."""
    pdf = Path(args.pdf)
    if args.child == "reference":
        result = asyncio.run(reference_loop(pdf, args.base_url, args.inflight, args.pages))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = tracr_job(pdf, args.base_url, args.inflight, args.pages, Path(tmp))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    result["main_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)  # the orchestrating process, not the render workers
    result["pages_per_s"] = round(result["pages"] / result["seconds"], 2)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(kind: str, pdf: Path, base_url: str, inflight: int, pages: int, env: dict) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--pdf",
        str(pdf),
        "--base-url",
        base_url,
        "--inflight",
        str(inflight),
        "--pages",
        str(pages),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{kind} run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def start_prefect_server(home: Path) -> tuple[subprocess.Popen, str]:
    from tasks.serving.process import find_free_port

    port = find_free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    from tracr.testing.processes import wait_until_http_ok

    url = f"http://127.0.0.1:{port}/api"
    wait_until_http_ok(f"{url}/health", proc, what="prefect server")
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--memory-steps", default="500,1000,2000", help="job sizes (pages) for tracr's peak-memory curve")
    parser.add_argument("--child", choices=["reference", "tracr"])
    parser.add_argument("--pdf")
    parser.add_argument("--base-url")
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    from tracr.testing.processes import start_server_process, stop_process_group

    work = REPO / "bench" / "results"
    work.mkdir(parents=True, exist_ok=True)
    steps = sorted({int(s) for s in args.memory_steps.split(",") if s} | {args.pages})
    pdf = make_pdf(work / f"bench-{max(steps)}.pdf", max(steps))
    stub, port = start_server_process(
        ["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps({"latency_s": args.latency, "output_tokens": 64})]
    )
    prefect_home = Path(tempfile.mkdtemp(prefix="tracr-bench-prefect-"))
    server, api_url = start_prefect_server(prefect_home)
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    base_url = f"http://127.0.0.1:{port}/v1"
    results: dict = {
        "pages": args.pages,
        "latency_s": args.latency,
        "inflight": args.inflight,
        "cpus": os.cpu_count(),
        "reference": [],
        "tracr": [],
        "memory": [],
    }
    try:
        run_child("tracr", pdf, base_url, args.inflight, 50, env)  # warm-up: imports, flow registration
        for _ in range(args.repeat):
            for kind in ("reference", "tracr"):
                result = run_child(kind, pdf, base_url, args.inflight, args.pages, env)
                results[kind].append(result)
                extra = f"  (run itself {result['run_seconds']:.2f} s)" if result.get("run_seconds") else ""
                print(
                    f"{kind:9} {result['pages']:5d} pages  {result['seconds']:7.2f} s  {result['pages_per_s']:7.2f} pages/s  peak RSS {result['peak_rss_mib']} MiB{extra}",
                    flush=True,
                )
        for pages in steps:
            row: dict = {"pages": pages}
            for kind in ("reference", "tracr"):
                result = run_child(kind, pdf, base_url, args.inflight, pages, env)
                row[f"{kind}_peak_rss_mib"] = result["peak_rss_mib"]
            row["tracr_minus_reference_mib"] = round(row["tracr_peak_rss_mib"] - row["reference_peak_rss_mib"], 1)
            results["memory"].append(row)
            print(
                f"memory    {pages:5d} pages  peak RSS reference {row['reference_peak_rss_mib']} MiB, tracr {row['tracr_peak_rss_mib']} MiB "
                f"(tracr - reference {row['tracr_minus_reference_mib']} MiB)",
                flush=True,
            )
    finally:
        stop_process_group(stub)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(prefect_home, ignore_errors=True)

    ref = max(r["pages_per_s"] for r in results["reference"])
    best = max(r["pages_per_s"] for r in results["tracr"])
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    results["ratio_best"] = round(best / ref, 3)
    results["ratio_median"] = round(
        med([r["pages_per_s"] for r in results["tracr"]]) / med([r["pages_per_s"] for r in results["reference"]]), 3
    )
    print(f"\ntracr / reference pages/s: best {results['ratio_best']:.3f}, median {results['ratio_median']:.3f} (goal >= 0.95)")
    (work / "throughput.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
