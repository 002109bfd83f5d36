"""End to end: ``tracr review`` as a real process, driven by Playwright in Debian's Chromium.

Opens the job in the Arena, votes with the keyboard, and sees the vote land in
``votes.jsonl`` and move the leaderboard. Chromium comes from the system
(``apt-get install chromium``; ``.ci/run`` installs it), since browser downloads
are blocked here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import make_pdf
from tracr.review.votes import read_votes
from tracr.serving.process_group import group_alive
from tracr.testing.processes import stop_process_group
from tracr.testing.review_tree import Failure, ModelOutputs, write_review_job

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JOB = "e2e-job"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_review(root: Path) -> Iterator[tuple[str, Path]]:
    """``tracr review`` over ``root`` as a real process; yields ``(url, root)`` once healthy, stops it after."""
    port = free_port()
    env = {**os.environ, "TRACR_VOTER": "e2e-voter", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "review", "--outputs", str(root), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"tracr review exited with {proc.returncode}: {proc.stdout.read().decode() if proc.stdout else ''}"
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the reviewer did not become healthy within 60 s"
            time.sleep(0.25)
        yield url, root
    finally:
        stop_process_group(proc)
        assert not group_alive(proc.pid), "the Streamlit server outlived the test"


@pytest.fixture
def review_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "outputs"
    pdf = make_pdf(tmp_path / "inputs" / "letter.pdf", 2, label="letter")
    write_review_job(
        root,
        JOB,
        {"letter": pdf},
        [
            ModelOutputs(
                "ocr-one", {("letter", 1): "# Dear customer\n\nYour order has shipped.", ("letter", 2): "Kind regards,\nThe team"}
            ),
            ModelOutputs(
                "ocr-two",
                {("letter", 1): "Dear custom er\n\nYour ordre has shiped.", ("letter", 2): Failure("HTTP 500 from server", "server_error")},
            ),
        ],
        title="End-to-end job",
    )
    yield from _serve_review(root)


def settle(page: Page) -> None:
    """Wait until Streamlit has finished the rerun an interaction started."""
    page.wait_for_timeout(150)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=30_000)


def test_vote_with_the_keyboard_and_see_the_leaderboard_change(review_server: tuple[str, Path]) -> None:
    url, root = review_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/leaderboard")
            page.get_by_text("No counted votes yet").wait_for(timeout=30_000)

            page.goto(f"{url}/arena?job={JOB}")
            page.get_by_role("button", name="Left is better").wait_for(timeout=30_000)
            page.get_by_text("model hidden until you vote").last.wait_for(timeout=30_000)  # the sides draw after the buttons
            settle(page)
            body = page.locator("body").inner_text()
            assert "model hidden until you vote" in body
            html = page.content()
            assert "ocr-one" not in html and "ocr-two" not in html  # blind: no model name, not even in the HTML
            assert "page 1 of letter" not in body  # (the PDF text is in the image, not the DOM)
            assert page.locator("[data-testid='stImage'] img").count() == 1

            page.locator("h1").first.click()  # focus the page, not a text field
            page.keyboard.press("1")
            page.get_by_text("Vote saved").wait_for(timeout=30_000)
            settle(page)

            votes = read_votes(root, JOB)
            assert len(votes) == 1 and votes[0].outcome == "left" and votes[0].voter == "e2e-voter"
            winner, loser = votes[0].left.model_slug, votes[0].right.model_slug
            reveal = page.get_by_text("Vote saved").inner_text()
            assert f"left was {winner}" in reveal and f"right was {loser}" in reveal
            # The only other pair (page 2) has one failed side, so the job is done.
            page.get_by_text("You have judged every pair").wait_for(timeout=30_000)

            page.get_by_role("link", name="Leaderboard").click()
            page.get_by_text("Leader:").wait_for(timeout=30_000)
            settle(page)
            leader = page.get_by_text("Leader:").inner_text()
            assert leader.startswith(f"Leader: {winner} with")
            assert "over 1 vote;" in leader and "Too few votes yet" in leader  # one vote separates nothing
        finally:
            browser.close()


def test_review_refuses_a_missing_outputs_root(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "review", "--outputs", str(missing)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"no outputs folder at {missing}" in result.stderr
    assert not missing.exists()


HOSTILE_ERROR = "![](http://evil.test/t.png) [Session expired: log in](http://evil.test/phish) :red[ALERT] <img src=x onerror=alert(1)>"
HOSTILE_TITLE = "**Q3** <script>alert('title')</script> [click](http://evil.test/title) :material/warning:"


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A job whose endpoint errors, title and page output are all hostile, served by a real ``tracr review``."""
    root = tmp_path / "outputs"
    pdf = make_pdf(tmp_path / "inputs" / "memo.pdf", 1, label="memo")
    write_review_job(
        root,
        "hostile",
        {"memo": pdf},
        [
            ModelOutputs(
                "ocr-one", {("memo", 1): "# Memo\n\n![pixel](http://evil.test/pixel.png) <iframe src='http://evil.test/f'></iframe>"}
            ),
            ModelOutputs("ocr-two", {("memo", 1): Failure(HOSTILE_ERROR, "server_error")}),
        ],
        title=HOSTILE_TITLE,
    )
    yield from _serve_review(root)


def test_hostile_endpoint_text_is_shown_as_text_and_loads_nothing(hostile_server: tuple[str, Path]) -> None:
    """Error messages, titles and page output from outside: no request leaves the reviewer, no dialog, no live link."""
    url, _ = hostile_server
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for path, expect in (
                ("/browse?job=hostile&model=ocr-two&pdf=memo&page=1", "Session expired: log in"),
                ("/browse?job=hostile&model=ocr-one&pdf=memo&page=1", "Memo"),
                ("/compare?job=hostile&pdf=memo&page=1", "Session expired: log in"),
            ):
                page.goto(url + path)
                page.get_by_text(expect).first.wait_for(timeout=30_000)
                settle(page)
                page.wait_for_timeout(500)
                body = page.locator("body").inner_text().replace("\u200b", "")  # plain() breaks autolinks with it
                # Endpoint text (errors, titles) makes no link at all; page output may keep a link as text, never a load.
                outside = "ocr-two" in path or path.startswith("/?")  # pages with no model output on them
                live = page.locator(("a[href*='evil.test'], " if outside else "") + "img[src*='evil.test'], iframe[src*='evil.test']")
                assert live.count() == 0, (path, [live.nth(i).evaluate("e => e.outerHTML") for i in range(live.count())])
                if "ocr-two" in path or "compare" in path:
                    assert "[Session expired: log in](http://evil.test/phish)" in body, body  # literally, as text
                    assert ":red[ALERT]" in body and "<img src=x onerror=alert(1)>" in body
        finally:
            browser.close()
    foreign = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
    assert not foreign, foreign  # nothing but the reviewer itself: no tracker pixel, no font CDN, no phishing image
    assert not dialogs, dialogs
