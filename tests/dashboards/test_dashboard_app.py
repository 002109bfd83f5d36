"""The reviewer app, page by page, with Streamlit's AppTest over a real output tree and index.

The tree is written by the test (three models, a failed page, hostile Markdown, a
1 MB looping output, real PDFs made with PyMuPDF); the app reads it through the real
DuckDB index and writes votes to the real ``votes.jsonl``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.widgets import ALL_JOBS, HEADING_DEMOTION
from tests.conftest import make_pdf
from tracr.review.safe_markdown import safe_markdown
from tracr.review.votes import PageRef, Vote, append_vote, read_votes, votes_path
from tracr.testing.review_tree import Failure, ModelOutputs, write_review_job

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
JOB = "review-job"
MODELS = ("alpha", "beta", "gamma")
HOSTILE = (
    "# Quarterly report\n\nRevenue grew by twelve percent.\n\n"
    "<script>alert(document.cookie)</script>\n"
    '<img src=x onerror="fetch(1)">\n'
    "![logo](https://tracker.example/pixel.png)\n"
    "[click here](javascript:alert(1))\n"
)
LOOP_LINE = "| 1 | total | 1,000.00 |\n"


def write_tree(root: Path, inputs: Path) -> dict[str, Path]:
    pdfs = {"report": make_pdf(inputs / "report.pdf", 2, label="report"), "invoice": make_pdf(inputs / "invoice.pdf", 1, label="invoice")}
    invoice = "| item | qty | price |\n|---|---|---|\n| paper | 2 | 10.00 |\n\nTotal due: 20.00"
    write_review_job(
        root,
        JOB,
        pdfs,
        [
            ModelOutputs(
                "alpha",
                {
                    ("report", 1): "# Quarterly report\n\nRevenue grew by twelve percent compared with last quarter.",
                    ("report", 2): "Operating costs remained stable.",
                    ("invoice", 1): invoice,
                },
            ),
            ModelOutputs(
                "beta",
                {
                    ("report", 1): HOSTILE,
                    ("report", 2): Failure("read timed out after 120 s", "timeout"),
                    ("invoice", 1): "Invoice\n\npaper 2 10.00\nTotal 20",
                },
            ),
            # gamma's invoice equals alpha's: the arena must skip that pair as near-identical.
            ModelOutputs(
                "gamma",
                {
                    ("report", 1): "Quarterly report. Revenue fell.",
                    ("report", 2): "# Costs\n\n" + LOOP_LINE * 40_000,
                    ("invoice", 1): invoice,
                },
            ),
        ],
        title="Reviewer test job",
    )
    return pdfs


@pytest.fixture(autouse=True)
def clear_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    root = tmp_path / "outputs"
    pdfs = write_tree(root, tmp_path / "inputs")
    monkeypatch.setenv("TRACR_OUTPUTS", str(root))
    monkeypatch.setenv("TRACR_VOTER", "tester")
    return {"root": root, **pdfs}


def open_page(view: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    if view != "overview":
        at.switch_page(f"views/{view}.py")
        at.run()
        assert not at.exception, at.exception
    return at


def frame(at: AppTest, column: str):
    """The first table on the page that has ``column`` (AppTest does not expose dataframe keys)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def unescaped(markdown: str) -> str:
    """What Markdown shows for text escaped by ``dashboards.widgets.plain`` (backslash escapes dropped)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(at: AppTest) -> str:
    """Every piece of text the page shows (Markdown, titles, notices, metrics, code)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "success", "info", "warning", "error", "code"):
        parts += [str(element.value) for element in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def test_overview_lists_runs_with_failed_pages(tree: dict[str, Path]) -> None:
    at = open_page("overview")
    jobs = frame(at, "title")
    assert list(jobs["job_id"]) == [JOB]
    assert int(jobs["pages_failed"].iloc[0]) == 1
    runs = frame(at, "model_slug")
    assert sorted(runs["model_slug"]) == list(MODELS)
    by_model = runs.set_index("model_slug")
    assert int(by_model.loc["beta", "pages_failed"]) == 1 and int(by_model.loc["beta", "pages_done"]) == 2
    assert int(by_model.loc["alpha", "pages_failed"]) == 0
    assert by_model.loc["alpha", "latency_p50"] > 0
    assert any("beta/run-1" in w.value and "1 failed" in w.value for w in at.warning)
    assert len(at.get("vega_lite_chart")) == 4


def test_browse_shows_a_failed_page_as_failed(tree: dict[str, Path]) -> None:
    at = open_page("browse")
    at.selectbox(key="model").set_value("beta").run()
    at.selectbox(key="pdf").set_value("report").run()
    at.selectbox(key="page").set_value(2).run()
    assert not at.exception
    status = next(m for m in at.metric if m.label == "Status")
    assert "failed" in status.value
    assert any("Page 2 failed (timeout): read timed out after 120 s" in e.value for e in at.error)
    assert "No text: this page failed" in texts(at)
    assert "1 failed (pages 2)" in texts(at)
    pages = frame(at, "finish_reason")
    assert list(pages["page"]) == [1, 2]
    assert "failed" in pages.set_index("page").loc[2, "status"]
    assert len(at.get("image")) == 1  # the page image is still shown beside the failure


def test_browse_renders_hostile_markdown_inert_and_raw_on_request(tree: dict[str, Path]) -> None:
    at = open_page("browse")
    at.selectbox(key="model").set_value("beta").run()
    at.selectbox(key="pdf").set_value("report").run()
    at.selectbox(key="page").set_value(1).run()
    shown = "\n".join(m.value for m in at.markdown)
    assert "Quarterly report" in shown
    assert "<script" not in shown and "<img" not in shown
    assert "](https://tracker.example" not in shown and "javascript:" not in shown
    assert "image not loaded: logo" in shown and "link removed" in shown
    at.toggle(key="browse_raw").set_value(True).run()
    assert any("<script>alert(document.cookie)</script>" in c.value for c in at.code)  # a code block renders nothing


def test_browse_caps_a_looping_output_until_show_all(tree: dict[str, Path]) -> None:
    at = open_page("browse")
    at.selectbox(key="model").set_value("gamma").run()
    at.selectbox(key="pdf").set_value("report").run()
    at.selectbox(key="page").set_value(2).run()
    body = max((m.value for m in at.markdown), key=len)
    assert len(body) < 5_000 and "repeats 39,997 more times" in body
    assert any("Capped for display" in c.value for c in at.caption)
    at.button(key="browse-review-job-gamma-1-report-2-show-all").click().run()
    body = max((m.value for m in at.markdown), key=len)
    assert body.count("| 1 | total | 1,000.00 |") == 40_000


def test_browse_says_when_the_source_pdf_is_gone(tree: dict[str, Path]) -> None:
    tree["invoice"].unlink()
    at = open_page("browse")
    at.selectbox(key="pdf").set_value("invoice").run()
    assert any("the source PDF is gone" in w.value and str(tree["invoice"]) in unescaped(w.value) for w in at.warning)
    assert "Total due" in "\n".join(m.value for m in at.markdown)  # the text is still reviewable


def test_url_identifiers_only_select_indexed_values(tree: dict[str, Path]) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"job": "../../etc", "model": "gamma", "pdf": "/etc/passwd", "page": "0"})
    at.run()
    at.switch_page("views/browse.py")
    at.run()
    assert not at.exception
    assert at.selectbox(key="job").value == JOB
    assert at.selectbox(key="model").value == "gamma"  # a valid identifier from the URL is used
    assert at.selectbox(key="pdf").value in ("invoice", "report")


def test_compare_shows_two_models_and_their_diff(tree: dict[str, Path]) -> None:
    at = open_page("compare")
    at.selectbox(key="pdf").set_value("report").run()
    at.selectbox(key="page").set_value(1).run()
    at.selectbox(key="compare_left").set_value(("alpha", 1)).run()
    at.selectbox(key="compare_right").set_value(("gamma", 1)).run()
    assert not at.exception
    shown = "\n".join(m.value for m in at.markdown)
    assert "Revenue grew by twelve percent compared" in shown and "Revenue fell" in shown
    assert ":red-background[" in shown and ":green-background[" in shown
    unified = [c.value for c in at.code if c.value.startswith("--- alpha/run-1")]
    assert unified and "+++ gamma/run-1" in unified[0]
    similarity = next(m for m in at.metric if m.label == "Similarity")
    assert similarity.value.endswith("%") and float(similarity.value[:-1]) < 90


def test_arena_hides_names_until_the_vote_then_reveals_and_records_it(tree: dict[str, Path]) -> None:
    at = open_page("arena")
    before = texts(at)
    assert "**6** of 6 pairs left for you to judge" in before  # report p1: 3, p2: 1 (beta failed), invoice: 2 (alpha = gamma skipped)
    for model in MODELS:
        assert model not in before
    shown = [m.value.strip() for m in at.markdown]

    at.button(key="vote-left").click().run()
    assert not at.exception
    votes = read_votes(tree["root"], JOB)
    assert len(votes) == 1
    vote = votes[0]
    assert vote.outcome == "left" and vote.voter == "tester"
    assert vote.left.model_slug != vote.right.model_slug and vote.left.page == vote.right.page
    # What was shown on each side is what the vote recorded for that side.
    for side in (vote.left, vote.right):
        text = (tree["root"] / JOB / side.model_slug / f"run-{side.run}" / side.pdf_slug / f"{side.page}.md").read_text()
        assert safe_markdown(text, demote_headings=HEADING_DEMOTION).text.strip() in shown
    reveal = " ".join(s.value for s in at.success)
    assert f"**left** was **{vote.left.model_slug}**" in reveal and f"**right** was **{vote.right.model_slug}**" in reveal
    assert "**5** of 6 pairs left for you to judge · 1 vote so far, **1** yours" in texts(at)  # the count goes down
    assert json.loads(votes_path(tree["root"], JOB).read_text().splitlines()[0])["outcome"] == "left"


def test_arena_never_repeats_a_pair_and_ends(tree: dict[str, Path]) -> None:
    at = open_page("arena")
    outcomes = ["right", "tie", "both_bad", "skip", "left", "right"]
    for outcome in outcomes:
        at.button(key=f"vote-{outcome}").click().run()
        assert not at.exception
    votes = read_votes(tree["root"], JOB)
    assert [v.outcome for v in votes] == outcomes
    assert (
        len(
            {
                frozenset({(v.left.model_slug, v.left.pdf_slug, v.left.page), (v.right.model_slug, v.right.pdf_slug, v.right.page)})
                for v in votes
            }
        )
        == 6
    )
    assert not any({v.left.model_slug, v.right.model_slug} == {"alpha", "gamma"} and v.left.pdf_slug == "invoice" for v in votes)
    assert any("judged every pair" in s.value for s in at.success)
    assert not [b for b in at.button if b.key == "vote-left"]


def test_arena_refuses_to_vote_without_a_name(tree: dict[str, Path]) -> None:
    at = open_page("arena")
    at.text_input(key="arena_voter").set_value("  ").run()
    assert any("Enter your name" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "vote-left"]
    assert read_votes(tree["root"], JOB) == []


def test_leaderboard_reflects_votes(tree: dict[str, Path]) -> None:
    at = open_page("leaderboard")
    assert any("No counted votes yet" in i.value for i in at.info)
    page = dict(pdf_slug="report", page=1, run=1)
    for _ in range(4):
        append_vote(
            tree["root"],
            Vote(
                job_id=JOB, left=PageRef(model_slug="gamma", **page), right=PageRef(model_slug="alpha", **page), outcome="right", voter="v"
            ),
        )
    append_vote(
        tree["root"],
        Vote(job_id=JOB, left=PageRef(model_slug="beta", **page), right=PageRef(model_slug="alpha", **page), outcome="tie", voter="v"),
    )
    at.run()
    board = frame(at, "elo")
    assert list(board["model"])[0] == "alpha"
    alpha = board.set_index("model").loc["alpha"]
    assert (alpha["wins"], alpha["losses"], alpha["ties"], alpha["votes"]) == (4, 0, 1, 5)
    assert alpha["ci_low"] <= alpha["rating"] <= alpha["ci_high"]
    gamma = board.set_index("model").loc["gamma"]
    assert gamma["losses"] == 4 and gamma["rating"] < alpha["rating"]
    assert next(m for m in at.metric if m.label == "Votes").value == "5"
    assert "online ELO" in texts(at) and "order" in texts(at)

    # Across all jobs gives the same board when there is one job.
    at.selectbox(key="job").set_value(ALL_JOBS).run()
    assert list(frame(at, "elo")["model"]) == list(board["model"])


def test_arena_vote_moves_the_leaderboard(tree: dict[str, Path]) -> None:
    at = open_page("arena")
    at.button(key="vote-left").click().run()
    winner = read_votes(tree["root"], JOB)[0].left.model_slug
    at.switch_page("views/leaderboard.py")
    at.run()
    board = frame(at, "elo").set_index("model")
    assert board.loc[winner, "wins"] == 1
    assert board["votes"].sum() == 2  # one vote, counted for both models


def test_refresh_index_shows_a_run_added_while_the_app_is_open(tree: dict[str, Path]) -> None:
    at = open_page("overview")
    assert sorted(frame(at, "model_slug")["model_slug"]) == list(MODELS)
    write_review_job(tree["root"], JOB, {"report": tree["report"]}, [ModelOutputs("delta", {("report", 1): "Late model output."})])
    at.button(key="refresh-index").click().run()
    assert not at.exception
    assert "delta" in list(frame(at, "model_slug")["model_slug"])
    assert any("index refreshed" in t.value for t in at.toast)


def test_arena_shows_a_refused_vote_as_one_line(tree: dict[str, Path]) -> None:
    at = open_page("arena")
    pair = at.session_state["arena_pair"]
    # The output on the left side disappears between showing the pair and the vote (a run deleted).
    (tree["root"] / JOB / pair.left.model_slug / f"run-{pair.left.run}" / pair.left.pdf_slug / f"{pair.left.page}.md").unlink()
    at.button(key="vote-left").click().run()
    assert not at.exception
    assert read_votes(tree["root"], JOB) == []
    assert not votes_path(tree["root"], JOB).exists() or votes_path(tree["root"], JOB).read_text() == ""
    errors = [unescaped(e.value) for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert errors[0].startswith("The vote was not saved: vote refused: left side:")
    assert f"has no output of page {pair.left.page}" in errors[0]
    assert not at.success  # no "Vote saved" reveal
