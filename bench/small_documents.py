"""A folder of one-page PDFs: a whole ``tracr run`` against the bare loop, pages/s and peak memory.

    python bench/small_documents.py                      # 500 and 2,000 one-page PDFs
    python bench/small_documents.py --pdfs 500,2000,20000 --repeat 2

Invoices, forms, receipts and scanned letters arrive as many small PDFs, not one
big one. Both sides OCR the same folder of generated one-page PDFs against one
loopback stub server process (``tracr.testing.openai_stub``) answering each
request in ``--latency`` seconds, ``--inflight`` requests at a time:

* reference: the hand-written asyncio loop of ``bench/throughput.py`` over every
  (PDF, page 1) of the folder, as a whole process (spawn to exit);
* tracr: ``tracr run CONFIG`` as a user starts it, spawn to exit, with the
  tracr-managed local Prefect server already running (warm), writing the whole
  output tree.

Reported per size: pages/s of both and their ratio (goal >= 0.9), the cost per
PDF over the loop's ((tracr s - loop s) / PDFs), the seconds from spawning
``tracr run`` to its run going ``running`` (start-up and inspecting the PDFs) and
from the run's end to the process's exit (the end of the job), and the peak RSS
of each side (``wait4``: the largest of the process and each child it reaped,
for tracr its render workers and the index refresh), for tracr's main process
also sampled every 0.25 s, over the whole job and until its run ended.
Results go to ``bench/results/small_documents.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from throughput import bench_job_config, reference_loop_over  # noqa: E402  (the bare loop, unchanged)


def make_corpus(folder: Path, count: int) -> Path:
    """``count`` different one-page PDFs (made once, then reused)."""
    import pymupdf

    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.pdf")))
    for number in range(have, count):
        doc = pymupdf.open()
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 72), f"Invoice {number}", fontsize=18)
        for line in range(20):
            page.insert_text((72, 110 + line * 20), f"Item {line} of invoice {number}: 1 x widget at 9.99", fontsize=10)
        doc.save(folder / f"doc-{number:06d}.pdf")
        doc.close()
    return folder


class RssSampler(threading.Thread):
    """The RSS of one process every ``period_s``, with when (what ``wait4`` cannot say: which phase the peak is in)."""

    def __init__(self, pid: int, period_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.period_s, self.samples = pid, period_s, []
        self.stop = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.is_set():
            try:
                with open(f"/proc/{self.pid}/statm") as statm:
                    self.samples.append((time.time(), int(statm.read().split()[1]) * page / 2**20))
            except (OSError, ValueError, IndexError):
                return
            self.stop.wait(self.period_s)

    def peak_before(self, moment: float) -> float:
        return round(max((rss for at, rss in self.samples if at <= moment), default=0.0), 1)


def _wait_with_usage(proc: subprocess.Popen) -> float:
    """Wait for ``proc``; its peak RSS in MiB (the largest of it and the children it reaped)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return round(usage.ru_maxrss / 1024, 1)


def reference(folder: Path, base_url: str, inflight: int, env: dict) -> dict:
    """The bare loop over the folder, spawn to exit."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", "--folder", str(folder), "--base-url", base_url, "--inflight", str(inflight)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        peak = _wait_with_usage(proc)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    result = next((json.loads(line[7:]) for line in text.splitlines() if line.startswith("RESULT ")), None)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"reference failed ({proc.returncode}):\n{text[-3000:]}")
    return {"pages": result["pages"], "seconds": round(seconds, 3), "loop_seconds": result["seconds"], "peak_rss_mib": peak}


def tracr_run(folder: Path, base_url: str, inflight: int, env: dict, work: Path) -> dict:
    """``tracr run`` over the folder, spawn to exit."""
    import yaml

    job_id = f"docs-{time.time_ns()}"
    config = bench_job_config(job_id, folder, base_url, inflight, None)
    path = work / f"{job_id}.yaml"
    path.write_text(yaml.safe_dump(config))
    outputs = work / "out"
    spawned = time.time()
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", str(path), "--outputs", str(outputs), "--no-progress"],
            cwd=REPO,
            env={**env, "BENCH_KEY": "bench"},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        peak = _wait_with_usage(proc)
        seconds = time.perf_counter() - started
        exited = time.time()
        sampler.stop.set()
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"tracr run failed ({proc.returncode}):\n{text[-3000:]}")
    meta = json.loads((outputs / job_id / "stub-ocr" / "run-1" / "run_metadata.json").read_text())
    at = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()  # noqa: E731
    ended = at(meta["ended_at"])
    running = next((at(h["at"]) for h in meta.get("status_history", []) if h["status"] == "running"), ended)
    rollup = meta.get("rollup", {})
    return {
        "pages": rollup.get("pages_done", 0),
        "failed": rollup.get("pages_failed", 0),
        "seconds": round(seconds, 3),
        "run_seconds": rollup.get("wall_seconds"),
        "peak_rss_before_run_end_mib": sampler.peak_before(ended),
        "peak_rss_main_mib": sampler.peak_before(exited),
        "spawn_to_running_s": round(running - spawned, 3),
        "run_end_to_exit_s": round(exited - ended, 3),
        "peak_rss_mib": peak,
    }


def child_main(args: argparse.Namespace) -> None:
    items = [(pdf, 1) for pdf in sorted(Path(args.folder).glob("*.pdf"))]
    result = asyncio.run(reference_loop_over(items, args.base_url, args.inflight))
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", default="500,2000", help="corpus sizes, comma-separated (default: 500,2000)")
    parser.add_argument("--latency", type=float, default=0.1, help="stub seconds per request (default: 0.1)")
    parser.add_argument("--inflight", type=int, default=64, help="requests in flight (default: 64)")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per size (default: 1)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    from tasks.serving.process import find_free_port
    from tracr.testing.processes import start_server_process, stop_process_group

    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.pdfs.split(",") if s]
    stub, port = start_server_process(
        ["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps({"latency_s": args.latency, "output_tokens": 64})]
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    work = Path(tempfile.mkdtemp(prefix="tracr-bench-docs-"))
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # both sides use cached bytecode
    env = {k: v for k, v in base_env.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(work / "client"),
        TRACR_HOME=str(work / "home"),
        TRACR_PREFECT_PORT=str(find_free_port()),
        TRACR_PREFECT_PORT_FALLBACKS="0",
    )
    ref_env = {**base_env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    def tracr(*a: str) -> None:
        subprocess.run([sys.executable, "-m", "cli.main", *a], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    results: dict = {"latency_s": args.latency, "inflight": args.inflight, "cpus": os.cpu_count(), "rows": []}
    try:
        tracr("server", "start")
        tracr_run(make_corpus(results_dir / "corpus-1page" / "20", 20), base_url, args.inflight, env, work)  # warm-up
        for count in sizes:
            folder = make_corpus(results_dir / "corpus-1page" / str(count), count)
            for _ in range(args.repeat):
                ref = reference(folder, base_url, args.inflight, ref_env)
                run = tracr_run(folder, base_url, args.inflight, env, work)
                row = {
                    "pdfs": count,
                    "reference": {**ref, "pages_per_s": round(ref["pages"] / ref["seconds"], 2)},
                    "tracr": {**run, "pages_per_s": round(run["pages"] / run["seconds"], 2)},
                }
                row["ratio"] = round(row["tracr"]["pages_per_s"] / row["reference"]["pages_per_s"], 3)
                row["extra_ms_per_pdf"] = round((run["seconds"] - ref["seconds"]) / count * 1000, 2)
                results["rows"].append(row)
                print(
                    f"{count:6d} PDFs  bare loop {ref['seconds']:7.2f} s {row['reference']['pages_per_s']:7.2f} pages/s "
                    f"peak {ref['peak_rss_mib']} MiB | tracr run {run['seconds']:7.2f} s {row['tracr']['pages_per_s']:7.2f} pages/s "
                    f"peak {run['peak_rss_mib']} MiB (main process {run['peak_rss_main_mib']}, until the run's end {run['peak_rss_before_run_end_mib']}) | ratio {row['ratio']:.3f}, {row['extra_ms_per_pdf']:+.2f} ms/PDF, "
                    f"spawn to running {run['spawn_to_running_s']:.2f} s, run end to exit {run['run_end_to_exit_s']:.2f} s",
                    flush=True,
                )
    finally:
        tracr("server", "stop")
        stop_process_group(stub)
    (results_dir / "small_documents.json").write_text(json.dumps(results, indent=2))
    print(f"results: {results_dir / 'small_documents.json'}")


if __name__ == "__main__":
    main()
