"""Releases: tiles with counts per state, and the filterable, sortable, paged list with its CSV."""

from __future__ import annotations

import streamlit as st

from relmgr.ui import frame, login, refresh
from relmgr.ui.release_list import render_controls, render_download, render_list

frame.enter()
login.require_signed_in()

st.title("Releases", anchor=False)
controls = render_controls()


@st.fragment(run_every=refresh.interval())
def release_list() -> None:
    """The data region: reread on every refresh, while the controls above stay."""
    render_list(controls, interval=refresh.interval())


release_list()
render_download(controls)
