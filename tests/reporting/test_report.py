"""``tracr report --html/--markdown``: one self-contained file, opened in headless Chromium with networking off.

Set ``TRACR_REPORT_SCREENSHOTS=docs/screenshots`` to keep the pictures of docs/report.md.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Request, Route, sync_playwright

from cli.main import main
from tasks.scoring.score import score_job_now
from tracr.config.scoring import score_request
from tracr.outputs.layout import OutputLayout
from tracr.reporting.html import SECTIONS
from tracr.run.recorder import refresh_job_metadata
from tracr.testing.collections_job import write_two_collection_job

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
JOB = "kinds"
HOSTILE = '<img src="http://evil.example/x.png"><script>alert(1)</script> Invoice | total'
TITLE = "Invoices & forms <b>2026</b>"


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report")
    root = base / "outputs"
    paths = write_two_collection_job(root, base / "inputs", JOB, votes_per_collection=60)
    layout = OutputLayout(root)
    refresh_job_metadata(layout, JOB, {"title": TITLE})
    layout.run(JOB, "alpha", 1).page_markdown("form-1", 1).write_text(HOSTILE, encoding="utf-8")  # text from outside, shown as text
    score_job_now(score_request(root, JOB, tests=str(paths["tests"])))
    return {"root": root, "base": base, **paths}


def test_html_report_renders_every_section_offline(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out_file = job["base"] / "share" / "report.html"
    out_file.parent.mkdir()
    assert main(["report", JOB, "--outputs", str(job["root"]), "--html", str(out_file), "--pages", "12", "--rounds", "200"]) == 0
    assert f"HTML report: {out_file}" in capsys.readouterr().out
    html = out_file.read_text(encoding="utf-8")
    assert not re.search(r"https?://", html.replace("http://evil.example", "")), "no URL of our own in the file"
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and list(out_file.parent.iterdir()) == [out_file]  # one file, nothing beside it

    requests: list[str] = []

    def record(route: Route, request: Request) -> None:
        requests.append(request.url)
        if request.url.startswith("file://") or request.url.startswith("data:"):
            route.continue_()
        else:
            route.abort()

    shot = job["base"] / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.route("**/*", record)
        page.goto(out_file.as_uri())
        page.wait_for_load_state("load")
        for section in SECTIONS:
            assert page.locator(f"section#{section}").is_visible(), section
            assert page.locator(f"section#{section} h2").inner_text().strip()
        assert page.title() == f"{TITLE}: OCR models compared"
        assert page.locator("h1").inner_text() == TITLE  # escaped, shown as text
        assert page.locator("#leaderboards .board h3").all_inner_texts()[:3] == [
            "Whole job (12 pages)",
            "Collection: forms (6 pages)",
            "Collection: invoices (6 pages)",
        ]
        assert page.locator("#winners .flip").count() >= 2
        assert "on invoices alpha wins" in page.locator("#winners").inner_text()
        assert page.locator("#quality svg circle").count() == 6  # three models on each of two charts
        assert page.locator("#leaderboards svg circle").count() > 0
        images = page.locator("#disagreements img")
        assert images.count() == 12
        widths = page.evaluate("Array.from(document.querySelectorAll('#disagreements img')).map(i => i.naturalWidth)")
        assert all(w > 100 for w in widths), widths
        assert page.locator("#disagreements pre", has_text="<script>alert(1)</script>").count() == 1  # the output as text
        assert page.locator("script").count() == 0 and page.locator("#disagreements pre img").count() == 0
        assert "timeout" in page.locator("#health").inner_text()  # gamma's failed page, by error class
        page.screenshot(path=str(shot), full_page=True)
        keep = os.environ.get("TRACR_REPORT_SCREENSHOTS")  # a folder: the pictures of docs/report.md
        if keep:
            page.screenshot(path=str(Path(keep) / "report.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1900})
            page.locator("#winners").screenshot(path=str(Path(keep) / "report-winners.png"))
            page.locator("#quality").screenshot(path=str(Path(keep) / "report-quality.png"))
            page.locator("#disagreements .page").nth(0).screenshot(path=str(Path(keep) / "report-page.png"))
        browser.close()
    assert requests == [out_file.as_uri()], requests  # the file itself and nothing else
    assert shot.stat().st_size > 20_000


def test_markdown_report_with_images_beside_it(job: dict[str, Path]) -> None:
    out_file = job["base"] / "wiki" / "kinds report.md"
    out_file.parent.mkdir()
    assert main(["report", JOB, "--outputs", str(job["root"]), "--markdown", str(out_file), "--pages", "12", "--rounds", "100"]) == 0
    text = out_file.read_text(encoding="utf-8")
    for heading in (
        "## Set-up",
        "## Leaderboards per collection",
        "## Winners by collection",
        "## Quality against cost and speed",
        "## Failures and page health",
        "## Pages where the models disagree most",
    ):
        assert heading in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 12 and all(link.startswith("kinds%20report_files/") for link in links)
    assert all((out_file.parent / "kinds report_files" / link.split("/", 1)[1]).is_file() for link in links)
    assert "<script>" not in text.split("## Pages where")[0] and "Invoices &amp; forms &lt;b&gt;2026&lt;/b&gt;" in text
    assert "```text\n" + HOSTILE in text  # outputs in fences: shown, never rendered


def test_report_to_a_missing_folder_is_one_line(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    target = job["base"] / "no" / "such" / "r.html"
    assert main(["report", JOB, "--outputs", str(job["root"]), "--html", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tracr report: --html") and "does not exist" in err and "\n" not in err
    folder = job["base"] / "a-folder.html"
    folder.mkdir()
    assert main(["report", JOB, "--outputs", str(job["root"]), "--html", str(folder), "--rounds", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tracr report: cannot write the report:") and "\n" not in err
