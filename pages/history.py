"""History: releases over time, durations and failure rate by shape, slowest waves and clusters."""

from __future__ import annotations

import streamlit as st

from relmgr.ui import frame, login
from relmgr.ui.history_view import render_history

frame.enter()
login.require_signed_in()

st.title("History", anchor=False)
render_history()
