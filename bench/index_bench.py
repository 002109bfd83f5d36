"""How fast the DuckDB index builds and refreshes, against merely reading the files.

    python bench/index_bench.py                     # 100,000 pages: 4 models x 2,500 PDFs x 10 pages
    python bench/index_bench.py --pdfs 250 --repeat 1

A synthetic output tree is laid out exactly as tracr writes it
(``tracr.testing.output_tree``: journals, markdown, run/PDF/model/job metadata).
Then, all with a warm page cache:

* reference: a plain Python walk that opens and reads every file of the tree
  (``read()`` of each ``.md``, ``pages.jsonl`` and metadata file), no parsing;
* from scratch: ``refresh_index(rebuild=True)`` with no index present;
* no-change refresh: ``refresh_index`` when nothing changed (no write happens);
* one run changed: a page record appended to one journal, then ``refresh_index``
  (that run is re-read, the other runs copied from the previous index);
* a reader query: open ``read_index`` and fetch the 20 slowest pages.

Medians of ``--repeat`` runs, wall time and (less sensitive to other load on
the machine) the CPU seconds of the process, DuckDB's threads included. Targets: from scratch under 30 s, no-change under
1 s for 100,000 pages. Results go to ``bench/results/index.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracr.index.store import index_path, read_index, refresh_index  # noqa: E402
from tracr.outputs.journal import PageRecord  # noqa: E402
from tracr.testing.output_tree import ModelProfile, TreeSpec, generate_tree  # noqa: E402


def read_every_file(root: Path) -> tuple[int, int]:
    """The reference: open and read each file under ``root`` once; returns (files, bytes)."""
    files = size = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if name.startswith(".") or name.endswith(".duckdb"):
                continue
            with open(os.path.join(dirpath, name), "rb") as handle:
                size += len(handle.read())
            files += 1
    return files, size


CPU: dict[int, float] = {}


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median wall seconds of ``repeat`` calls (median CPU seconds of this process kept in ``CPU``)."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU[id(fn)] = statistics.median(cpu)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--pdfs", type=int, default=2500)
    parser.add_argument("--pages-per-pdf", type=int, default=10)
    parser.add_argument("--chars", type=int, default=1800, help="average markdown characters per page")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="generate into this folder and keep it (default: a temp folder)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "index.json"))
    args = parser.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tracr-index-bench-"))
    try:
        profiles = tuple(ModelProfile(f"model-{i}", noise=0.02 * (i + 1)) for i in range(args.models))
        spec = TreeSpec(job_id="bench", models=profiles, pdfs=args.pdfs, pages_per_pdf=args.pages_per_pdf, chars_per_page=args.chars)
        if not (root / "bench").is_dir():
            start = time.perf_counter()
            counts = generate_tree(root, spec)
            print(f"generated {counts} in {time.perf_counter() - start:.1f} s under {root}", flush=True)
        reference = lambda: read_every_file(root)  # noqa: E731
        reference_s, (files, size) = timed(reference, args.repeat)
        reference_cpu = CPU[id(reference)]
        print(f"reference: read {files:,} files ({size / 1e6:.0f} MB) in {reference_s:.2f} s", flush=True)

        def scratch():
            index_path(root).unlink(missing_ok=True)
            return refresh_index(root, rebuild=True)

        scratch_s, stats = timed(scratch, args.repeat)
        scratch_cpu = CPU[id(scratch)]
        pages = stats.pages
        print(f"from scratch: {pages:,} pages in {scratch_s:.2f} s ({pages / scratch_s:,.0f} pages/s)", flush=True)
        nochange_s, nochange = timed(lambda: refresh_index(root), max(args.repeat, 5))
        assert not nochange.written, "a no-change refresh must not write"
        print(f"no-change refresh: {nochange_s * 1000:.0f} ms", flush=True)

        journal = next((root / "bench" / "model-0" / "run-1").glob("*/pages.jsonl"))

        def one_run_changed():
            with open(journal, "a", encoding="utf-8") as handle:
                handle.write(PageRecord(page=1, status="failed", attempts=1, error="bench", error_class="timeout").to_json() + "\n")
            return refresh_index(root)

        changed_s, changed = timed(one_run_changed, args.repeat)
        assert changed.runs_read == 1, changed
        print(f"one run changed: {changed_s:.2f} s ({changed.runs_read} run re-read, {changed.runs_unchanged} copied)", flush=True)

        def query():
            with read_index(root) as con:
                return con.execute(
                    "SELECT job_id, model_slug, pdf_slug, page, latency_s FROM pages ORDER BY latency_s DESC LIMIT 20"
                ).fetchall()

        query_s, rows = timed(query, max(args.repeat, 5))
        print(f"reader open + slowest-pages query: {query_s * 1000:.0f} ms", flush=True)

        result = {
            "pages": pages,
            "files": files,
            "bytes": size,
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "reference_read_all_files_s": round(reference_s, 3),
            "from_scratch_s": round(scratch_s, 3),
            "from_scratch_over_reference": round(scratch_s / reference_s, 2),
            "reference_cpu_s": round(reference_cpu, 3),
            "from_scratch_cpu_s": round(scratch_cpu, 3),
            "from_scratch_cpu_over_reference_cpu": round(scratch_cpu / reference_cpu, 2),
            "pages_per_s": round(pages / scratch_s),
            "no_change_refresh_s": round(nochange_s, 4),
            "one_run_changed_s": round(changed_s, 3),
            "reader_query_s": round(query_s, 4),
            "index_bytes": index_path(root).stat().st_size,
            "targets": {"from_scratch_s": 30, "no_change_refresh_s": 1},
        }
        print(json.dumps(result, indent=2))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
