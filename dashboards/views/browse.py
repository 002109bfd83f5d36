"""Browse: one page of one run — the rendered PDF page beside the model's Markdown, with its metrics.

Every selection can come from the URL (``?job=...&model=...&run=...&pdf=...&page=...``),
but only as one of the options the index offers, so a URL never names a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboards import data
from dashboards.widgets import fmt_int, fmt_seconds, pick_job, plain, root, show_output, show_page_image, status_label
from tracr.errors import TracrError
from tracr.index import queries as Q
from tracr.review.tags import Tag, append_tag

#: Columns of the "All pages" table: the essentials, so the table fits beside the sidebar.
PAGE_COLUMNS = [
    "page",
    "status",
    "attempts",
    "latency_s",
    "ttft_s",
    "input_tokens",
    "output_tokens",
    "finish_reason",
    "chars",
    "truncated",
    "error",
]

st.title("Browse")

job_id = pick_job()
if job_id is None:
    st.stop()

models = list(data.query(root(), Q.job_models(job_id))["model_slug"])
if not models:
    st.info("This job has no runs yet.")
    st.stop()

cols = st.columns([2, 1.4, 2, 1])
model = cols[0].selectbox("Model", models, key="model", bind="query-params")
runs = data.query(root(), Q.model_runs(job_id, model))
run_status = {int(r.run): r.status for r in runs.itertuples()}
run = cols[1].selectbox("Run", list(run_status), format_func=lambda n: f"run-{n} · {run_status[n]}", key="browse_run")

pdfs = data.query(root(), Q.run_pdfs(job_id, model, run))
if pdfs.empty:
    st.info(f"run-{run} of {plain(model)} has no PDFs recorded (status: {plain(run_status.get(run))}).")
    st.stop()
pdf_rows = {r.pdf_slug: r for r in pdfs.itertuples()}


pdf_slug = cols[2].selectbox("PDF", list(pdf_rows), key="pdf", bind="query-params")
pdf = pdf_rows[pdf_slug]
if pdf.error:
    st.error(f"PDF {plain(pdf_slug)} {plain(pdf.status)}: {plain(pdf.error)}")

pages = data.query(root(), Q.pdf_pages(job_id, model, run, pdf_slug))
if pages.empty:
    st.info("No page of this PDF was processed in this run.")
    st.stop()
page_rows = {int(r.page): r for r in pages.itertuples()}
page = cols[3].selectbox("Page", list(page_rows), key="page", bind="query-params")
row = page_rows[page]
failed_pages = [n for n, r in page_rows.items() if r.status != "done"]
st.caption(
    f"{plain(pdf_slug)}: {int(pdf.pages_done or 0)} done, {len(failed_pages)} failed"
    + (f" (pages {', '.join(map(str, failed_pages))})" if failed_pages else "")
    + f" · run-{run} {plain(run_status.get(run))}"
)

collections = data.job_collections(root(), job_id)
here = list(collections.of(pdf_slug, page)) if collections is not None else []
with st.expander(f"Collections: {plain(', '.join(here) or 'none')}", expanded=bool(st.session_state.get("tag_saved"))):
    if saved := st.session_state.pop("tag_saved", None):
        st.success(plain(saved))
    with st.form("tag_form", clear_on_submit=True, border=False):
        tag_cols = st.columns([3, 2, 2, 1], vertical_alignment="bottom")
        tag_name = tag_cols[0].text_input("Collection", key="tag_name", help="e.g. handwritten, stamped, two-column")
        tag_scope = tag_cols[1].radio("Tag", ["this page", "the whole PDF"], key="tag_scope", horizontal=True)
        tag_action = tag_cols[2].radio("Action", ["add", "remove"], key="tag_action", horizontal=True)
        tagged = tag_cols[3].form_submit_button("Save")
    if tagged:
        try:
            tag = Tag(
                job_id=job_id,
                pdf_slug=pdf_slug,
                page=page if tag_scope == "this page" else None,
                collection=(tag_name or "").strip(),
                action=tag_action,
                by=os.environ.get("TRACR_VOTER") or "reviewer",
            )
            append_tag(Path(root()), tag)
        except (ValueError, OSError) as exc:
            st.error(f"The tag was not saved: {plain(exc.one_line() if isinstance(exc, TracrError) else ' '.join(str(exc).split()))}")
        else:
            where = f"{pdf_slug}" + (f" page {page}" if tag.page else "")
            st.session_state["tag_saved"] = f"{'Added to' if tag_action == 'add' else 'Removed from'} {tag.collection}: {where}"
            st.rerun()

metrics = st.columns(6)
metrics[0].metric("Status", plain(status_label(row.status)))
metrics[1].metric("Latency", fmt_seconds(row.latency_s))
metrics[2].metric("Time to first token", fmt_seconds(row.ttft_s))
metrics[3].metric("Tokens in / out", f"{fmt_int(row.input_tokens)} / {fmt_int(row.output_tokens)}")
metrics[4].metric("Attempts", fmt_int(row.attempts))
metrics[5].metric("Finish reason", plain(row.finish_reason or None))
if row.status != "done":
    st.error(
        f"Page {page} failed" + (f" ({plain(row.error_class)})" if row.error_class else "") + f": {plain(row.error or 'no error recorded')}"
    )
elif row.finish_reason == "length":
    st.warning("The model hit max_tokens on this page: the output may be cut off or looping.")

image_col, text_col = st.columns(2, gap="medium")
with image_col:
    st.markdown(f"**Page {page} of {plain(pdf_slug)}**")
    show_page_image(pdf.source_path, page, key="browse-image")
with text_col:
    head, toggles = st.columns(2, vertical_alignment="center")
    head.markdown(f"**{plain(model)}** · run-{run}")
    switches = toggles.container(horizontal=True, horizontal_alignment="right")  # room for both labels
    raw = switches.toggle("Raw", key="browse_raw", help="Show the Markdown source instead of rendering it")
    reply = data.page_reply(root(), job_id, model, run, pdf_slug, page)
    show_reply = switches.toggle(
        "Reply",
        key="browse_reply",
        disabled=reply is None,
        help="Show the model's reply as it came, before its family's parser made it Markdown"
        if reply is not None
        else "No reply kept: the parser left this reply unchanged (or the page never got one)",
    )
    if adapter := data.run_adapter(root(), job_id, model, run):
        furniture = "furniture kept" if adapter.get("keep_furniture") else "furniture dropped"
        st.caption(
            f"Asked as {plain(adapter.get('name'))} ({plain(adapter.get('request'))}; {furniture}); read by {plain(adapter.get('parser'))}"
        )
    if show_reply:
        show_output(reply, key=f"browse-reply-{job_id}-{model}-{run}-{pdf_slug}-{page}", raw=True, height=900)
    else:
        markdown = data.query_one(root(), Q.page_markdown(job_id, model, run, pdf_slug, page))
        show_output(markdown["markdown"] if markdown else None, key=f"browse-{job_id}-{model}-{run}-{pdf_slug}-{page}", raw=raw, height=900)

with st.expander(f"All pages of {plain(pdf_slug)} in this run ({len(pages)}; {int((pages['status'] != 'done').sum())} failed)"):
    st.dataframe(
        pages.assign(status=pages["status"].map(status_label)),
        hide_index=True,
        column_order=PAGE_COLUMNS,  # what fits the page's width; the rest of the row is in the page's metrics above
        column_config={
            "page": st.column_config.NumberColumn("page", pinned=True),
            "latency_s": st.column_config.NumberColumn("latency s", format="%.2f"),
            "ttft_s": st.column_config.NumberColumn("TTFT s", format="%.2f"),
            "input_tokens": "tokens in",
            "output_tokens": "tokens out",
            "finish_reason": "finish",
        },
        key="browse-pages",
    )
