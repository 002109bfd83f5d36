"""What rankings per collection cost: ``tracr report`` on a job in four folders against the same job in one.

    python bench/report_bench.py                   # 4 models x 200 PDFs x 10 pages, 4,000 votes
    python bench/report_bench.py --pdfs 50 --votes 1000 --repeat 1

Two synthetic output trees (``tracr.testing.output_tree``) identical but for where the
PDFs were: one input folder (one collection, the whole job) or four (four collections
plus the whole job). The same votes are written to both. Timed, with a warm page cache:

* load: :func:`tracr.reporting.job_data.load_job_data` (metadata, journals, votes, scores);
* rankings: :func:`tracr.reporting.rankings.collection_boards` (1,000 bootstrap rounds each);
* HTML: :func:`tracr.reporting.content.build_content` with 4 disagreement pages (the
  synthetic PDFs do not exist, so no page image is rendered) and :func:`render_html`.

Reported as the four-folder time over the one-folder time (the cost of ranking per
collection) and the HTML time over the rankings time; medians of ``--repeat`` runs.
Results go to ``bench/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracr.outputs.layout import OutputLayout  # noqa: E402
from tracr.reporting.content import build_content  # noqa: E402
from tracr.reporting.html import render_html  # noqa: E402
from tracr.reporting.job_data import load_job_data  # noqa: E402
from tracr.reporting.rankings import collection_boards  # noqa: E402
from tracr.review.votes import PageRef, Vote  # noqa: E402
from tracr.testing.output_tree import ModelProfile, TreeSpec, generate_tree  # noqa: E402

MODELS = (ModelProfile("model-a", noise=0.02, fail_rate=0.0), ModelProfile("model-b", noise=0.08, fail_rate=0.0))
MODELS += (ModelProfile("model-c", noise=0.2, fail_rate=0.0), ModelProfile("model-d", noise=0.0, fail_rate=0.0))


def _write_votes(root: Path, job_id: str, spec: TreeSpec, count: int, seed: int) -> None:
    rng = random.Random(seed)
    models = [m.slug for m in spec.models]
    lines = []
    for k in range(count):
        pdf, page = f"doc-{rng.randrange(spec.pdfs):05d}", rng.randint(1, spec.pages_per_pdf)
        left, right = rng.sample(models, 2)
        vote = Vote(
            vote_id=f"v{k}",
            job_id=job_id,
            left=PageRef(model_slug=left, run=1, pdf_slug=pdf, page=page),
            right=PageRef(model_slug=right, run=1, pdf_slug=pdf, page=page),
            outcome=rng.choice(["left", "right", "tie"]),  # type: ignore[arg-type]
            voter="bench",
            created_at=f"2026-11-21T09:00:{k % 60:02d}.{k:06d}Z",
        )
        lines.append(vote.model_dump_json())
    path = OutputLayout(root).votes(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _time(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def measure(root: Path, job_id: str) -> dict[str, float]:
    load_s, data = _time(lambda: load_job_data(root, job_id))
    boards_s, boards = _time(lambda: collection_boards(data, rounds=1000))  # type: ignore[arg-type]
    html_s, _ = _time(lambda: render_html(build_content(root, data, rounds=1000, pages=4)))  # type: ignore[arg-type]
    return {"load_s": load_s, "rankings_s": boards_s, "html_s": html_s, "boards": float(len(boards))}  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=200)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--votes", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "report.json"))
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the synthetic PDFs are not on disk: no page images, by design
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for folders in (1, 4):
            root = Path(tmp) / f"folders-{folders}"
            spec = TreeSpec(job_id="bench", models=MODELS, pdfs=args.pdfs, pages_per_pdf=args.pages, chars_per_page=1200, folders=folders)
            generate_tree(root, spec)
            _write_votes(root, "bench", spec, args.votes, seed=1)
            runs = [measure(root, "bench") for _ in range(args.repeat)]
            results[f"folders_{folders}"] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    one, four = results["folders_1"], results["folders_4"]
    summary = {
        "pages": args.pdfs * args.pages,
        "models": len(MODELS),
        "votes": args.votes,
        "repeat": args.repeat,
        "one_folder": one,
        "four_folders": four,
        "rankings_four_over_one": four["rankings_s"] / one["rankings_s"],
        "load_four_over_one": four["load_s"] / one["load_s"],
        "html_over_rankings_four": four["html_s"] / four["rankings_s"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
