"""Keeping every run inside `streamlit_app.py`, the frame that signs users in.

The pages live in `pages/` beside the entry point. When Streamlit (1.67) finds such a folder it
starts each server process in its old folder-based multipage mode, in which the first run of the
process executes a requested page file directly (`/release?...` runs `pages/release.py` without
the frame), until some run calls `st.navigation`. That first visitor after a restart would skip
the sign-in gate and the sidebar. `enter()`, called first by the frame and by every page, turns
that mode off for the process and reruns the app: the rerun goes
through the frame, whose `st.navigation` still opens the requested page with its query string.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def in_folder_mode() -> bool:
    """Whether Streamlit would run the next page file directly, bypassing the frame."""
    return bool(PagesManager.uses_pages_directory)


def enter() -> None:
    """Leave folder mode for the whole process and start this run over inside the frame.

    Also done when the frame itself was run in folder mode: there it would sit inside Streamlit's
    own navigation of the folder, and one rerun per process is cheaper than reasoning about that.
    """
    if in_folder_mode():
        PagesManager.uses_pages_directory = False
        st.rerun(scope="app")
