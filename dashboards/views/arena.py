"""Arena: blind pairwise voting on two models' outputs of the same page.

Model names stay hidden until the vote is cast; sides are shuffled by
:func:`tracr.review.pairing.next_pair`, which also picks the most informative pair next.
Near-identical outputs never reach the arena (:func:`tracr.review.pairing.arena_candidates`).
Keys 1-5 vote, so a reviewer can go through pairs without the mouse. Both sides are the
same kind of text, rendered or raw: every model's HTML marks become the same Markdown and
comments are dropped (:mod:`tracr.documents.plain_markdown`), so markup does not name the model.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import streamlit as st

from dashboards import data
from dashboards.widgets import pick_job, plain, plural, root, show_output, show_page_image
from tracr.config.collections import ALL
from tracr.errors import TracrError
from tracr.reporting.focus import UNSETTLED
from tracr.review.pairing import PairCandidate, next_pair, open_pairs
from tracr.review.votes import Vote, append_vote

#: (outcome, button label, keyboard shortcut). C and R are Streamlit's; digits are free.
BUTTONS = [
    ("left", "⬅ Left is better", "1"),
    ("right", "Right is better ➡", "2"),
    ("tie", "Tie (both good)", "3"),
    ("both_bad", "Both bad", "4"),
    ("skip", "Skip", "5"),
]
OUTCOME_WORDS = {"left": "left is better", "right": "right is better", "tie": "tie", "both_bad": "both bad", "skip": "skipped"}


def default_voter() -> str:
    try:
        return os.environ.get("TRACR_VOTER") or getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "reviewer"


def choose_pair(job_id: str, voter: str) -> PairCandidate | None:
    votes = data.job_votes(root(), job_id)
    _, pages = data.focus_pages(root(), job_id, st.session_state.get("arena_focus") or ALL, len(votes))
    return next_pair(data.candidates(root(), job_id), votes, data.session_rng(), voter=voter, pages=pages)


def cast(outcome: str, job_id: str) -> None:
    """Button callback: record the vote, remember it for the reveal, load the next pair."""
    pair: PairCandidate | None = st.session_state.get("arena_pair")
    voter = (st.session_state.get("arena_voter") or "").strip()
    if pair is None or pair.job_id != job_id:
        return
    try:
        vote = Vote(job_id=job_id, left=pair.left, right=pair.right, outcome=outcome, voter=voter)
        append_vote(Path(root()), vote)
    except (ValueError, OSError) as exc:  # VoteRefused (a TracrError) is a ValueError too
        reason = exc.one_line() if isinstance(exc, TracrError) else " ".join(str(exc).split())
        st.session_state["arena_error"] = f"The vote was not saved: {reason}"
        return
    st.session_state["arena_error"] = None
    st.session_state["arena_reveal"] = {"pair": pair, "outcome": outcome}
    st.session_state["arena_round"] = st.session_state.get("arena_round", 0) + 1
    st.session_state["arena_pair"] = choose_pair(job_id, voter)


st.title("Arena")

top = st.columns([3, 2, 3])
with top[0]:
    job_id = pick_job()
if job_id is None:
    st.stop()
if "arena_voter" not in st.session_state:
    st.session_state["arena_voter"] = default_voter()
voter = (
    top[1].text_input("Your name", key="arena_voter", help="Recorded with each vote; pairs you voted on are not shown to you again").strip()
)
if not voter:
    st.warning("Enter your name to vote.")
    st.stop()

candidates = data.candidates(root(), job_id)
votes = data.job_votes(root(), job_id)
page_collections = data.job_collections(root(), job_id)
collection_names = page_collections.names if page_collections is not None else []
if len(collection_names) > 1:  # one collection is the whole job: nothing to choose
    focus_labels = {ALL: "every page", UNSETTLED: "the least settled collection", **{n: f"collection: {n}" for n in collection_names}}
    if st.session_state.get("arena_focus") not in focus_labels:
        st.session_state["arena_focus"] = ALL
    st.selectbox(
        "Pages",
        list(focus_labels),
        format_func=lambda name: focus_labels[name],
        key="arena_focus",
        help="Draw pairs from one collection's pages, or from the collection whose ranking is least settled",
        on_change=lambda: st.session_state.update(arena_pair=None),
    )
    focused, _ = data.focus_pages(root(), job_id, st.session_state["arena_focus"], len(votes))
    if st.session_state["arena_focus"] == UNSETTLED:
        st.caption(f"Least settled now: {plain(focused if focused != ALL else 'none (every ranking is settled): every page')}")
mine = sum(1 for v in votes if v.voter == voter)
left_to_judge = len(open_pairs(candidates, votes, voter=voter))  # goes down with each of your votes
top[2].markdown(
    f"**{left_to_judge:,}** of {plural(len(candidates), 'pair')} left for you to judge · "
    f"{plural(len(votes), 'vote')} so far, **{mine:,}** yours"
)

pair: PairCandidate | None = st.session_state.get("arena_pair")
if pair is None or pair.job_id != job_id or st.session_state.get("arena_pair_voter") != voter:
    pair = choose_pair(job_id, voter)
    st.session_state["arena_pair"] = pair
    st.session_state["arena_pair_voter"] = voter
    if st.session_state.get("arena_reveal") and st.session_state["arena_reveal"]["pair"].job_id != job_id:
        st.session_state["arena_reveal"] = None

if st.session_state.get("arena_error"):
    st.error(plain(st.session_state["arena_error"]))

reveal = st.session_state.get("arena_reveal")
if reveal:
    last: PairCandidate = reveal["pair"]
    st.success(
        f"Vote saved ({OUTCOME_WORDS[reveal['outcome']]}) on {plain(last.pdf_slug)} page {last.page}: "
        f"**left** was **{plain(last.left.model_slug)}** (run-{last.left.run}), "
        f"**right** was **{plain(last.right.model_slug)}** (run-{last.right.run}).",
        icon="🔓",
    )

if pair is None:
    if not candidates:
        st.info("No pairs to judge: the arena needs pages done by at least two models whose outputs differ.")
    else:
        st.success("You have judged every pair in this job. The Leaderboard has the result.")
    st.stop()

buttons = st.columns(len(BUTTONS))
for column, (outcome, label, key) in zip(buttons, BUTTONS, strict=False):
    column.button(
        label,  # Streamlit shows the shortcut key on the button
        key=f"vote-{outcome}",
        shortcut=key,
        on_click=cast,
        args=(outcome, job_id),
        width="stretch",
        type="primary" if outcome in ("left", "right") else "secondary",
    )

left_text, right_text, source = data.pair_texts(root(), pair)
raw = st.toggle(
    "Raw",
    key="arena_raw",
    help="Show the Markdown instead of rendering it (both sides with HTML marks as plain Markdown, comments dropped)",
)
image_col, left_col, right_col = st.columns([4, 5, 5])
with image_col:
    show_page_image(source, pair.page, key="arena-image", caption=f"{pair.pdf_slug} page {pair.page}")
health = data.health_kinds(root(), job_id, pair.pdf_slug, pair.page)  # marks outputs `tracr score` found unhealthy
for column, side, text, ref in ((left_col, "Left", left_text, pair.left), (right_col, "Right", right_text, pair.right)):
    with column:
        st.markdown(f"**{side}** · model hidden until you vote")
        if kinds := health.get((ref.model_slug, ref.run)):
            st.warning(f"Health check: {', '.join(sorted(set(kinds)))}", icon="⚠️")
        # Widget keys show up in the page's HTML: they carry a vote counter, never a model name.
        show_output(text, key=f"arena-{side}-{st.session_state.get('arena_round', 0)}", raw=raw, height=800, plain_raw=True)
