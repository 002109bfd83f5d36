"""Speed of tracr.scoring, and judge calls saved by early stopping, on synthetic jobs.

    python bench/scoring_bench.py memory            # the checks alone, 10,000 pages generated in memory
    python bench/scoring_bench.py job               # a 10,000-page output tree scored end to end (score_job_now)
    python bench/scoring_bench.py job --pages 2000 --seed 1
    python bench/judge_early_stop.py                # the LLM judge with and without early stopping

Sections (one process each, single core for the scoring itself):

* ``memory``: ``check_page`` (all checks, expected script given) and olmOCR-Bench
  scoring of five tests per page (present, absent, order, table, baseline) through
  ``run_repeats``, on page strings held in memory.
* ``job``: a real output tree (``tasks.scoring.importing.write_run``: journals, metadata,
  one ``.md`` per page) of ``--pages`` pages = 4 models x 25 PDFs x pages/100 pages,
  a tests file with five tests per distinct page (olmOCR-Bench has about five per
  page), scored by ``tasks.scoring.score.score_job_now`` -- what ``tracr score`` runs, minus
  Prefect. Its steps are also timed one by one. The reference, in the same run, is
  reading the page files (``Path.read_text`` of every ``.md``), the least any scorer
  must do; the whole call is reported as a ratio against it.

Judge calls saved by early stopping are measured by ``bench/judge_early_stop.py``.

Pages mix prose, markdown and HTML tables, and a few failures (loops, blank pages,
Cyrillic pages, broken tables). Prints pages/s by wall clock and by CPU time (the
CPU figure is the one that does not depend on what else the machine is running).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracr.scoring.bench_tests import BenchTest, parse_test, run_repeats  # noqa: E402
from tracr.scoring.health import check_page  # noqa: E402

WORDS = (
    "the of and water treatment plant report site level measured value annual quality north south results "
    "sample analysis average standard method data figure section increase decrease monitoring station"
).split()


def make_page(rng: random.Random, index: int) -> tuple[str, str]:
    """One ~3 KB page and its finish reason; about 1 page in 20 is unhealthy."""
    kind = index % 20
    body = " ".join(rng.choice(WORDS) for _ in range(380))
    table = "| Site | pH | Volume |\n|---|---|---|\n" + "".join(
        f"| S{i} | {rng.uniform(6, 8):.1f} | {rng.randint(1, 99)} |\n" for i in range(8)
    )
    html = (
        "<table><tr><th>Region</th><th colspan='2'>Metals</th></tr>"
        + "".join(f"<tr><td>R{i}</td><td>{rng.randint(1, 30)}</td><td>0.0{i}</td></tr>" for i in range(4))
        + "</table>"
    )
    page = f"# Report page {index}\n\n## Introduction\n\n{body[:1200]}\n\n{table}\n## Methods\n\n{body[1200:]}\n\n{html}\n"
    if kind == 0:
        return page[:800] + "the results of the sample " * 120, "length"
    if kind == 1:
        return "", "stop"
    if kind == 2:
        return "Отчёт о качестве воды. " * 100, "stop"
    if kind == 3:
        return page.replace("</table>", ""), "stop"
    return page, "stop"


def make_tests(index: int) -> list[BenchTest]:
    base: dict[str, object] = {"pdf": f"job/doc{index}.pdf", "page": 1}
    specs: list[dict[str, object]] = [
        {"type": "present", "text": "Introduction", "id": f"{index}-p"},
        {"type": "absent", "text": "CONFIDENTIAL DRAFT", "id": f"{index}-a"},
        {"type": "order", "before": "Introduction", "after": "Methods", "id": f"{index}-o"},
        {"type": "table", "cell": "S3", "right": "7.0", "top_heading": "Site", "max_diffs": 1, "id": f"{index}-t"},
        {"type": "baseline", "id": f"{index}-b"},
    ]
    return [parse_test({**base, **spec}) for spec in specs]


def timed(label: str, pages: int, work: Callable[[], object]) -> tuple[float, float]:
    """Run ``work`` once; print and return (wall, CPU) seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<34} {pages / wall:>10,.0f} pages/s wall   {pages / cpu:>10,.0f} pages/s CPU   ({wall:.2f} s wall, {cpu:.2f} s CPU)")
    return wall, cpu


def memory_section(args: argparse.Namespace) -> None:
    """The checks alone on page strings in memory (no files)."""
    rng = random.Random(args.seed)
    pages = [make_page(rng, i) for i in range(args.pages)]
    tests = [make_tests(i) for i in range(args.pages)]
    mean_kb = sum(len(p.encode()) for p, _ in pages) / len(pages) / 1024
    print(f"{args.pages:,} synthetic pages, mean {mean_kb:.1f} KB")

    kinds: Counter[str] = Counter()

    def health() -> None:
        for markdown, finish in pages:
            for issue in check_page(markdown, finish, expected_scripts={"Latin"}):
                kinds[issue.kind.value] += 1

    passed: Counter[str] = Counter()

    def scoring() -> None:
        for (markdown, _), page_tests in zip(pages, tests, strict=False):
            for test in page_tests:
                passed[test.type] += run_repeats(test, [markdown]).passed

    timed("health check_page", args.pages, health)
    timed("olmOCR tests (5 per page)", args.pages, scoring)
    print("issues by kind:", dict(sorted(kinds.items())))
    print("tests passed by type:", dict(sorted(passed.items())), f"of {args.pages} each")


# --- job: a real output tree scored end to end --------------------------------------------------------

MODELS = ("clean", "typos", "no-tables", "loops")
PDFS = 25


def model_page(model: str, markdown: str, finish: str, rng: random.Random) -> tuple[str, str]:
    """How each synthetic model departs from the shared page: typos, dropped tables, more loops."""
    if model == "typos":
        words = markdown.split(" ")
        for i in rng.sample(range(len(words)), k=len(words) // 25):
            words[i] = words[i][::-1]
        return " ".join(words), finish
    if model == "no-tables":
        cut = markdown.find("| Site")
        return (markdown[:cut] + markdown[markdown.find("## Methods") :] if cut >= 0 else markdown), finish
    if model == "loops" and rng.random() < 0.1:
        return markdown[:600] + "the results of the sample " * 150, "length"
    return markdown, finish


def job_tests(pdf_slug: str, page: int, index: int) -> list[dict[str, Any]]:
    """Five olmOCR-Bench tests of one page, as JSON lines name them (``pdf`` relative to the benchmark)."""
    base = {"pdf": f"bench/{pdf_slug}.pdf", "page": page}
    tid = f"{pdf_slug}-{page}"
    return [
        {**base, "id": f"{tid}-p", "type": "present", "text": f"Report page {index}"},
        {**base, "id": f"{tid}-a", "type": "absent", "text": "CONFIDENTIAL DRAFT"},
        {**base, "id": f"{tid}-o", "type": "order", "before": "Introduction", "after": "Methods"},
        {**base, "id": f"{tid}-t", "type": "table", "cell": "S3", "top_heading": "Site", "max_diffs": 1},
        {**base, "id": f"{tid}-b", "type": "baseline"},
    ]


def build_job_tree(root: Path, pages: int, seed: int) -> tuple[Path, int]:
    """``pages`` pages = 4 models x 25 PDFs x n pages in ``root``; returns the tests file and its test count."""
    from tasks.scoring.importing import ensure_job, write_run
    from tracr.outputs.layout import OutputLayout

    per_pdf = max(1, pages // (len(MODELS) * PDFS))
    rng = random.Random(seed)
    layout = OutputLayout(root)
    pdfs = [Path(f"/data/bench/doc{k:02d}.pdf") for k in range(PDFS)]
    ensure_job(layout, "bench", pdfs, page_counts=dict.fromkeys(pdfs, per_pdf))
    shared = {(f"doc{k:02d}", p): make_page(rng, k * per_pdf + p) for k in range(PDFS) for p in range(1, per_pdf + 1)}
    for model in MODELS:
        texts: dict[tuple[str, int], str | None] = {}
        finish: dict[tuple[str, int], str] = {}
        for key, (markdown, reason) in shared.items():
            texts[key], finish[key] = model_page(model, markdown, reason, rng)
        write_run(layout, "bench", model, texts, finish_reasons=finish, tokens=dict.fromkeys(texts, (1500, 900)))
    tests = root / "tests.jsonl"
    lines = [json.dumps(t) for (slug, page) in shared for t in job_tests(slug, page, int(slug[3:]) * per_pdf + page)]
    tests.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tests, len(lines)


def read_pages(root: Path) -> int:
    """The reference: read every page file of the job (what any scorer must at least do)."""
    size = 0
    for path in (root / "bench").glob("*/run-*/*/*.md"):
        size += len(path.read_text(encoding="utf-8", errors="replace"))
    return size


def job_section(args: argparse.Namespace) -> None:
    """Score a real output tree of ``--pages`` pages with ``score_job_now``, step by step and whole."""
    from tasks.scoring.score import _summary, load_markdown, plan_scoring, score_job_now, write_scores
    from tracr.config.scoring import ModelPrice, ScoreRequest
    from tracr.scoring.bench_tests import ScoringOptions
    from tracr.scoring.job import health_rows, test_rows

    root = Path(tempfile.mkdtemp(prefix="tracr-score-bench-"))
    try:
        started = time.perf_counter()
        tests_file, n_tests = build_job_tree(root, args.pages, args.seed)
        pages = sum(1 for _ in (root / "bench").glob("*/run-*/*/*.md"))
        mb = sum(p.stat().st_size for p in (root / "bench").glob("*/run-*/*/*.md")) / 1e6
        print(f"tree: {pages:,} pages ({len(MODELS)} models x {PDFS} PDFs), {mb:.1f} MB of markdown, {n_tests:,} tests")
        print(f"      written in {time.perf_counter() - started:.1f} s (not timed below)")
        request = ScoreRequest(
            job_id="bench",
            outputs=str(root),
            tests=str(tests_file),
            prices={m: ModelPrice(input_per_million=0.4, output_per_million=1.6) for m in MODELS},
        )
        outcomes = n_tests * len(MODELS)
        read_pages(root)  # warm the page cache for every timing below
        ref_wall, ref_cpu = timed("reference: read the page files", pages, lambda: read_pages(root))

        plan: Any = None
        models: Any = None

        def plan_step() -> None:
            nonlocal plan
            plan = plan_scoring(request)

        def load_step() -> None:
            nonlocal models
            models = load_markdown(plan)

        timed("plan (journals, tests matched)", pages, plan_step)
        timed("load markdown", pages, load_step)
        steps: dict[str, Any] = {}

        def health_step() -> None:
            steps["health"] = health_rows(models)

        def tests_step() -> None:
            steps["tests"] = test_rows(plan.tests, models, ScoringOptions())

        def summary_step() -> None:
            summary = _summary(plan, steps["health"][1], steps["tests"][1], None)
            write_scores(request.outputs, request.job_id, steps["health"][0], steps["tests"][0], summary)

        timed("health checks (health_rows)", pages, health_step)
        tests_wall, _ = timed(f"olmOCR tests (test_rows, {n_tests // max(1, pages // len(MODELS))}/page)", pages, tests_step)
        print(f"{'':<34} {outcomes / tests_wall:>10,.0f} outcomes/s wall ({outcomes:,} test x model outcomes)")
        timed("summary (bootstrap, paired) + write", pages, summary_step)

        summary: dict[str, Any] = {}

        def whole() -> None:
            summary.update(score_job_now(request))

        whole_wall, whole_cpu = timed("whole: score_job_now", pages, whole)
        print(f"whole / reference: {whole_wall / ref_wall:.1f}x wall, {whole_cpu / ref_cpu:.1f}x CPU")
        for slug, entry in sorted(summary["models"].items()):
            tests = entry.get("tests") or {}
            print(
                f"  {slug:<10} unhealthy {entry['health']['failure_rate']:.1%}  tests passed {tests.get('passed')}/{tests.get('n_tests')}"
                f"  overall {tests.get('overall', {}).get('estimate', 0):.3f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("section", nargs="?", choices=("memory", "job"), default="memory")
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    (job_section if args.section == "job" else memory_section)(args)


if __name__ == "__main__":
    main()
