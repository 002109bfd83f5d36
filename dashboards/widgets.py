"""Pieces the pages share: pickers bound to the index, safe text display, the page image, counted nouns."""

from __future__ import annotations

import re
import struct
from dataclasses import replace
from typing import Any

import streamlit as st

from dashboards import data
from tracr.documents.plain_markdown import plain_markdown
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
    "png_size",
    "fmt_seconds",
    "fmt_int",
    "plural",
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


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 vote``, ``2 votes``, ``1,000 pairs``: the count and the noun that agrees with it."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


#: The "every job" choice; not a valid job id (spaces, parentheses), so it cannot collide with one.
ALL_JOBS = "(all jobs)"
#: Session key of the job last picked on any page (the picker's own state does not outlive its page).
CURRENT_JOB = "current_job"


def pick_job(*, allow_all: bool = False) -> str | None:
    """Job picker tied to ``?job=`` on every page, which can only select an indexed job.

    One rule on every page: the job of the URL, else the job last picked in this browser
    session (on any page), else the newest job; ``(all jobs)`` is an extra choice where a page
    offers it, never the default. The picker writes its job back to the URL, so a page can be
    linked. It is not a Streamlit-bound widget: a bound one falls back to its default when the
    sidebar switches pages (the new page's URL has no ``?job=``), so each page chose for itself.
    """
    jobs = data.query(root(), Q.jobs())  # newest first
    options = list(jobs["job_id"])
    if not options:
        st.info(f"No jobs under {plain(root())}. Run `tracr run <config>` first, then refresh the index (sidebar).")
        return None
    if allow_all:
        options = options + [ALL_JOBS]
    wanted = next((j for j in (st.query_params.get("job"), st.session_state.get(CURRENT_JOB)) if j in options), options[0])
    if "job" in st.session_state and st.session_state["job"] not in options:  # "(all jobs)" from a page that offers it
        del st.session_state["job"]
    job_id = str(st.selectbox("Job", options, index=options.index(wanted), key="job"))
    st.session_state[CURRENT_JOB] = job_id
    if st.query_params.get("job") != job_id:
        st.query_params["job"] = job_id
    title = dict(zip(jobs["job_id"], jobs["title"], strict=False)).get(job_id)
    if title and title != job_id:
        st.caption(plain(title))
    return job_id


def show_output(text: str | None, *, key: str, raw: bool, height: int | None = None, plain_raw: bool = False) -> None:
    """Untrusted model output, neutralised and capped, with a "show all" escape hatch.

    Rendered, every model's HTML marks become the same Markdown (:func:`plain_markdown`, inside
    :func:`safe_markdown`). ``plain_raw`` makes the raw view show that Markdown too rather than the
    text as stored: the arena's two sides must read as the same kind of text either way.
    """
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
            if plain_raw:
                safe = replace(safe, text=plain_markdown(safe.text))
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


#: Zoom choices of a page image: the label shown, and how many times the page's width is magnified.
ZOOMS = {"Fit": 1.0, "1.5×": 1.5, "2×": 2.0, "3×": 3.0}
#: An image taller than this many times its width scrolls inside a box instead of filling the page.
TALL_RATIO = 1.8
IMAGE_BOX_HEIGHT_PX = 820


def png_size(image: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    width, height = struct.unpack(">II", image[16:24])
    return int(width), int(height)


def show_page_image(source_path: str | None, page: int, *, key: str, caption: str | None = None) -> None:
    """The rendered page at its column's width, with zoom, or a plain statement of why it cannot be shown.

    Rendered by width, so a very tall page (a receipt, a web page saved as one page) is as
    readable as any other, scrolling inside a box; zoom magnifies a part of the page's width
    that a slider picks. ``key`` names the widgets (the arena's carries no model name).
    """
    problem = data.source_pdf_problem(source_path)
    if problem:
        st.warning(f"No page image: {plain(problem)}")
        return
    choice = st.segmented_control(
        "Zoom",
        list(ZOOMS),
        default="Fit",
        required=True,
        key=f"{key}-zoom",
        help="Fit: the whole width of the page. 1.5×–3×: part of it, magnified",
    )
    zoom = ZOOMS.get(str(choice), 1.0)
    pan = 0.0
    if zoom > 1:
        pan = st.slider("Part of the page (left ↔ right)", 0, 100, 0, step=5, format="%d%%", key=f"{key}-pan") / 100
    try:
        image = data.page_image(str(source_path), int(page), zoom=zoom, pan=pan)
    except Exception as exc:  # a damaged or replaced PDF: say so, keep the page usable
        st.warning(f"No page image: cannot render page {page} of {plain(source_path)}: {plain(exc)}")
        return
    width, height = png_size(image)
    tall = height > TALL_RATIO * width
    with st.container(height=IMAGE_BOX_HEIGHT_PX, border=True) if tall else st.container():
        st.image(image, caption=None if caption is None else plain(caption), width="stretch")
    if tall:
        st.caption("Tall image: it fills the column's width; scroll inside the box to read down the page.")


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
                f"{plural(len(judged), 'judge vote')}; no pair was voted on by both a person and the judge yet, so their agreement is unknown."
            )
        else:
            st.caption(
                f"Judge–human agreement: {100 * agreed.rate:.0f}% of the {plural(agreed.pairs, 'pair')} both voted on (the judge's winner, or tie, equals the human majority)."
            )
    if job_id is not None:
        scores = data.query(root(), Q.model_scores(job_id))
        if not scores.empty and scores["cost_per_1000_pages"].notna().any():
            st.markdown("**Cost per 1,000 pages and speed** (`tracr score`, from measured tokens or GPU time)")
            table = scores[["model_slug", "cost_per_1000_pages", "pages_per_s", "pass_rate"]]
            table = table[[c for c in table.columns if table[c].notna().any()]]  # no pass rate without tests: no None column
            st.dataframe(table, hide_index=True, key="leaderboard-cost")
