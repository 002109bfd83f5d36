"""Throughput of a whole ``tracr run`` process (start to exit) against the bare loop, warm and cold server.

    python bench/whole_process.py                       # 600 and 2,000 pages, 100 ms per request, 64 in flight
    python bench/whole_process.py --pages 600 --repeat 2 --busy 2

``bench/throughput.py`` times the job flow inside an already running process;
this times what a user waits for: ``tracr run CONFIG`` from the moment the
process is spawned until it exits (imports, connecting to Prefect, the flow, the
final table), against the same hand-written asyncio loop (``throughput.py``'s
reference) over the same stub server and PDF, also timed as a whole process from
spawn to exit (a script pays its interpreter start and imports too); the loop's
own time is reported beside it.

* warm: the tracr-managed local Prefect server is already running (the normal case
  after the first command);
* cold: it is stopped before the run, so ``tracr run`` starts it (the first command
  on a machine).

Also measured: seconds from spawning ``tracr run`` to the first page record in a
``pages.jsonl`` (time to first page), warm and cold. ``--busy N`` keeps N
CPU-bound processes running during every measurement (the issue's "two processes
keep both cores busy"). Both sides run with Python's bytecode cache, as on a
user's machine, even where ``PYTHONDONTWRITEBYTECODE`` is set (some sandboxes set
it, and then every process compiles tracr's modules again: ~1 s);
``--no-bytecode-cache`` keeps the variable. The local server lives in a private
``TRACR_HOME`` and port, never a developer's. Results go to
``bench/results/whole_process.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from throughput import bench_job_config, make_pdf, run_child  # noqa: E402  (the bare-loop reference, unchanged)


def _burn() -> None:
    while True:
        pass


def _first_page(outputs: Path, stop: threading.Event, started: float, seen: dict) -> None:
    while not stop.is_set():
        for journal in outputs.glob("*/*/run-*/*/pages.jsonl"):
            try:
                if journal.stat().st_size > 0:
                    seen["first_page_s"] = time.perf_counter() - started
                    return
            except OSError:
                pass
        time.sleep(0.02)


def tracr_run(pdf: Path, base_url: str, inflight: int, pages: int, env: dict, work: Path) -> dict:
    """``tracr run`` as a user starts it, timed from spawn to exit."""
    import yaml

    config = bench_job_config("bench", pdf, base_url, inflight, pages)
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    outputs = work / f"out-{time.time_ns()}"
    seen: dict = {}
    stop = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", str(path), "--outputs", str(outputs), "--no-progress"],
        cwd=REPO,
        env={**env, "BENCH_KEY": "bench"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = threading.Thread(target=_first_page, args=(outputs, stop, started, seen), daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=3600)
    elapsed = time.perf_counter() - started
    stop.set()
    watcher.join(timeout=2)
    meta = json.loads((outputs / "bench" / "stub-ocr" / "run-1" / "run_metadata.json").read_text()) if proc.returncode == 0 else {}
    if proc.returncode != 0:
        raise RuntimeError(f"tracr run failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    rollup = meta.get("rollup", {})
    return {
        "pages": rollup.get("pages_done", 0),
        "failed": rollup.get("pages_failed", 0),
        "seconds": round(elapsed, 3),
        "pages_per_s": round(rollup.get("pages_done", 0) / elapsed, 2),
        "run_seconds": rollup.get("wall_seconds"),
        "first_page_s": round(seen.get("first_page_s", float("nan")), 3),
        "started_server": "starting the local Prefect server" in err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", default="600,2000", help="job sizes, comma-separated (default: 600,2000)")
    parser.add_argument("--latency", type=float, default=0.1, help="stub seconds per request (default: 0.1)")
    parser.add_argument("--inflight", type=int, default=64, help="requests in flight (default: 64)")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per size and mode (default: 1)")
    parser.add_argument("--modes", default="warm,cold", help="server modes to measure (default: warm,cold)")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes kept running meanwhile (default: 0)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (default: drop it, so both sides use cached bytecode as users do)",
    )
    args = parser.parse_args()

    from tracr.testing.processes import start_server_process, stop_process_group

    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.pages.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    pdf = make_pdf(results_dir / f"bench-{max(sizes)}.pdf", max(sizes))
    stub, port = start_server_process(
        ["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps({"latency_s": args.latency, "output_tokens": 64})]
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    work = Path(tempfile.mkdtemp(prefix="tracr-bench-whole-"))
    from tasks.serving.process import find_free_port

    base_env = dict(os.environ)
    if not args.no_bytecode_cache:
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    env = {k: v for k, v in base_env.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(work / "client"),
        TRACR_HOME=str(work / "home"),
        TRACR_PREFECT_PORT=str(find_free_port()),
        TRACR_PREFECT_PORT_FALLBACKS="0",
    )
    ref_env = {**base_env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.busy)]
    for burner in burners:
        burner.start()

    def tracr(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *a], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    results: dict = {
        "latency_s": args.latency,
        "inflight": args.inflight,
        "cpus": os.cpu_count(),
        "busy": args.busy,
        "bytecode_cache": not args.no_bytecode_cache,
        "load_before": os.getloadavg(),
        "rows": [],
    }
    try:
        tracr("server", "start")
        tracr_run(pdf, base_url, args.inflight, 20, env, work)  # warm-up: imports, page cache, flow registration
        for pages in sizes:
            for _ in range(args.repeat):
                spawned = time.perf_counter()
                ref = run_child("reference", pdf, base_url, args.inflight, pages, ref_env)
                ref_whole = time.perf_counter() - spawned  # the script as a user runs it: interpreter, imports, loop, exit
                row = {
                    "pages": pages,
                    "reference_pages_per_s": round(ref["pages"] / ref_whole, 2),
                    "reference_seconds": round(ref_whole, 3),
                    "reference_loop_seconds": round(ref["seconds"], 3),
                }
                for mode in modes:
                    if mode == "cold":
                        tracr("server", "stop")
                    result = tracr_run(pdf, base_url, args.inflight, pages, env, work)
                    row[mode] = {**result, "ratio": round(result["pages_per_s"] / row["reference_pages_per_s"], 3)}
                    print(
                        f"{pages:5d} pages  {mode:4}  tracr run {result['seconds']:7.2f} s {result['pages_per_s']:7.2f} pages/s "
                        f"(ratio {row[mode]['ratio']:.3f})  first page {result['first_page_s']:6.2f} s  "
                        f"started server: {result['started_server']}",
                        flush=True,
                    )
                print(
                    f"{pages:5d} pages  bare loop {ref_whole:7.2f} s {row['reference_pages_per_s']:7.2f} pages/s "
                    f"(its loop alone {ref['seconds']:.2f} s)",
                    flush=True,
                )
                results["rows"].append(row)
    finally:
        tracr("server", "stop")
        stop_process_group(stub)
        for burner in burners:
            burner.terminate()
    results["load_after"] = os.getloadavg()
    (results_dir / "whole_process.json").write_text(json.dumps(results, indent=2))
    print(f"results: {results_dir / 'whole_process.json'}")


if __name__ == "__main__":
    main()
