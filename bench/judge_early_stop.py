"""LLM-judge calls saved by early stopping, against judging every pair, with a noisy judge of known taste.

    python bench/judge_early_stop.py                       # 5 models x 40 pages, 3 seeds
    python bench/judge_early_stop.py --pages 20 --repeat 1

The job: one generated PDF of ``--pages`` pages and five models whose outputs differ
on every page. The judge is the loopback OpenAI-compatible stub
(``tracr.testing.openai_stub``, a real HTTP server process) scripted as a noisy
judge: each model has a true strength, and in each order of a pair output A wins
with the Bradley–Terry probability ``1 / (1 + exp(s_B - s_A))``, so a pair is a win
only when both orders happen to agree (else a tie), as with a real judge that is
right more often than not. ``tasks.scoring.judge.judge_job`` (what ``tracr judge`` runs) is
called twice on copies of the same job: with early stopping (the default) and with
``early_stop=False`` (every pair judged, the budget set to all of them). Reported
per seed: calls made, calls saved, and whether the ranking of the judge's votes
(Bradley–Terry, ``tracr.review.ratings.leaderboard``) is the true order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pymupdf  # noqa: E402

from tasks.scoring.importing import ensure_job, write_run  # noqa: E402
from tasks.scoring.judge import JudgeSettings, judge_job  # noqa: E402
from tracr.outputs.layout import OutputLayout  # noqa: E402
from tracr.review.ratings import leaderboard  # noqa: E402
from tracr.review.votes import read_votes  # noqa: E402
from tracr.testing.processes import start_server_process, stop_process_group  # noqa: E402

#: True strengths (Bradley–Terry log-odds); neighbours 0.6 apart: the stronger wins one order 65% of the time.
STRENGTHS = {"model-e": 0.0, "model-d": 0.6, "model-c": 1.2, "model-b": 1.8, "model-a": 2.4}
KEY = "sk-bench-judge"


def make_job(root: Path, pages: int) -> None:
    """One PDF and five models' outputs; each output carries its model's marker, which the stub judge reads."""
    pdf = root / "in" / "doc.pdf"
    pdf.parent.mkdir(parents=True)
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        page.insert_text((40, 60), f"Water quality report, page {number}", fontsize=16)
        page.insert_text((40, 100), "Sampling sites, methods and results of the annual survey.", fontsize=11)
    doc.save(pdf)
    layout = OutputLayout(root / "out")
    ensure_job(layout, "judged", [pdf], page_counts={pdf: pages})
    for model in STRENGTHS:
        write_run(layout, "judged", model, {("doc", p): f"[{model}] Water quality report, page {p}." for p in range(1, pages + 1)})


def judge(outputs: Path, port: int, *, early_stop: bool, budget: int, seed: int) -> tuple[dict[str, Any], list[str], float]:
    settings = JudgeSettings(
        model="stub-ocr",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=KEY,
        budget=budget,
        seed=seed,
        early_stop=early_stop,
        longest_side_px=640,
    )
    started = time.perf_counter()
    record = asyncio.run(judge_job(outputs, "judged", settings))
    wall = time.perf_counter() - started
    votes = [v for v in read_votes(outputs, "judged") if v.voter == "judge:stub-ocr"]
    return record, [r.model for r in leaderboard(votes, rounds=0)], wall


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3, help="seeds (of the stub judge's noise and the page order)")
    args = parser.parse_args(argv)
    truth = sorted(STRENGTHS, key=lambda m: -STRENGTHS[m])
    pairs = len(STRENGTHS) * (len(STRENGTHS) - 1) // 2
    exhaustive = 2 * pairs * args.pages
    print(f"{len(STRENGTHS)} models x {args.pages} pages: {pairs * args.pages} pairs, {exhaustive} calls to judge them all")
    print(f"true order: {' > '.join(truth)} (strengths {list(STRENGTHS.values())[::-1]})")
    rows = []
    for seed in range(args.repeat):
        work = Path(tempfile.mkdtemp(prefix="tracr-judge-bench-"))
        config = {"api_key": KEY, "judge": {"strengths": {f"[{m}]": s for m, s in STRENGTHS.items()}, "seed": seed}}
        proc, port = start_server_process(["tracr.testing.openai_stub", "--port", "0", "--config", json.dumps(config)])
        try:
            make_job(work, args.pages)
            shutil.copytree(work / "out", work / "full")
            early, early_rank, early_wall = judge(work / "out", port, early_stop=True, budget=exhaustive, seed=seed)
            full, full_rank, full_wall = judge(work / "full", port, early_stop=False, budget=exhaustive, seed=seed)
        finally:
            stop_process_group(proc)
            shutil.rmtree(work, ignore_errors=True)
        saved = 1 - early["calls"] / full["calls"]
        rows.append(saved)
        print(
            f"seed {seed}: early stop {early['calls']} calls ({early_wall:.1f} s, stopped: {early['stopped']}), "
            f"ranking {'= truth' if early_rank == truth else ' > '.join(early_rank)}"
        )
        if early["overlapping"]:
            print(f"        still overlapping at the end: {', '.join(' / '.join(p) for p in early['overlapping'])}")
        print(
            f"        all pairs  {full['calls']} calls ({full_wall:.1f} s, stopped: {full['stopped']}), "
            f"ranking {'= truth' if full_rank == truth else ' > '.join(full_rank)}"
        )
        print(f"        saved {full['calls'] - early['calls']} calls ({saved:.0%}); rankings agree: {early_rank == full_rank}")
    print(f"calls saved: {', '.join(f'{s:.0%}' for s in rows)} (mean {sum(rows) / len(rows):.0%})")


if __name__ == "__main__":
    main()
