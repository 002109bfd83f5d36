"""How fast the reviewer answers a vote, on a job of realistic size.

    python bench/review_bench.py                      # 4 models x 250 PDFs x 8 pages = 8,000 pages
    python bench/review_bench.py --pdfs 1000 --browser

Each vote in the Arena is a Streamlit rerun: append the vote, pick the next pair,
query its two texts, render its page image, draw the page. This measures that
rerun with Streamlit's AppTest (server-side work, in this process) in two ways
in the same run:

* warm — the app as shipped: index queries, arena candidates, page images and
  ratings cached (``st.cache_data``), votes read fresh from ``votes.jsonl``;
* cold — the reference: every cache (data and resource) cleared before each vote, i.e. what each
  vote would cost without the caching (re-open the index, recompute the
  candidates, re-render the page).

With ``--browser`` it also starts ``tracr review`` and times key press → next
pair shown in headless Chromium (Debian's ``/usr/bin/chromium``).
The synthetic tree is :mod:`tracr.testing.output_tree`'s, with real PDFs
written for it so page images are really rendered.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracr.index.store import refresh_index  # noqa: E402
from tracr.testing.output_tree import TreeSpec, generate_tree  # noqa: E402

JOB = "bench-review"


def make_pdfs(root: Path, pdf_dir: Path, pages: int) -> int:
    """Write one real PDF per PDF slug and point every ``pdf_metadata.json`` at it."""
    pdf_dir.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    count = 0
    for meta_path in root.glob(f"{JOB}/*/run-*/*/pdf_metadata.json"):
        meta = json.loads(meta_path.read_text())
        slug = meta["pdf_slug"]
        if slug not in made:
            doc = pymupdf.open()
            for number in range(1, pages + 1):
                page = doc.new_page(width=595, height=842)
                page.insert_text((50, 70), f"{slug} — page {number}", fontsize=20)
                for line in range(40):
                    page.insert_text(
                        (50, 110 + 17 * line),
                        f"Line {line + 1}: invoice total amount due {number * 100 + line} net thirty days",
                        fontsize=10,
                    )
            made[slug] = pdf_dir / f"{slug}.pdf"
            doc.save(made[slug])
        meta["source_path"] = str(made[slug])
        meta_path.write_text(json.dumps(meta, indent=2))
        count += 1
    return count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def app_votes(root: Path, votes: int, *, cold: bool) -> tuple[float, list[float]]:
    """Open the Arena, then cast ``votes`` votes; returns (first load s, per-vote rerun s)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=300)
    started = time.perf_counter()
    at.run()
    at.switch_page("views/arena.py")
    at.run()
    first = time.perf_counter() - started
    assert not at.exception, at.exception
    times = []
    for _ in range(votes):
        if cold:
            st.cache_data.clear()
            st.cache_resource.clear()
        started = time.perf_counter()
        at.button(key="vote-left").click().run()
        times.append(time.perf_counter() - started)
        assert not at.exception, at.exception
        assert at.success, "no reveal after the vote"
    return first, times


def browser_votes(root: Path, votes: int, voter: str) -> list[float]:
    """Key press → next pair shown, in Chromium against a real ``tracr review``."""
    import socket

    import httpx
    from playwright.sync_api import sync_playwright

    from tracr.testing.processes import stop_process_group

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "review", "--outputs", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TRACR_VOTER": voter},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    times = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("reviewer did not start")
            time.sleep(0.25)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            page.goto(f"{url}/arena?job={JOB}")
            page.get_by_role("button", name="Left is better").wait_for(timeout=120_000)
            page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=120_000)
            page.locator("h1").first.click()
            for number in range(1, votes + 1):
                started = time.perf_counter()
                page.keyboard.press("1")
                page.get_by_text(f"{number} yours").wait_for(timeout=60_000)
                page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=60_000)
                page.locator("[data-testid='stImage'] img").first.wait_for(timeout=60_000)
                times.append(time.perf_counter() - started)
            browser.close()
    finally:
        stop_process_group(proc)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=4, choices=range(2, 5))
    parser.add_argument("--pdfs", type=int, default=250)
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--votes", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also time key press to next pair in Chromium")
    parser.add_argument("--tree", help="keep the synthetic tree in this folder and reuse it next time (default: a temporary folder)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tracr-review-bench-") as tmp:
        base = Path(args.tree) if args.tree else Path(tmp)
        root = base / "outputs"
        if (root / JOB).is_dir():
            print(f"tree: reusing {root}")
        else:
            spec = TreeSpec(job_id=JOB, pdfs=args.pdfs, pages_per_pdf=args.pages)
            spec = TreeSpec(job_id=JOB, pdfs=args.pdfs, pages_per_pdf=args.pages, models=spec.models[: args.models])
            started = time.perf_counter()
            counts = generate_tree(root, spec)
            make_pdfs(root, base / "pdfs", args.pages)
            print(
                f"tree: {counts['pages']:,} pages ({counts['failed']} failed), {args.models} models, written in {time.perf_counter() - started:.1f} s"
            )
        stats = refresh_index(root)
        print(f"index: {stats.pages:,} pages in {stats.seconds:.2f} s")
        os.environ["TRACR_OUTPUTS"] = str(root)
        stamp = time.strftime("%H%M%S")  # fresh voters, so a reused tree still has unvoted pairs
        os.environ["TRACR_VOTER"] = f"bench-warm-{stamp}"
        first_warm, warm = app_votes(root, args.votes, cold=False)
        os.environ["TRACR_VOTER"] = f"bench-cold-{stamp}"
        first_cold, cold = app_votes(root, args.votes, cold=True)
        print()
        print(f"{'arena rerun per vote (AppTest)':34} {'median':>9} {'p90':>9} {'first load':>11}")
        print(
            f"{'warm (caches, as shipped)':34} {statistics.median(warm) * 1000:7.0f}ms {percentile(warm, 0.9) * 1000:7.0f}ms {first_warm:10.2f}s"
        )
        print(
            f"{'cold (caches cleared each vote)':34} {statistics.median(cold) * 1000:7.0f}ms {percentile(cold, 0.9) * 1000:7.0f}ms {first_cold:10.2f}s"
        )
        print(f"cold / warm median: {statistics.median(cold) / statistics.median(warm):.1f}x")
        if args.browser:
            clicks = browser_votes(root, args.votes, f"bench-browser-{stamp}")
            print(
                f"browser key press -> next pair shown: median {statistics.median(clicks) * 1000:.0f} ms, p90 {percentile(clicks, 0.9) * 1000:.0f} ms over {len(clicks)} votes"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
