"""What resuming costs: skipping pages already written, against processing them.

    python bench/resume_bench.py                 # 10,000 pages
    python bench/resume_bench.py --pages 10000 --repeat 3

One generated PDF of ``--pages`` pages goes through the PDF task's body
(``tasks.ocr.pdf_task.process_pdf``, the code a run executes) twice:

* process: every page through an engine that answers at once, so only tracr's
  own per-page work (markdown file, journal line, rollups, ``pdf_metadata.json``)
  is timed: the lower bound of processing a page with any real model (a real
  one adds rendering and the request: ~60 pages/s on 2 cores, see benchmarks.md);
* resume: the same call with ``resume`` on over the finished PDF, with an engine
  that fails if called: every page is skipped (journal read once, folder listed
  once, ``pdf_metadata.json`` written once), nothing redone.

Reported: seconds for each, pages/s, and the ratio resume / process (against
that lower bound, so the real saving is larger). The target is resume under 1 s
for 10,000 finished pages. Results go to ``bench/results/resume.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tasks.ocr.pdf_task import RunContext, process_pdf  # noqa: E402
from tasks.ocr.request import OcrResult  # noqa: E402
from tracr.outputs.layout import RunLocation  # noqa: E402
from tracr.outputs.rollup import Rollup  # noqa: E402
from tracr.run.plan import PdfPlan  # noqa: E402


class InstantEngine:
    """A page engine that answers at once: isolates tracr's per-page bookkeeping."""

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        return OcrResult(
            text=f"page {page}\n\ntext of page {page}", attempts=1, latency_s=0.0, ttft_s=0.0, input_tokens=100, output_tokens=10
        )


def make_pdf(path: Path, pages: int) -> Path:
    import pymupdf

    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 72), f"Resume benchmark page {number}", fontsize=14)
    doc.save(path)
    return path


async def one_pass(pdf: PdfPlan, location: RunLocation, engine, resume: bool) -> tuple[float, RunContext]:
    ctx = RunContext(
        engine=engine, location=location, slots=asyncio.Semaphore(64), rollup=Rollup(pages_total=len(pdf.pages)), resume=resume
    )
    started = time.perf_counter()
    result = await process_pdf(pdf, ctx)
    elapsed = time.perf_counter() - started
    assert result.status == "completed", result
    return elapsed, ctx


async def measure(pages: int, workdir: Path) -> dict:
    pdf_path = make_pdf(workdir / "big.pdf", pages)
    pdf = PdfPlan(path=str(pdf_path), slug="big", page_count=pages, pages=list(range(1, pages + 1)), size_bytes=pdf_path.stat().st_size)
    location = RunLocation(workdir / "out", "bench", "instant", 1)
    location.run_dir.mkdir(parents=True)
    processed, ctx = await one_pass(pdf, location, InstantEngine(), resume=False)
    assert ctx.rollup.pages_done == pages
    resumed, ctx = await one_pass(pdf, location, _Refuse(), resume=True)
    assert ctx.pages_skipped == pages and ctx.rollup.pages_done == pages
    shutil.rmtree(location.root)
    return {
        "process_s": round(processed, 3),
        "resume_s": round(resumed, 4),
        "process_pages_per_s": round(pages / processed, 1),
        "ratio_resume_over_process": round(resumed / processed, 5),
    }


class _Refuse:
    """An engine that must not be called: a resumed run over finished pages does no page work."""

    async def run_page(self, pdf_path: str, page: int) -> OcrResult:
        raise AssertionError(f"page {page} was redone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="tracr-resume-bench-") as tmp:
            runs.append(asyncio.run(measure(args.pages, Path(tmp))))
            print(json.dumps(runs[-1]), flush=True)
    summary = {
        "resume_s_median": statistics.median(r["resume_s"] for r in runs),
        "resume_s_max": max(r["resume_s"] for r in runs),
        "process_s_median": statistics.median(r["process_s"] for r in runs),
        "ratio_median": statistics.median(r["ratio_resume_over_process"] for r in runs),
    }
    result = {"pages": args.pages, "runs": runs, "summary": summary}
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "resume.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
