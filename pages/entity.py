"""Entity (`?id=ID`): any wave, cluster, bundle or app (or a release) with its breadcrumbs."""

from __future__ import annotations

import streamlit as st

from relmgr.ui import controls, frame, login, refresh
from relmgr.ui.entity_view import render_entity
from relmgr.ui.links import requested_id, validate_entity_id
from relmgr.ui.present import ENTITY_PARAM, md_escape, title_for_id

frame.enter()
login.require_signed_in()

entity_id = requested_id(
    param=ENTITY_PARAM, title="Entity", key="entity-picker", validate=validate_entity_id
)

st.title(md_escape(title_for_id(entity_id)), anchor=False)
st.caption(md_escape(entity_id))
controls.render_entity_controls(entity_id)


@st.fragment(run_every=refresh.interval())
def entity_view() -> None:
    """The data region: reread on every refresh."""
    render_entity(entity_id, interval=refresh.interval())


entity_view()
