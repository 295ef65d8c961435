"""The dashboard's own CSS: HTML tables and state tags, the band above titles, narrow screens.

Colours are translucent tints over whatever the theme's background is, with the text in the
theme's own colour, so each reads in the light and the dark theme alike.
"""

from __future__ import annotations

import streamlit as st

_CSS = """
<style>
/* The empty band above the title: Streamlit's top padding, and the invisible cookie component
   of streamlit-authenticator (extra_streamlit_components' CookieManager, key "init"), which
   took a 25-40 px row. It must still load and run (it reads and writes the session cookie),
   so it is taken out of the flow, not hidden. */
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem !important; }
.st-key-init { position: absolute !important; width: 1px !important; height: 1px !important;
  overflow: hidden !important; opacity: 0; pointer-events: none; }
.relmgr-state { white-space: nowrap; padding: 0.05rem 0.45rem; border-radius: 0.4rem;
  font-weight: 600; font-size: 0.875em; }
.relmgr-red { background: rgba(255, 43, 43, 0.18); }
.relmgr-orange { background: rgba(255, 164, 33, 0.25); }
.relmgr-yellow { background: rgba(255, 214, 0, 0.25); }
.relmgr-blue { background: rgba(28, 131, 225, 0.18); }
.relmgr-green { background: rgba(33, 195, 84, 0.2); }
.relmgr-violet { background: rgba(128, 61, 245, 0.18); }
.relmgr-gray { background: rgba(128, 132, 149, 0.2); }
.relmgr-attention { overflow-x: auto; max-height: 32rem; overflow-y: auto; }
.relmgr-attention table { width: 100%; border-collapse: collapse; font-size: 0.875rem; }
.relmgr-attention th { position: sticky; top: 0; background: var(--background-color, inherit);
  text-align: left; }
.relmgr-attention td, .relmgr-attention th { vertical-align: top; padding: 0.3rem 0.5rem; }
.relmgr-attention td:nth-child(-n+4) { white-space: nowrap; }
.relmgr-error { white-space: pre-wrap; word-break: break-word; font-family: monospace;
  font-size: 0.8rem; }
/* Nine state tiles do not fit one row of a 1400 px page: they wrap, five to a full row, each
   wide enough for "Awaiting approval · 12". */
.st-key-state-tiles [data-testid="stHorizontalBlock"] { flex-wrap: wrap; gap: 0.5rem; }
.st-key-state-tiles [data-testid="stColumn"] {
  min-width: 10.5rem !important; flex: 1 1 10.5rem !important; }
/* Phones: the list's controls two to a row and the tiles three to a row, instead of one
   under the other, so the table starts near the top. */
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] {
    padding-left: 0.75rem !important; padding-right: 0.75rem !important;
    padding-top: 3rem !important; }
  .st-key-list-controls [data-testid="stHorizontalBlock"],
  .st-key-state-tiles [data-testid="stHorizontalBlock"] { flex-wrap: wrap; gap: 0.5rem; }
  .st-key-list-controls [data-testid="stColumn"] {
    min-width: calc(50% - 0.5rem) !important; flex: 1 1 calc(50% - 0.5rem) !important; }
  .st-key-state-tiles [data-testid="stColumn"] {
    min-width: calc(33% - 0.5rem) !important; flex: 1 1 calc(33% - 0.5rem) !important; }
  .st-key-state-tiles button { padding: 0.15rem 0.3rem; min-height: 2rem; }
}
</style>
"""


def apply() -> None:
    """Add the CSS to this run's page (it takes no space)."""
    st.html(_CSS)
