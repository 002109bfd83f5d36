"""Scores in the DuckDB index and the reviewer: real index files, the Scores page and the arena's health marks via AppTest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tasks.scoring.score import score_job_now
from tests.scoring.job_tree import JOB, build_job
from tracr.config.scoring import ScoreRequest
from tracr.index import queries
from tracr.index.store import index_path, read_index, refresh_index

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


@pytest.fixture(autouse=True)
def clear_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    build_job(tmp_path)
    score_job_now(ScoreRequest(job_id="scored", outputs=str(tmp_path), tests=str(JOB / "tests.jsonl"), references=str(JOB / "refs")))
    refresh_index(tmp_path)
    monkeypatch.setenv("TRACR_OUTPUTS", str(tmp_path))
    monkeypatch.setenv("TRACR_VOTER", "tester")
    monkeypatch.setenv("TRACR_REVIEW_SEED", "3")
    return tmp_path


def test_scores_are_indexed_and_follow_a_rescore(scored: Path) -> None:
    with read_index(scored) as con:
        q = queries.model_scores("scored")
        rows = {r[0]: r for r in con.execute(q.sql, list(q.params)).fetchall()}
        assert rows["good"][10] == 1.0 and rows["good"][9] == 6  # pass_rate, tests
        assert rows["loopy"][6] == pytest.approx(0.5)  # repetition_rate
        q = queries.page_health_issues("scored", "report", 1)
        kinds = {(m, k) for m, _, k, _ in con.execute(q.sql, list(q.params)).fetchall()}
        assert ("loopy", "repetition") in kinds and ("loopy", "cut_off") in kinds
        assert con.execute("SELECT count(*) FROM test_outcomes WHERE job_id = 'scored'").fetchone() == (18,)
    # A rescore without tests changes scores/: the next refresh picks it up although no run changed.
    score_job_now(ScoreRequest(job_id="scored", outputs=str(scored)))
    stats = refresh_index(scored)
    assert stats.written and stats.runs_read == 0
    con = duckdb.connect(str(index_path(scored)), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM test_outcomes").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM model_scores WHERE tests IS NULL").fetchone() == (3,)
    finally:
        con.close()


def test_scores_page_shows_pass_rates_intervals_and_health(scored: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/scores.py")
    at.run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "pass rate" in d.value.columns).set_index("model")
    assert table.loc["good", "pass rate"] == 100.0 and table.loc["good", "95% low"] == 100.0
    health = next(d.value for d in at.dataframe if "repetition %" in d.value.columns).set_index("model")
    assert health.loc["loopy", "repetition %"] == 50.0
    assert "Best pass rate: **good** 100.0%" in "\n".join(m.value for m in at.markdown)
    assert len(at.get("vega_lite_chart")) >= 1


def test_arena_marks_outputs_with_health_issues(scored: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/arena.py")
    at.run()
    seen = []
    for _ in range(8):
        assert not at.exception, at.exception
        seen += [w.value for w in at.warning]
        if any("Health check" in w for w in seen) or not at.button:
            break
        at.button(key="vote-skip").click().run()
    assert any("Health check: cut_off, repetition" in w for w in seen), seen
