"""Scores: what ``tracr score`` found, per model (docs/scoring.md).

Pass rates of olmOCR-Bench tests with bootstrap 95% intervals, health failure rates
by kind, reference sub-scores, cost per 1,000 pages and pages/s, read from the index
(``model_scores``, ``test_outcomes``, ``page_health``). Only what the scoring measured is
shown: a job scored without tests has no pass-rate columns, explanation or failed-test
table. Outside strings (test ids, explanations) are shown in tables, which Streamlit
renders as plain text.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.widgets import pick_job, plain, plural, root
from tracr.index import queries

KINDS = ("empty", "cut_off", "repetition", "wrong_script", "bad_table")
REFERENCE_COLUMNS = ["char_ned", "word_ned", "teds", "kendall_tau"]

st.title("Scores")
job_id = pick_job()
if job_id is None:
    st.stop()

scores = data.query(root(), queries.model_scores(job_id))
if scores.empty:
    st.info(
        f"Job {plain(job_id)} has no scores yet: run `tracr score {job_id}` (add `--tests FILE` and `--references DIR` for ground truth), then refresh the index."
    )
    st.stop()

tested = scores[scores["tests"].notna() & (scores["tests"] > 0)]
has_references = scores[REFERENCE_COLUMNS].notna().any().any()
if not tested.empty:
    best = tested.iloc[0]
    st.markdown(
        f"Best pass rate: **{plain(best['model_slug'])}** {100 * best['pass_rate']:.1f}% "
        f"(95% CI {100 * best['pass_low']:.1f}–{100 * best['pass_high']:.1f}) over {plural(int(best['tests']), 'test')}."
    )
    st.caption(
        "Pass rate = mean of per-category pass rates (olmOCR-Bench). The interval is a 95% percentile bootstrap that resamples "
        "tests within each category: overlapping intervals mean these tests do not separate the models."
    )
else:
    st.info(
        f"Only health checks so far: job {plain(job_id)} was scored without olmOCR-Bench tests, so there are no pass rates. "
        f"`tracr score {job_id} --tests FILE` adds them (and `--references DIR` edit distances against reference Markdown)."
    )

quality = pd.DataFrame(
    {
        "model": scores["model_slug"],
        "pass rate": scores["pass_rate"] * 100,
        "95% low": scores["pass_low"] * 100,
        "95% high": scores["pass_high"] * 100,
        "tests": scores["tests"],
        "char NED": scores["char_ned"],
        "word NED": scores["word_ned"],
        "TEDS": scores["teds"],
        "order tau": scores["kendall_tau"],
        "cost / 1k pages": scores["cost_per_1000_pages"],
        "pages/s": scores["pages_per_s"],
    }
)
# A column no model has a value in (no tests, no references, no prices) says nothing: leave it out.
quality = quality[[c for c in quality.columns if c == "model" or quality[c].notna().any()]]
if len(quality.columns) > 1:
    st.markdown("**Tests, references, cost and speed**" if not tested.empty or has_references else "**Cost and speed**")
    st.dataframe(
        quality,
        hide_index=True,
        width="stretch" if len(quality.columns) > 4 else "content",
        key="scores-table",
        column_config={
            "model": st.column_config.TextColumn(pinned=True),
            **{c: st.column_config.NumberColumn(format="%.1f") for c in quality.columns if c.startswith(("pass", "95%"))},
        },
    )

health = pd.DataFrame(
    {
        "model": scores["model_slug"],
        "pages": scores["pages"],
        "unhealthy %": scores["failure_rate"] * 100,
        **{f"{k.replace('_', ' ')} %": scores[f"{k}_rate"] * 100 for k in KINDS},
    }
)
st.markdown("**Health** (every page, no ground truth needed)")
st.dataframe(
    health,
    hide_index=True,
    key="scores-health",
    column_config={
        "model": st.column_config.TextColumn(pinned=True),
        **{c: st.column_config.NumberColumn(format="%.1f") for c in health.columns if c.endswith("%")},
    },
)
st.caption(
    "Health rates are the share of a model's pages with each problem: empty output, cut off at the token limit, "
    "a repeating loop, the wrong script for the page, a broken table."
)

if not tested.empty:
    chart = quality[quality["tests"].notna() & (quality["tests"] > 0)]
    order = list(chart["model"])
    base = alt.Chart(chart).encode(y=alt.Y("model:N", sort=order, title=None))
    rule = base.mark_rule(strokeWidth=3).encode(
        x=alt.X("95% low:Q", title="tests passed (%)", scale=alt.Scale(domain=[0, 100])), x2="95% high:Q"
    )
    point = base.mark_circle(size=140).encode(x="pass rate:Q", tooltip=["model", "pass rate", "95% low", "95% high", "tests"])
    st.markdown("**Pass rate with 95% interval**")
    st.altair_chart((rule + point).properties(height=max(120, 48 * len(chart))), width="stretch")
    for axis, label in (("cost / 1k pages", "cost per 1,000 pages"), ("pages/s", "pages per second")):
        have = chart[chart[axis].notna()] if axis in chart.columns else chart.iloc[0:0]
        if len(have):
            st.markdown(f"**Quality versus {label}** (the Pareto front is up and to the {'left' if axis.startswith('cost') else 'right'})")
            pts = alt.Chart(have).encode(x=alt.X(f"{axis}:Q", title=label), tooltip=["model", "pass rate", axis])
            bars = pts.mark_rule().encode(y=alt.Y("95% low:Q", title="tests passed (%)"), y2="95% high:Q")
            dots = pts.mark_circle(size=120).encode(y="pass rate:Q")
            labels = pts.mark_text(dx=8, align="left").encode(y="pass rate:Q", text="model:N")
            st.altair_chart(bars + dots + labels, width="stretch")

    categories = data.query(root(), queries.category_pass_rates(job_id))
    if not categories.empty:
        st.markdown("**Pass rate by category** (outcomes of every scored run)")
        st.dataframe(
            categories.pivot(index="category", columns="model_slug", values="pass_rate").mul(100).round(1), key="scores-categories"
        )

model = st.selectbox("Details of model", list(scores["model_slug"]), key="scores-model")
if model:
    # Failed tests only where there were tests: an empty table about tests nobody ran explains nothing.
    columns = st.columns(2 if not tested.empty else 1)
    with columns[0]:
        st.markdown("**Pages with health issues**")
        unhealthy = data.query(root(), queries.unhealthy_pages(job_id, model))
        if unhealthy.empty:
            st.caption(f"None: every page of {plain(model)} passed the health checks.")
        else:
            st.dataframe(unhealthy, hide_index=True, key="scores-unhealthy")
    if not tested.empty:
        with columns[1]:
            st.markdown("**Failed tests**")
            st.dataframe(data.query(root(), queries.failed_tests(job_id, model)), hide_index=True, key="scores-failed")
