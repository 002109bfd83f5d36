"""Everything the reviewer reads, cached so a rerun (one per click or vote) stays cheap.

* Index queries go through short-lived read-only DuckDB connections
  (:func:`tracr.index.store.read_index`) and are cached for a few seconds.
* Votes are read from ``elo/votes*.jsonl`` (one file per reviewer host) on every rerun (a small file), never from
  the index, so a vote shows in the leaderboard the moment it is cast.
* Page images are rendered from the PDF's ``source_path`` (as recorded by the run,
  never from a URL) with :func:`tracr.documents.pdf.render_page_band`, by width (a very
  tall page stays readable), and cached.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Container
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from tracr.config.collections import PageCollections
from tracr.documents.pdf import render_page_band
from tracr.index.queries import Query
from tracr.index.store import read_index, refresh_index
from tracr.outputs.files import read_json
from tracr.outputs.layout import OutputLayout, default_outputs_root
from tracr.review.pairing import PairCandidate, arena_candidates
from tracr.review.ratings import ModelRating, leaderboard
from tracr.review.votes import Vote, read_votes

__all__ = [
    "outputs_root",
    "query",
    "query_one",
    "refresh",
    "page_image",
    "page_band",
    "source_pdf_problem",
    "job_votes",
    "all_votes",
    "candidates",
    "pair_texts",
    "ratings",
    "session_rng",
    "health_kinds",
    "page_reply",
    "run_adapter",
    "job_collections",
    "focus_pages",
]

INDEX_TTL_S = 10
#: Width of a page image at zoom 1: sharp in the widest image column, and an A4 page costs what 1100 px on its long side did.
IMAGE_WIDTH_PX = 800
#: A very tall page is rendered narrower rather than past this many pixels.
IMAGE_MAX_PIXELS = 16_000_000


def outputs_root() -> Path:
    """The outputs root: ``-- --outputs DIR`` after ``streamlit run app.py``, else ``$TRACR_OUTPUTS``, else ``./outputs``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--outputs")
    known, _ = parser.parse_known_args(sys.argv[1:])
    if known.outputs and Path(sys.argv[0]).name == "app.py":
        return Path(known.outputs).resolve()
    return default_outputs_root().resolve()


@st.cache_data(ttl=INDEX_TTL_S, show_spinner=False)
def query(root: str, question: Query) -> pd.DataFrame:
    """Ask the index one of :mod:`tracr.index.queries` (cached for a few seconds per root and query)."""
    with read_index(Path(root)) as con:
        return con.execute(question.sql, list(question.params)).df()


def query_one(root: str, question: Query) -> dict[str, Any] | None:
    """The first row of :func:`query` as a dict, or ``None``."""
    frame = query(root, question)
    return None if frame.empty else frame.iloc[0].to_dict()


def refresh(root: str) -> str:
    """Re-scan the output tree into the index (incremental) and drop cached query results."""
    stats = refresh_index(Path(root))
    query.clear()
    candidates.clear()
    return f"index refreshed: {stats.runs_read} runs read, {stats.runs_unchanged} unchanged, {stats.pages} pages in {stats.seconds:.2f} s"


def source_pdf_problem(source_path: str | None) -> str | None:
    """Why the page image cannot be shown, or ``None`` when the source PDF is there."""
    if not source_path:
        return "the run recorded no source path for this PDF"
    path = Path(source_path)
    if path.suffix.lower() != ".pdf":
        return f"the recorded source {source_path!r} is not a .pdf file"
    if not path.is_file():
        return f"the source PDF is gone: {source_path}"
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _rendered(source_path: str, page: int, mtime_ns: int, band: tuple[float, float], width_px: int) -> bytes:
    return render_page_band(source_path, page, x0=band[0], x1=band[1], width_px=width_px, max_pixels=IMAGE_MAX_PIXELS)


def page_band(zoom: float, pan: float) -> tuple[float, float]:
    """The part of the page's width shown at ``zoom`` (1 = all of it), ``pan`` from 0 (left edge) to 1 (right edge)."""
    zoom = max(1.0, zoom)
    start = max(0.0, min(pan, 1.0)) * (1.0 - 1.0 / zoom)
    return round(start, 4), round(min(1.0, start + 1.0 / zoom), 4)


def page_image(source_path: str, page: int, *, zoom: float = 1.0, pan: float = 0.0) -> bytes:
    """PNG of one page, or of the ``1/zoom`` of its width ``pan`` picks, magnified (cached per file version).

    Raises ``OSError``/``RuntimeError`` if it cannot be read.
    """
    mtime_ns = Path(source_path).stat().st_mtime_ns
    return _rendered(source_path, int(page), mtime_ns, page_band(zoom, pan), IMAGE_WIDTH_PX)


def job_votes(root: str, job_id: str) -> list[Vote]:
    """The job's votes, fresh from its ``votes*.jsonl`` files (not cached: votes must show at once)."""
    return read_votes(Path(root), job_id)


def all_votes(root: str) -> list[Vote]:
    return read_votes(Path(root))


@st.cache_resource(ttl=60, show_spinner=False)
def candidates(root: str, job_id: str) -> tuple[PairCandidate, ...]:
    """Arena pairs of the job (near-identical outputs already dropped).

    Cached as a shared resource, not a copy: there are thousands of immutable pairs, and
    unpickling them on every rerun (what ``st.cache_data`` does) cost ~120 ms a vote.
    """
    with read_index(Path(root)) as con:
        return tuple(arena_candidates(con, job_id))


_PAIR_SQL = """
SELECT p.model_slug, p.run, p.markdown,
       (SELECT source_path FROM pdfs d WHERE d.job_id = p.job_id AND d.pdf_slug = p.pdf_slug AND source_path IS NOT NULL LIMIT 1) AS source_path
FROM pages p
WHERE p.job_id = ? AND p.pdf_slug = ? AND p.page = ? AND ((p.model_slug = ? AND p.run = ?) OR (p.model_slug = ? AND p.run = ?))
"""


def pair_texts(root: str, pair: PairCandidate) -> tuple[str | None, str | None, str | None]:
    """(left markdown, right markdown, source PDF path) of an arena pair, in one query."""
    left, right = pair.left, pair.right
    return _pair_texts(root, (pair.job_id, pair.pdf_slug, pair.page, left.model_slug, left.run, right.model_slug, right.run))


@st.cache_data(ttl=INDEX_TTL_S, max_entries=256, show_spinner=False)
def _pair_texts(root: str, key: tuple[str, str, int, str, int, str, int]) -> tuple[str | None, str | None, str | None]:
    job_id, pdf_slug, page, left_model, left_run, right_model, right_run = key
    with read_index(Path(root)) as con:
        rows = con.execute(_PAIR_SQL, list(key)).fetchall()
    texts = {(model, int(run)): markdown for model, run, markdown, _ in rows}
    source = next((row[3] for row in rows if row[3]), None)
    return texts.get((left_model, left_run)), texts.get((right_model, right_run)), source


@st.cache_data(max_entries=32, show_spinner=False)
def _ratings(votes_json: tuple[str, ...], rounds: int) -> list[ModelRating]:
    return leaderboard([Vote.model_validate_json(v) for v in votes_json], rounds=rounds)


def ratings(votes: list[Vote], rounds: int = 1000) -> list[ModelRating]:
    """Leaderboard of ``votes`` (cached on the votes themselves, so a new vote recomputes it)."""
    return _ratings(tuple(v.model_dump_json() for v in votes), rounds)


def session_rng() -> random.Random:
    """One random generator per browser session: side shuffles differ between reviewers."""
    if "rng" not in st.session_state:
        seed = os.environ.get("TRACR_REVIEW_SEED")
        st.session_state["rng"] = random.Random(int(seed) if seed else None)
    return st.session_state["rng"]


def health_kinds(root: str, job_id: str, pdf_slug: str, page: int) -> dict[tuple[str, int], list[str]]:
    """``(model, run) -> issue kinds`` of one page (``tracr score``); empty when the job was never scored."""
    from tracr.index.queries import page_health_issues

    frame = query(root, page_health_issues(job_id, pdf_slug, int(page)))
    kinds: dict[tuple[str, int], list[str]] = {}
    for row in frame.itertuples(index=False):
        kinds.setdefault((str(row.model_slug), int(row.run)), []).append(str(row.kind))
    return kinds


def page_reply(root: str, job_id: str, model: str, run: int, pdf_slug: str, page: int) -> str | None:
    """The model's reply as it came, where the family's parser changed it (``<page>.reply.txt``); None otherwise.

    The names come from the index's own options, and the layout validates them again.
    """
    path = OutputLayout(Path(root)).run(job_id, model, run).page_reply(pdf_slug, page)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


@st.cache_data(ttl=INDEX_TTL_S, show_spinner=False)
def run_adapter(root: str, job_id: str, model: str, run: int) -> dict[str, Any] | None:
    """How the run asked its model (the adapter its metadata recorded), or None for the text layer and older runs."""
    meta = read_json(OutputLayout(Path(root)).run(job_id, model, run).run_metadata) or {}
    adapter = (meta.get("settings") or {}).get("adapter")
    return adapter if isinstance(adapter, dict) else None


def _version(root: str, job_id: str) -> tuple[tuple[str, int], ...]:
    """What the collections depend on: the job's metadata and its tag files (name and size)."""
    from tracr.review.tags import tag_files

    meta = OutputLayout(Path(root)).job_metadata(job_id)
    stamp = (("job_metadata", meta.stat().st_mtime_ns),) if meta.is_file() else ()
    return stamp + tuple((p.name, p.stat().st_size) for p in tag_files(Path(root), job_id))


@st.cache_resource(show_spinner=False, max_entries=32)
def _collections(root: str, job_id: str, version: tuple[tuple[str, int], ...]) -> PageCollections | None:
    from tracr.reporting.job_data import load_collections

    try:
        return load_collections(Path(root), job_id)
    except Exception:  # metadata tracr cannot read: no collections to offer
        return None


def job_collections(root: str, job_id: str) -> PageCollections | None:
    """The job's collections (folders or config, plus tags), read again when its metadata or a tag file changes."""
    return _collections(root, job_id, _version(root, job_id))


@st.cache_data(ttl=30, show_spinner=False)
def _least_settled(root: str, job_id: str, votes: int, version: tuple[tuple[str, int], ...]) -> str:
    from tracr.reporting.focus import UNSETTLED
    from tracr.reporting.focus import focus_pages as pick
    from tracr.reporting.job_data import load_job_data

    name, _ = pick(load_job_data(Path(root), job_id), UNSETTLED, rounds=100)
    return name


def focus_pages(root: str, job_id: str, choice: str, votes: int) -> tuple[str, Container[tuple[str, int]] | None]:
    """``(collection, its pages)`` the arena draws from: every page (``None``), a collection, or the least settled one."""
    from tracr.config.collections import ALL
    from tracr.reporting.focus import UNSETTLED

    collections = job_collections(root, job_id)
    if collections is None:
        return ALL, None
    name = _least_settled(root, job_id, votes, _version(root, job_id)) if choice == UNSETTLED else choice
    if name == ALL or name not in collections.names:
        return ALL, None
    return name, collections.members(name)
