"""Release (`?release=ID`): header, needs-attention list, the nested tree, and its CSV."""

from __future__ import annotations

import streamlit as st

from relmgr import ids
from relmgr.ui import controls, frame, login, refresh
from relmgr.ui.links import requested_id
from relmgr.ui.present import RELEASE_PARAM, RELEASES_PAGE, md_escape
from relmgr.ui.release_tree import render_download, render_release
from relmgr.ui.timeline_chart import render_timeline

frame.enter()
login.require_signed_in()

st.page_link(RELEASES_PAGE, label="All releases", icon=":material/arrow_back:")
release_id = requested_id(
    param=RELEASE_PARAM, title="Release", key="release-picker", validate=ids.validate_release_id
)

st.title(f"Release {md_escape(release_id)}", anchor=False)
render_download(release_id)
controls.render_release_controls(release_id)


@st.fragment(run_every=refresh.interval())
def release_view() -> None:
    """The data region: reread on every refresh; open branches stay open."""
    render_timeline(release_id)
    render_release(release_id, interval=refresh.interval())


release_view()
