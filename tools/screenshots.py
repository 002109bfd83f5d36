"""Screenshots of every reviewer page for docs/review.md, taken in headless Chromium.

    python tools/screenshots.py --outputs /tmp/demo-out --job example --out docs/screenshots

The output tree is copied to a temporary folder first, so the votes the script casts
(to show the Arena after a vote and a non-empty Leaderboard) never touch the
original. Votes are cast with the keyboard, at random from a fixed seed: the
Leaderboard in the pictures shows the page, not a verdict on the models.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEYS = {"left": "1", "right": "2", "tie": "3", "both_bad": "4"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tracr review exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError("the reviewer did not become healthy")


def _settle(page, extra_ms: int = 600) -> None:
    page.wait_for_timeout(200)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=60_000)
    page.wait_for_timeout(extra_ms)  # charts and images finish drawing after the rerun


def take(
    outputs: Path, job: str, out: Path, *, browse: str | None, compare: str | None, votes: int, seed: int, chromium: str
) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="tracr-shots-") as tmp:
        root = Path(tmp) / "outputs"
        shutil.copytree(outputs, root, ignore=shutil.ignore_patterns("index.duckdb*", "elo", ".tracr"))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "TRACR_VOTER": "docs", "TRACR_REVIEW_SEED": str(seed)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "review", "--outputs", str(root), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            _wait_healthy(url, proc)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 960}, device_scale_factor=1)

                def shot(name: str) -> None:
                    path = out / f"{name}.png"
                    page.screenshot(path=str(path))
                    shots.append(path)

                page.set_viewport_size({"width": 1440, "height": 1500})  # tables and all four charts
                page.goto(f"{url}/?job={job}")
                page.get_by_text("Throughput").wait_for(timeout=60_000)
                _settle(page, 1500)
                shot("overview")
                page.set_viewport_size({"width": 1440, "height": 960})

                page.goto(f"{url}/browse?job={job}" + (f"&{browse}" if browse else ""))
                page.get_by_text("Finish reason").wait_for(timeout=60_000)
                _settle(page, 1000)
                shot("browse")

                page.goto(f"{url}/compare?job={job}" + (f"&{compare}" if compare else ""))
                page.get_by_text("Similarity").wait_for(timeout=60_000)
                _settle(page, 1000)
                shot("compare")
                page.get_by_role("tab", name="Inline diff").click()
                _settle(page)
                shot("compare-diff")

                page.goto(f"{url}/arena?job={job}")
                page.get_by_role("button", name="Left is better").wait_for(timeout=60_000)
                _settle(page, 1000)
                shot("arena")
                rng = random.Random(seed)
                for number in range(votes):
                    if page.get_by_text("You have judged every pair").count():
                        break
                    page.locator("h1").first.click()
                    page.keyboard.press(KEYS[rng.choice(list(KEYS))])
                    page.get_by_text("Vote saved").wait_for(timeout=60_000)
                    _settle(page, 300)
                    if number == 0:
                        page.evaluate("document.activeElement && document.activeElement.blur()")
                        page.mouse.move(0, 0)
                        _settle(page, 700)
                        shot("arena-voted")

                page.goto(f"{url}/leaderboard?job={job}")
                page.get_by_text("Leader:").wait_for(timeout=60_000)
                _settle(page, 1500)
                shot("leaderboard")
                browser.close()
        finally:
            from tracr.testing.processes import stop_process_group

            stop_process_group(proc)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", required=True, help="an outputs root with at least one finished job (copied, never changed)")
    parser.add_argument("--job", required=True, help="the job to show")
    parser.add_argument("--out", default="docs/screenshots", help="where the PNGs go")
    parser.add_argument("--browse", help="query string picking the Browse page, e.g. 'model=tracr-ocr&pdf=table_invoice&page=1'")
    parser.add_argument("--compare", help="query string picking the Compare page, e.g. 'pdf=text_report&page=1'")
    parser.add_argument("--votes", type=int, default=8, help="votes to cast before the Leaderboard shot")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    shots = take(
        Path(args.outputs).resolve(),
        args.job,
        Path(args.out),
        browse=args.browse,
        compare=args.compare,
        votes=args.votes,
        seed=args.seed,
        chromium=args.chromium,
    )
    for path in shots:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
