"""Leaderboard: Bradley-Terry ratings with bootstrap 95% intervals, and an order-dependent online ELO beside them.

The online ELO is the number TRACR, the benchmark tool tracr grew out of, showed; it is
kept for continuity and the page says so, since a new user has never heard of TRACR.

Read straight from the votes files on every rerun, so a vote cast in the Arena
shows here at once.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.widgets import ALL_JOBS, judge_and_cost_panel, pick_job, plain, plural, root
from tracr.config.collections import ALL

#: Below this many votes for the leader the verdict says the intervals cannot be trusted yet.
MIN_VOTES = 10

st.title("Leaderboard")

job_id = pick_job(allow_all=True)
if job_id is None:
    st.stop()
votes = data.all_votes(root()) if job_id == ALL_JOBS else data.job_votes(root(), job_id)
scope = "all jobs (a model slug is the same player in every job)" if job_id == ALL_JOBS else f"job {plain(job_id)}"
collections = data.job_collections(root(), job_id) if job_id != ALL_JOBS else None
if collections is not None and len(collections.names) > 1:  # rankings per kind of document (docs/collections.md)
    choice = st.selectbox(
        "Collection",
        [ALL, *collections.names],
        format_func=lambda name: "the whole job" if name == ALL else name,
        key="leaderboard_collection",
        help="Rank on the votes about one collection's pages: the best model is not the same for every kind of document",
    )
    if choice != ALL:
        members = collections.members(choice)
        votes = [v for v in votes if (v.left.pdf_slug, v.left.page) in members]
        scope += f", collection {plain(choice)}"

counts = pd.Series([v.outcome for v in votes], dtype="object").value_counts()
tiles = st.columns(6)
tiles[0].metric("Votes", len(votes))
for tile, (outcome, label) in zip(
    tiles[1:],
    [("left", "Left better"), ("right", "Right better"), ("tie", "Tie"), ("both_bad", "Both bad"), ("skip", "Skipped")],
    strict=False,
):
    tile.metric(label, int(counts.get(outcome, 0)))

board = data.ratings(votes)
if not board:
    st.info(f"No counted votes yet for {scope}. Vote in the **Arena** (skips do not count).")
    st.stop()

table = pd.DataFrame(
    [
        {
            "rank": i,
            "model": r.model,
            "rating": round(r.rating),
            "ci_low": round(r.ci_low),
            "ci_high": round(r.ci_high),
            "wins": r.wins,
            "losses": r.losses,
            "ties": r.ties,
            "votes": r.votes,
            "elo": round(r.elo),
        }
        for i, r in enumerate(board, start=1)
    ]
)
top = board[0]
tied = [r.model for r in board[1:] if r.ci_high >= top.ci_low]
if top.votes < MIN_VOTES:
    # A bootstrap of a handful of identical votes gives a narrow interval that means nothing.
    verdict = f" Too few votes yet (under {MIN_VOTES} for the leader) for the intervals to mean much."
elif tied:
    verdict = f" Not yet separated from **{', '.join(plain(m) for m in tied)}**: the 95% intervals overlap, more votes needed."
else:
    verdict = " Its interval clears every other model's."
st.markdown(
    f"Leader: **{plain(top.model)}** with {top.rating:,.0f} (95% CI {top.ci_low:,.0f}–{top.ci_high:,.0f}) over {plural(top.votes, 'vote')}; "
    f"{plural(len(board), 'model')} rated from {plural(sum(1 for v in votes if v.outcome != 'skip'), 'counted vote')}.{verdict}"
)
st.caption(
    f"Ratings for {scope}. **Bradley-Terry** is fitted on all votes at once (order does not matter); "
    "its 95% interval is the 2.5–97.5 percentile of 1,000 bootstrap refits. Overlapping intervals mean the votes "
    "do not yet separate the models. Ties and *both bad* count as half a win each side; skips are ignored. "
    "**Online ELO** (K=24, start 1000) updates after each vote in the order the votes arrived, so the same votes in "
    "another order give other numbers. TRACR, the benchmark tool tracr grew out of, showed this number; it is kept "
    "for comparison only."
)
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "rating": st.column_config.NumberColumn("BT rating", help="Bradley-Terry, 400·log10 odds + 1000"),
        "ci_low": st.column_config.NumberColumn("95% CI low"),
        "ci_high": st.column_config.NumberColumn("95% CI high"),
        "elo": st.column_config.NumberColumn("online ELO (order-dependent)"),
    },
    key="leaderboard-table",
)

order = list(table["model"])
base = alt.Chart(table).encode(y=alt.Y("model:N", sort=order, title=None))
interval = base.mark_rule(strokeWidth=3, color="#4c78a8").encode(
    x=alt.X("ci_low:Q", title="rating", scale=alt.Scale(zero=False)),
    x2="ci_high:Q",
    tooltip=["model", "rating", "ci_low", "ci_high", "votes"],
)
points = base.mark_circle(size=140, color="#4c78a8").encode(x="rating:Q", tooltip=["model", "rating", "ci_low", "ci_high", "votes"])
elo = base.mark_tick(color="#e45756", thickness=3, size=22).encode(x="elo:Q", tooltip=["model", alt.Tooltip("elo:Q", title="online ELO")])
st.markdown("**Bradley-Terry rating with 95% CI** (blue) · online ELO (red tick, order-dependent)")
st.altair_chart((interval + points + elo).properties(height=max(120, 48 * len(table))), width="stretch")

judge_and_cost_panel(votes, None if job_id == ALL_JOBS else job_id)  # LLM-judge votes (voter judge:<model>) and cost

with st.expander(f"Recent votes ({min(len(votes), 50)} of {len(votes)})"):
    recent = sorted(votes, key=lambda v: v.created_at, reverse=True)[:50]
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": v.created_at,
                    "job": v.job_id,
                    "voter": v.voter,
                    "left": f"{v.left.model_slug} · run-{v.left.run}",
                    "right": f"{v.right.model_slug} · run-{v.right.run}",
                    "outcome": v.outcome,
                    "page": f"{v.left.pdf_slug} p{v.left.page}",
                }
                for v in recent
            ]
        ),
        hide_index=True,
        column_order=None if job_id == ALL_JOBS else ["when", "voter", "left", "right", "outcome", "page"],  # one job: no job column
        column_config={"when": st.column_config.DatetimeColumn("when", format="YYYY-MM-DD HH:mm")},
        key="leaderboard-votes",
    )
