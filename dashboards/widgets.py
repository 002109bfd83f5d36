"""Pieces the pages share: pickers bound to the index, safe text display, the page image."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import data
from tracr.safe_markdown import DEFAULT_MAX_CHARS, safe_markdown, safe_raw

__all__ = ["root", "pick_job", "show_output", "show_page_image", "fmt_seconds", "fmt_int", "status_label"]

STATUS_ICONS = {"done": "✅", "failed": "❌", "completed": "✅", "running": "⏳", "queued": "⏳", "cancelled": "⛔", "partial": "⚠️"}


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


def pick_job(key: str, *, allow_all: bool = False, bind: bool = True) -> str | None:
    """Job picker; the choice can come from the URL (``?job=...``), but only among indexed jobs."""
    jobs = data.query(root(), "SELECT job_id, title FROM jobs ORDER BY job_id")
    options = list(jobs["job_id"])
    if allow_all:
        options = ["*"] + options
    if not options:
        st.info(f"No jobs under {root()}. Run `tracr run <config>` first, then refresh the index (sidebar).")
        return None
    titles = dict(zip(jobs["job_id"], jobs["title"]))

    def label(job_id: str) -> str:
        if job_id == "*":
            return "All jobs"
        title = titles.get(job_id)
        return f"{job_id} — {title}" if title and title != job_id else job_id

    kwargs = {"bind": "query-params"} if bind else {}
    return st.selectbox("Job", options, format_func=label, key=key, **kwargs)


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
        if raw:
            safe = safe_raw(text, max_chars=limit)
            st.code(safe.text, language="markdown", wrap_lines=True)
        else:
            safe = safe_markdown(text, max_chars=limit)
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
        st.warning(f"No page image: {problem}")
        return
    try:
        image = data.page_image(str(source_path), int(page))
    except Exception as exc:  # a damaged or replaced PDF: say so, keep the page usable
        st.warning(f"No page image: cannot render page {page} of {source_path}: {exc}")
        return
    st.image(image, caption=caption, width="stretch")
