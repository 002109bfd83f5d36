"""The LLM judge end to end against the loopback OpenAI stub: votes, both orders, early stop, cost, key handling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.main import main
from tasks.scoring.importing import ensure_job, write_run
from tests.conftest import TEST_API_KEY, make_pdf
from tracr.outputs.layout import OutputLayout
from tracr.review.judged import agreement, split_votes
from tracr.review.ratings import leaderboard
from tracr.review.votes import append_vote, new_vote, read_votes

PAGES = 10


def judged_job(root: Path, inputs: Path) -> None:
    layout = OutputLayout(root)
    pdf = make_pdf(inputs / "doc.pdf", PAGES)
    ensure_job(layout, "judged", [pdf], page_counts={pdf: PAGES})
    write_run(layout, "judged", "sharp", {("doc", p): f"FAITHFUL page {p} text" for p in range(1, PAGES + 1)})
    write_run(layout, "judged", "blurry", {("doc", p): f"page {p} txet" for p in range(1, PAGES + 1)})


def judge(root: Path, port: int, *extra: str) -> int:
    return main(
        [
            "judge",
            "judged",
            "--outputs",
            str(root),
            "--model",
            "stub-ocr",
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--api-key-env",
            "TRACR_JUDGE_KEY",
            "--input-price",
            "1",
            "--output-price",
            "2",
            *extra,
        ]
    )


def test_judge_prefers_one_side_and_stops_early(
    tmp_path: Path, stub_server: Callable[..., object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = stub_server(judge={"prefer": "FAITHFUL"})
    monkeypatch.setenv("TRACR_JUDGE_KEY", TEST_API_KEY)
    judged_job(tmp_path, tmp_path / "in")
    assert judge(tmp_path, server.port) == 0, capsys.readouterr().err  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "judged" / "scores" / "judge.json").read_text())
    votes = [v for v in read_votes(tmp_path, "judged") if v.voter == "judge:stub-ocr"]
    assert votes and all((v.outcome == "left") == (v.left.model_slug == "sharp") for v in votes)
    assert record["stopped"] == "neighbouring intervals no longer overlap"
    assert record["calls"] == 2 * len(votes) < record["exhaustive_calls"] == 2 * PAGES
    assert record["calls_saved"] == record["exhaustive_calls"] - record["calls"] and "calls saved" in out
    assert record["cost"] == pytest.approx((record["input_tokens"] * 1 + record["output_tokens"] * 2) / 1e6) and record["cost"] > 0
    assert [r.model for r in leaderboard(votes)] == ["sharp", "blurry"]
    for path in tmp_path.rglob("*"):  # the key is read from the environment and written nowhere
        assert not path.is_file() or TEST_API_KEY.encode() not in path.read_bytes()


def test_position_biased_judge_cancels_to_ties(tmp_path: Path, stub_server: Callable[..., object], monkeypatch: pytest.MonkeyPatch) -> None:
    server = stub_server(judge={"position": "A"})
    monkeypatch.setenv("TRACR_JUDGE_KEY", TEST_API_KEY)
    judged_job(tmp_path, tmp_path / "in")
    assert judge(tmp_path, server.port, "--budget", "8") == 0  # type: ignore[attr-defined]
    votes = [v for v in read_votes(tmp_path, "judged") if v.voter == "judge:stub-ocr"]
    assert len(votes) == 4 and {v.outcome for v in votes} == {"tie"}  # "A" both ways = a tie after un-swapping
    assert json.loads((tmp_path / "judged" / "scores" / "judge.json").read_text())["stopped"].startswith("call budget spent")


def test_missing_key_variable_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TRACR_JUDGE_KEY", raising=False)
    assert judge(tmp_path, 9) == 2
    assert (
        capsys.readouterr().err.strip() == "tracr judge: environment variable TRACR_JUDGE_KEY is not set (export the judge's API key there)"
    )


def test_agreement_between_judge_and_humans(tmp_path: Path) -> None:
    judged_job(tmp_path, tmp_path / "in")
    from tracr.review.votes import PageRef

    def ref(model: str, page: int) -> PageRef:
        return PageRef(model_slug=model, run=1, pdf_slug="doc", page=page)

    for page, human, judge_says in ((1, "left", "right"), (2, "left", "left"), (3, "tie", "tie")):
        append_vote(tmp_path, new_vote("judged", ref("sharp", page), ref("blurry", page), human, "alice"))  # type: ignore[arg-type]
        flipped = {"left": "right", "right": "left", "tie": "tie"}[judge_says]  # the judge saw the sides the other way round
        append_vote(tmp_path, new_vote("judged", ref("blurry", page), ref("sharp", page), flipped, "judge:m"))  # type: ignore[arg-type]
    votes = read_votes(tmp_path, "judged")
    human, judged = split_votes(votes)
    assert len(human) == 3 and len(judged) == 3
    got = agreement(votes)
    assert (got.pairs, got.agreed) == (3, 2)


def test_leaderboard_shows_human_judge_and_combined_ratings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tracr.index.store import refresh_index

    test_agreement_between_judge_and_humans(tmp_path)
    refresh_index(tmp_path)
    monkeypatch.setenv("TRACR_OUTPUTS", str(tmp_path))
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("views/leaderboard.py")
    at.run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "judge" in d.value.columns)
    assert set(table["model"]) == {"sharp", "blurry"} and list(table.columns) == ["model", "human", "judge", "combined"]
    assert any("Judge–human agreement: 67% of the 3 pairs" in c.value for c in at.caption)
    st.cache_data.clear()


def test_without_early_stop_every_pair_is_judged(
    tmp_path: Path, stub_server: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = stub_server(judge={"prefer": "FAITHFUL"})
    monkeypatch.setenv("TRACR_JUDGE_KEY", TEST_API_KEY)
    judged_job(tmp_path, tmp_path / "in")
    assert judge(tmp_path, server.port, "--no-early-stop") == 0  # type: ignore[attr-defined]
    record = json.loads((tmp_path / "judged" / "scores" / "judge.json").read_text())
    assert record["early_stop"] is False and record["stopped"] == "nothing left to judge"
    assert record["calls"] == record["exhaustive_calls"] == 2 * PAGES and record["calls_saved"] == 0
    assert len([v for v in read_votes(tmp_path, "judged") if v.voter == "judge:stub-ocr"]) == PAGES


def test_noisy_stub_judge_follows_bradley_terry() -> None:
    import math

    from tracr.scoring.judge import build_prompt
    from tracr.testing.openai_stub import JudgeScript, judge_reply

    script = JudgeScript(strengths={"[strong]": 1.0, "[weak]": 0.0}, seed=3)
    prompts = [build_prompt(f"[strong] page {i}", f"[weak] page {i}") for i in range(2000)]
    wins = sum(json.loads(judge_reply(script, p))["winner"] == "A" for p in prompts)
    assert abs(wins / len(prompts) - 1 / (1 + math.exp(-1.0))) < 0.04  # 0.731
    assert judge_reply(script, prompts[0]) == judge_reply(script, prompts[0])  # the same prompt, the same verdict
