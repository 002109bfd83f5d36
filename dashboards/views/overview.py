"""Overview: every job and run with status, pages done/failed, throughput, tokens and latency."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboards import data
from dashboards.widgets import ALL_JOBS, pick_job, plain, plural, root, status_label
from tracr.index import queries as Q

#: The run columns shown by default: what fits beside the sidebar on a laptop screen.
RUN_COLUMNS = [
    "job_id",
    "model_slug",
    "run",
    "status",
    "pages_done",
    "pages_failed",
    "pages_total",
    "pages_per_s",
    "input_tokens",
    "output_tokens",
    "latency_p50",
    "ttft_p50",
]

st.title("Overview")

jobs = data.query(root(), Q.jobs())
if jobs.empty:
    st.info(f"No jobs indexed under {plain(root())}. Run `tracr run <config>` and press **Refresh index** in the sidebar.")
    st.stop()

totals = st.columns(4)
totals[0].metric("Jobs", len(jobs))
totals[1].metric("Runs", int(jobs["runs"].sum()))
totals[2].metric("Pages done", f"{int(jobs['pages_done'].sum()):,}")
totals[3].metric("Pages failed", f"{int(jobs['pages_failed'].sum()):,}")

st.subheader("Jobs")
st.dataframe(
    jobs,
    hide_index=True,
    column_config={
        "job_id": "job",
        "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        "pages_done": st.column_config.NumberColumn("pages done"),
        "pages_failed": st.column_config.NumberColumn("pages failed"),
    },
    key="overview-jobs",
)

job_id = pick_job(allow_all=True)
runs = data.query(root(), Q.runs(None if job_id in (None, ALL_JOBS) else job_id))

st.subheader("Runs")
if runs.empty:
    st.info("No runs for this job yet.")
    st.stop()
table = runs.assign(status=runs["status"].map(status_label))
all_columns = st.toggle("All columns", key="overview-all-columns", help="Also the served model, provider, p99s, truncated pages and errors")
# The essentials fit the page's width; the rest is one toggle away (the model column stays put when it scrolls).
columns = list(table.columns) if all_columns else [c for c in RUN_COLUMNS if c != "job_id" or job_id == ALL_JOBS]
st.dataframe(
    table,
    hide_index=True,
    column_order=columns,
    column_config={
        "job_id": st.column_config.TextColumn("job", pinned=True),
        "model_slug": st.column_config.TextColumn("model", pinned=True),
        "model": "served model",
        "pages_total": st.column_config.NumberColumn("pages"),
        "pages_done": st.column_config.NumberColumn("done"),
        "pages_failed": st.column_config.NumberColumn("failed"),
        "pages_truncated": st.column_config.NumberColumn("truncated"),
        "pages_per_s": st.column_config.NumberColumn("pages/s", format="%.3f"),
        "wall_seconds": st.column_config.NumberColumn("wall s", format="%.1f"),
        "input_tokens": st.column_config.NumberColumn("tokens in", format="localized"),
        "output_tokens": st.column_config.NumberColumn("tokens out", format="localized"),
        "latency_p50": st.column_config.NumberColumn("p50 s", format="%.2f", help="latency per page, median"),
        "latency_p90": st.column_config.NumberColumn("p90 s", format="%.2f", help="latency per page, 90th percentile"),
        "latency_p99": st.column_config.NumberColumn("p99 s", format="%.2f", help="latency per page, 99th percentile"),
        "ttft_p50": st.column_config.NumberColumn("TTFT s", format="%.2f", help="time to first token, median"),
        "ttft_p90": st.column_config.NumberColumn("TTFT p90 s", format="%.2f"),
        "ttft_p99": st.column_config.NumberColumn("TTFT p99 s", format="%.2f"),
        "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm"),
    },
    key="overview-runs",
)

failed = runs[(runs["pages_failed"] > 0) | (~runs["status"].isin(["completed"]))]
if not failed.empty:
    st.warning(
        f"{plural(len(failed), 'run')} with failed pages or not completed: "
        + ", ".join(
            f"{plain(r.job_id)}/{plain(r.model_slug)}/run-{r.run} ({plain(r.status)}, {int(r.pages_failed)} failed)"
            for r in failed.itertuples()
        )
        + ". Open them in **Browse** to see each failure."
    )

runs = runs.assign(label=runs["model_slug"] + " · run-" + runs["run"].astype(str))
if job_id == ALL_JOBS:
    runs["label"] = runs["job_id"] + " / " + runs["label"]

left, right = st.columns(2)
with left:
    st.markdown("**Throughput** (pages/s, wall clock)")
    st.altair_chart(
        alt.Chart(runs)
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X("pages_per_s:Q", title="pages/s"),
            y=alt.Y("label:N", title=None, sort="-x", axis=alt.Axis(labelLimit=300)),
            tooltip=["label", alt.Tooltip("pages_per_s:Q", format=".3f"), "pages_done", "pages_failed"],
        ),
        width="stretch",
    )
with right:
    st.markdown("**Pages** done and failed")
    pages = runs.melt(id_vars=["label"], value_vars=["pages_done", "pages_failed"], var_name="outcome", value_name="pages")
    pages["outcome"] = pages["outcome"].str.replace("pages_", "")
    st.altair_chart(
        alt.Chart(pages)
        .mark_bar()
        .encode(
            x=alt.X("pages:Q", title="pages", stack=True),
            y=alt.Y("label:N", title=None, axis=alt.Axis(labelLimit=300)),
            color=alt.Color("outcome:N", scale=alt.Scale(domain=["done", "failed"], range=["#2e7d32", "#c62828"])),
            tooltip=["label", "outcome", "pages"],
        ),
        width="stretch",
    )

left, right = st.columns(2)
with left:
    st.markdown("**Latency per page** (p50 / p90 / p99, seconds)")
    latency = runs.melt(
        id_vars=["label"], value_vars=["latency_p50", "latency_p90", "latency_p99"], var_name="percentile", value_name="seconds"
    )
    latency["percentile"] = latency["percentile"].str.replace("latency_", "")
    st.altair_chart(
        alt.Chart(latency.dropna())
        .mark_bar()
        .encode(
            x=alt.X("seconds:Q"),
            y=alt.Y("label:N", title=None, axis=alt.Axis(labelLimit=300)),
            yOffset="percentile:N",
            color=alt.Color("percentile:N", sort=["p50", "p90", "p99"]),
            tooltip=["label", "percentile", alt.Tooltip("seconds:Q", format=".2f")],
        ),
        width="stretch",
    )
with right:
    st.markdown("**Tokens** (input / output)")
    tokens = runs.melt(id_vars=["label"], value_vars=["input_tokens", "output_tokens"], var_name="kind", value_name="tokens")
    tokens["kind"] = tokens["kind"].str.replace("_tokens", "")
    st.altair_chart(
        alt.Chart(tokens.fillna(0))
        .mark_bar()
        .encode(
            x=alt.X("tokens:Q"),
            y=alt.Y("label:N", title=None, axis=alt.Axis(labelLimit=300)),
            yOffset="kind:N",
            color=alt.Color("kind:N"),
            tooltip=["label", "kind", alt.Tooltip("tokens:Q", format=",")],
        ),
        width="stretch",
    )
