"""Waiting for you: every wave awaiting approval, paused release and held app, oldest first."""

from __future__ import annotations

import streamlit as st

from relmgr.errors import RelmgrError
from relmgr.ui import controls, frame, login, refresh
from relmgr.ui.present import (
    age_seconds,
    format_seconds,
    format_time,
    md_escape,
    release_href,
)

frame.enter()
login.require_signed_in()

st.title("Waiting for you", anchor=False)
controls.show_result()


@st.fragment(run_every=refresh.interval())
def inbox_view() -> None:
    """The data region: reread on every refresh."""
    user = controls.signed_in_user()
    try:
        items = controls.read_waiting()
    except RelmgrError as exc:
        st.error(md_escape(exc.message), icon=":material/cloud_off:")
        return
    if not items:
        st.caption("Nothing waits for a person: no gated wave, paused release or held app.")
        return
    st.caption(f"{len(items)} waiting, oldest first.")
    for number, item in enumerate(items):
        with st.container(border=True):
            waited = (
                f"waiting {format_seconds(age_seconds(item.since))} "
                f"(since {format_time(item.since)})"
                if item.since
                else "waiting since an unknown time"
            )
            st.markdown(
                f"[{md_escape(item.release_id)}]({release_href(item.release_id)}) · "
                f"{md_escape(item.what)} · {waited}"
            )
            if controls.may_control(user):
                assert user is not None
                controls.render_buttons(list(item.actions), user, key=f"inbox-{number}")


inbox_view()
