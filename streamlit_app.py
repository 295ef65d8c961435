"""The dashboard's frame: page config, the sign-in gate, the sidebar, and the pages it declares.

Run with `python -m relmgr.ui.server run streamlit_app.py` (Streamlit's CLI with relmgr's server
workarounds in place first: no outbound call, see relmgr/ui/server.py). Before sign-in only the
sign-in form is drawn and nothing is read; the pages are still declared (hidden), so a shared link
such as `/release?release=rel-2026-11-payments` survives the sign-in and opens where it pointed.

The pages live in `pages/`. A `pages/` folder makes Streamlit start each process in its old
folder-based multipage mode, which would run a deep-linked page without this frame; `frame.enter()`
(first thing here and in every page) turns that off. Each page also refuses to run for a session
that is not signed in.
"""

from __future__ import annotations

import streamlit as st

from relmgr.errors import ConfigError
from relmgr.settings import get_settings
from relmgr.ui import controls, frame, login, refresh, server, streamlit_compat, styles

server.ensure_installed()
streamlit_compat.check()  # a workaround whose target is gone stops the app here, by name
frame.enter()

st.set_page_config(
    page_title="relmgr",
    page_icon="🚀",  # an emoji, not a Material icon: those are fetched from a font CDN
    layout="wide",
    # "auto": open on a wide screen, collapsed on a phone, where it would cover the page.
    initial_sidebar_state="auto",
)
styles.apply()

PAGES = [
    st.Page(
        "pages/releases.py",
        title="Releases",
        icon=":material/view_list:",
        url_path="releases",
        default=True,
    ),
    st.Page(
        "pages/release.py", title="Release", icon=":material/account_tree:", url_path="release"
    ),
    st.Page("pages/entity.py", title="Entity", icon=":material/deployed_code:", url_path="entity"),
    st.Page("pages/history.py", title="History", icon=":material/history:", url_path="history"),
]


def inbox_page(waiting: int | None = None) -> st.Page:
    """The Waiting-for-you page, its count in its title (the sidebar shows it)."""
    title = f"Waiting for you ({waiting})" if waiting else "Waiting for you"
    return st.Page("pages/inbox.py", title=title, icon=":material/inbox:", url_path="inbox")


try:
    settings = get_settings()
    user = login.gate(settings)
except ConfigError as error:
    st.navigation([*PAGES, inbox_page()], position="hidden")
    login.render_startup_error(error)
    st.stop()

if user is None:
    st.navigation([*PAGES, inbox_page()], position="hidden")
    st.stop()

navigation = st.navigation([*PAGES, inbox_page(controls.waiting_count())], position="sidebar")
login.render_users_file_problem(settings, user)
with st.sidebar:
    login.render_account(user)
    st.divider()
    refresh.render_control(settings)
navigation.run()
