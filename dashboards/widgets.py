"""Pieces the pages share: pickers bound to the index, safe text display, the page image."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from dashboards import data
from tracr.index import queries as Q
from tracr.review.safe_markdown import DEFAULT_MAX_CHARS, safe_markdown, safe_raw
from tracr.review.text_diff import escape_markdown_text

__all__ = [
    "ALL_JOBS",
    "root",
    "plain",
    "pick_job",
    "show_output",
    "show_page_image",
    "fmt_seconds",
    "fmt_int",
    "status_label",
    "judge_and_cost_panel",
]

#: Model output headings drop this many levels, so a page's "# Title" stays smaller than the app's own.
HEADING_DEMOTION = 2
STATUS_ICONS = {"done": "✅", "failed": "❌", "completed": "✅", "running": "⏳", "queued": "⏳", "cancelled": "⛔", "partial": "⚠️"}


_AUTOLINK = re.compile(r"://|www\.|@", re.IGNORECASE)


def plain(value: Any) -> str:
    """Text that came from outside (an endpoint, a config, a file name) as Markdown that shows it literally.

    Every ``st.*`` call that renders Markdown (``st.markdown``, ``st.caption``, ``st.error`` and the
    other alerts, ``st.metric`` values, expander labels, image captions, toasts) gets such text
    only through here: error messages, finish reasons, statuses, model names and slugs, PDF names,
    source paths, titles, voter names. Every ASCII punctuation mark is backslash-escaped
    (:func:`tracr.review.text_diff.escape_markdown_text`), so no link, autolink, image, HTML,
    entity, emoji or Streamlit directive (``:red[...]``, ``:material/...:``) can form from it.
    ``None`` and NaN show as an en dash. Model *page output* goes through :func:`show_output` instead.
    """
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    text = str(value).replace("\x00", "\ufffd")
    # GFM turns bare URLs and e-mail addresses into links even when escaped: a zero-width space breaks them.
    text = _AUTOLINK.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)
    return escape_markdown_text(text)


def root() -> str:
    return str(data.outputs_root())


def status_label(status: Any) -> str:
    text = str(status or "unknown")
    return f"{STATUS_ICONS.get(text, '•')} {text}"


def fmt_seconds(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if number != number:  # NaN
        return "–"
    return f"{number * 1000:.0f} ms" if number < 1 else f"{number:.2f} s"


def fmt_int(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if number != number else f"{int(number):,}"


#: The "every job" choice; not a valid job id (spaces, parentheses), so it cannot collide with one.
ALL_JOBS = "(all jobs)"


def pick_job(key: str, *, allow_all: bool = False) -> str | None:
    """Job picker bound to the URL (``?job=...``), which can only select an indexed job.

    Bound pickers show their values as they are: Streamlit puts the shown label in the URL.
    """
    jobs = data.query(root(), Q.job_titles())
    options = list(jobs["job_id"])
    if not options:
        st.info(f"No jobs under {plain(root())}. Run `tracr run <config>` first, then refresh the index (sidebar).")
        return None
    if allow_all:
        options = [ALL_JOBS] + options
    job_id = st.selectbox("Job", options, key=key, bind="query-params")
    title = dict(zip(jobs["job_id"], jobs["title"], strict=False)).get(job_id)
    if title and title != job_id:
        st.caption(plain(title))
    return job_id


def show_output(text: str | None, *, key: str, raw: bool, height: int | None = None) -> None:
    """Untrusted model output, neutralised and capped, with a "show all" escape hatch."""
    if not isinstance(text, str):  # NULL from the index (failed page) arrives as None or NaN
        text = None
    show_all = bool(st.session_state.get(f"{key}-all"))
    limit = None if show_all else DEFAULT_MAX_CHARS
    box = st.container(height=height, border=True) if height else st.container(border=True)
    with box:
        if text is None:
            st.caption("No text: this page failed or has no output.")
            return
        if not text.strip():
            st.caption("Empty output: the model returned no text for this page.")
            return
        if raw:
            safe = safe_raw(text, max_chars=limit)
            st.code(safe.text, language="markdown", wrap_lines=True)
        else:
            safe = safe_markdown(text, max_chars=limit, demote_headings=HEADING_DEMOTION)
            st.markdown(safe.text)
    if safe.truncated and not show_all:
        note = f"Capped for display: {safe.original_chars:,} characters"
        if safe.collapsed_lines:
            note += f", {safe.collapsed_lines:,} repeated lines collapsed"
        st.caption(note)
        if st.button("Show all", key=f"{key}-show-all"):
            st.session_state[f"{key}-all"] = True
            st.rerun()


def show_page_image(source_path: str | None, page: int, *, caption: str | None = None) -> None:
    """The rendered page, or a plain statement of why it cannot be shown."""
    problem = data.source_pdf_problem(source_path)
    if problem:
        st.warning(f"No page image: {plain(problem)}")
        return
    try:
        image = data.page_image(str(source_path), int(page))
    except Exception as exc:  # a damaged or replaced PDF: say so, keep the page usable
        st.warning(f"No page image: cannot render page {page} of {plain(source_path)}: {plain(exc)}")
        return
    st.image(image, caption=None if caption is None else plain(caption), width="stretch")


def judge_and_cost_panel(votes: list[Any], job_id: str | None) -> None:
    """Leaderboard section: human, LLM-judge and combined Bradley–Terry ratings, their agreement, and cost per 1,000 pages."""
    import pandas as pd

    from tracr.review.judged import agreement, split_votes

    human, judged = split_votes(votes)
    if judged:
        columns: dict[str, dict[str, str]] = {}
        for label, subset in (("human", human), ("judge", judged), ("combined", votes)):
            for r in data.ratings(subset):
                columns.setdefault(r.model, {})[label] = f"{r.rating:,.0f} [{r.ci_low:,.0f}–{r.ci_high:,.0f}]"
        st.markdown("**Human, LLM-judge and combined ratings** (Bradley–Terry, 95% CI)")
        table = pd.DataFrame(
            [{"model": m, **{k: c.get(k, "-") for k in ("human", "judge", "combined")}} for m, c in sorted(columns.items())]
        )
        st.dataframe(table, hide_index=True, key="leaderboard-judge")
        agreed = agreement(votes)
        if agreed.rate is None:
            st.caption(
                f"{len(judged)} judge votes; no pair was voted on by both a person and the judge yet, so their agreement is unknown."
            )
        else:
            st.caption(
                f"Judge–human agreement: {100 * agreed.rate:.0f}% of the {agreed.pairs} pairs both voted on (the judge's winner, or tie, equals the human majority)."
            )
    if job_id is not None:
        scores = data.query(root(), Q.model_scores(job_id))
        if not scores.empty and scores["cost_per_1000_pages"].notna().any():
            st.markdown("**Cost per 1,000 pages and speed** (`tracr score`, from measured tokens or GPU time)")
            st.dataframe(scores[["model_slug", "cost_per_1000_pages", "pages_per_s", "pass_rate"]], hide_index=True, key="leaderboard-cost")
