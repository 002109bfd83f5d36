"""The reviewer and collections: tag a page into a collection in Browse; draw Arena pairs from one collection."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tracr.review.tags import read_tags, tags_in_effect
from tracr.review.votes import read_votes
from tracr.testing.collections_job import write_two_collection_job

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
JOB = "kinds"


@pytest.fixture(autouse=True)
def clear_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "outputs"
    write_two_collection_job(out, tmp_path / "inputs", JOB, votes_per_collection=0)
    monkeypatch.setenv("TRACR_OUTPUTS", str(out))
    monkeypatch.setenv("TRACR_VOTER", "tester")
    return out


def unescaped(markdown: str) -> str:
    """What Markdown shows for text escaped by ``dashboards.widgets.plain`` (backslash escapes dropped)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def open_page(view: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"views/{view}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_browse_tags_the_page_into_a_collection(root: Path) -> None:
    at = open_page("browse")
    assert any(unescaped(e.label).startswith("Collections: forms") for e in at.expander), [e.label for e in at.expander]
    at.text_input(key="tag_name").input("handwritten")
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    assert [(t.pdf_slug, t.page, t.collection, t.by) for t in read_tags(root, JOB)] == [("form-1", 1, "handwritten", "tester")]
    assert any(unescaped(e.label) == "Collections: forms, handwritten" for e in at.expander), [e.label for e in at.expander]
    at.text_input(key="tag_name").input("<b>bad</b>")
    next(b for b in at.button if b.label == "Save").click().run()
    assert any("The tag was not saved" in e.value and "collection name" in e.value for e in at.error)
    assert tags_in_effect(read_tags(root, JOB)) == [("form-1", 1, "handwritten")]


def test_arena_draws_pairs_from_the_chosen_collection(root: Path) -> None:
    at = open_page("arena")
    focus = at.selectbox(key="arena_focus")
    assert focus.options == ["every page", "the least settled collection", "collection: forms", "collection: invoices"]
    focus.set_value("invoices").run()
    assert not at.exception, at.exception
    for _ in range(6):
        at.button(key="vote-left").click().run()
        assert not at.exception, at.exception
    votes = read_votes(root, JOB)
    assert len(votes) == 6 and all(v.left.pdf_slug.startswith("inv-") for v in votes)
    at.selectbox(key="arena_focus").set_value("unsettled").run()
    assert "Least settled now: forms" in " ".join(c.value for c in at.caption)


def test_leaderboard_per_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "voted"
    write_two_collection_job(out, tmp_path / "in2", JOB, votes_per_collection=80)
    monkeypatch.setenv("TRACR_OUTPUTS", str(out))
    at = open_page("leaderboard")
    box = at.selectbox(key="leaderboard_collection")
    assert box.options == ["the whole job", "forms", "invoices"]
    leaders = {}
    for name in ("invoices", "forms"):
        at.selectbox(key="leaderboard_collection").set_value(name).run()
        assert not at.exception, at.exception
        table = next(d.value for d in at.dataframe if "rating" in d.value.columns)
        leaders[name] = list(table["model"])
        assert int(at.metric[0].value) == 80  # the collection's votes only
    assert leaders == {"invoices": ["alpha", "gamma", "beta"], "forms": ["beta", "gamma", "alpha"]}
