"""The tracr reviewer: ``tracr review`` runs ``streamlit run`` on this file.

A multipage app (``st.navigation``) over one outputs root: Overview, Browse,
Compare, Arena (blind pairwise voting), Leaderboard and Scores. The outputs root comes
from ``-- --outputs DIR`` or ``$TRACR_OUTPUTS``. Overview is at ``/`` and, like every
other page, at its own name (``/overview``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards import data
from dashboards.widgets import plain

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="tracr review", page_icon="🔎", layout="wide")

OVERVIEW = st.Page(VIEWS / "overview.py", title="Overview", icon=":material/monitoring:", url_path="home", default=True)


def _overview_by_name() -> None:
    """``/overview``: the default page is served at ``/`` only, so its own name needs a page that leads there."""
    st.switch_page(OVERVIEW, query_params=st.query_params.to_dict())


PAGES = [
    OVERVIEW,
    st.Page(VIEWS / "browse.py", title="Browse", icon=":material/description:", url_path="browse"),
    st.Page(VIEWS / "compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page(VIEWS / "arena.py", title="Arena", icon=":material/how_to_vote:", url_path="arena"),
    st.Page(VIEWS / "leaderboard.py", title="Leaderboard", icon=":material/leaderboard:", url_path="leaderboard"),
    st.Page(VIEWS / "scores.py", title="Scores", icon=":material/checklist:", url_path="scores"),
    st.Page(_overview_by_name, title="Overview", url_path="overview", visibility="hidden"),
]

page = st.navigation(PAGES)

root = str(data.outputs_root())
with st.sidebar:
    st.caption(f"Outputs: {plain(root)}")
    if st.button("Refresh index", help="Re-scan the output tree for new or changed runs", key="refresh-index"):
        st.toast(plain(data.refresh(root)))

page.run()
