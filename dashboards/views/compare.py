"""Compare: the same page from two models side by side, and a diff of their texts."""

from __future__ import annotations

import streamlit as st

from dashboards import data
from dashboards.widgets import fmt_seconds, pick_job, plain, root, show_output, show_page_image, status_label
from tracr.documents.plain_markdown import plain_markdown
from tracr.index import queries as Q
from tracr.review.safe_markdown import DEFAULT_MAX_CHARS, cap_text
from tracr.review.text_diff import diff_stats, inline_diff_markdown, unified_diff

st.title("Compare")

job_id = pick_job()
if job_id is None:
    st.stop()

pdf_slugs = list(data.query(root(), Q.job_pdfs(job_id))["pdf_slug"])
if not pdf_slugs:
    st.info("No pages indexed for this job yet.")
    st.stop()
cols = st.columns([2, 1, 2, 2])
pdf_slug = cols[0].selectbox("PDF", pdf_slugs, key="pdf", bind="query-params")
page_numbers = [int(p) for p in data.query(root(), Q.pdf_page_numbers(job_id, pdf_slug))["page"]]
page = cols[1].selectbox("Page", page_numbers, key="page", bind="query-params")

sides = data.query(root(), Q.page_outputs(job_id, pdf_slug, page))
outputs = {(r.model_slug, int(r.run)): r for r in sides.itertuples()}
choices = list(outputs)
if len(choices) < 2:
    st.info("Only one output of this page exists; pick another page or run a second model.")
    st.stop()


def side_label(choice: tuple[str, int]) -> str:
    row = outputs[choice]
    mark = "" if row.status == "done" else "  ❌ failed"
    return f"{choice[0]} · run-{choice[1]}{mark}"


second = next((i for i, c in enumerate(choices) if c[0] != choices[0][0]), 1)
left_key = cols[2].selectbox("Left", choices, index=0, format_func=side_label, key="compare_left")
right_key = cols[3].selectbox("Right", choices, index=second, format_func=side_label, key="compare_right")
left, right = outputs[left_key], outputs[right_key]
left_text = left.markdown if isinstance(left.markdown, str) else ""
right_text = right.markdown if isinstance(right.markdown, str) else ""

# Diffs run on the capped texts (a 1 MB looping output must not stall the page), as the same kind of text:
# one model's <sup>1</sup> against another's ¹ is no difference, and comments are never shown.
left_capped, left_cut = cap_text(left_text, DEFAULT_MAX_CHARS)
right_capped, right_cut = cap_text(right_text, DEFAULT_MAX_CHARS)
left_capped, right_capped = plain_markdown(left_capped), plain_markdown(right_capped)
stats = diff_stats(left_capped, right_capped)
metrics = st.columns(4)
metrics[0].metric("Similarity", f"{stats.similarity:.1%}")
metrics[1].metric("Lines left / right", f"{stats.lines_left} / {stats.lines_right}")
metrics[2].metric("Lines removed / added", f"{stats.lines_removed} / {stats.lines_added}")
metrics[3].metric("Characters left / right", f"{len(left_text):,} / {len(right_text):,}")
st.caption(
    "Similarity and diffs compare the texts as shown (HTML marks as Markdown, comments dropped)"
    + (f", the first {DEFAULT_MAX_CHARS:,} characters of each output." if left_cut or right_cut else ".")
)

source = data.query_one(root(), Q.pdf_source(job_id, pdf_slug))

side_tab, inline_tab, unified_tab = st.tabs(["Side by side", "Inline diff", "Unified diff"])
with side_tab:
    raw = st.toggle("Raw", key="compare_raw", help="Show the Markdown sources instead of rendering them")
    image_col, left_col, right_col = st.columns([4, 5, 5])
    with image_col:
        show_page_image(source["source_path"] if source else None, page, key="compare-image", caption=f"{pdf_slug} page {page}")
    for column, choice, row in ((left_col, left_key, left), (right_col, right_key, right)):
        with column:
            st.markdown(f"**{plain(choice[0])}** · run-{choice[1]} · {plain(status_label(row.status))} · {fmt_seconds(row.latency_s)}")
            if row.status != "done":
                st.error(f"failed: {plain(row.error or 'no error recorded')}")
            show_output(row.markdown, key=f"compare-{job_id}-{pdf_slug}-{page}-{choice[0]}-{choice[1]}", raw=raw, height=800)
with inline_tab:
    st.caption(
        f":red-background[:red[~~removed~~]] from **{plain(left_key[0])}**, :green-background[:green[added]] by **{plain(right_key[0])}**"
    )
    with st.container(height=800, border=True):
        if stats.identical:
            st.success("The two texts are identical.")
        else:
            st.markdown(inline_diff_markdown(left_capped, right_capped))
with unified_tab:
    diff = unified_diff(left_capped, right_capped, f"{left_key[0]}/run-{left_key[1]}", f"{right_key[0]}/run-{right_key[1]}")
    st.code(diff or "(no differences)", language="diff", wrap_lines=True)
