"""The Streamlit dashboard's package: everything the pages call, so that the pages stay thin.

    runtime      the one shared reader (and the seam tests use to swap it)
    login        the sign-in gate, the cookie key and the account box in the sidebar
    refresh      the auto-refresh control, and pausing it while the browser tab is hidden
    freshness    reading with a stale fallback, the "Temporal is unavailable" banner, data age
    present      pure formatting: badges, labels, times, links, Markdown escaping
    frame        keeping every run inside the frame (Streamlit's folder mode off)
    links        moving between pages: plain links, opening a selected row, the release picker
    styles       the dashboard's CSS: HTML tables, state tags, the band above titles, phones
    tables       the DataFrames and column configurations of every table
    release_list the release list: query from the controls, state tiles, table, CSV
    release_tree one release: header, needs-attention list, lazy nested tree, change highlights
    entity_view  one entity: state, times, breadcrumbs, children, live detail

Only this package and the pages import streamlit; nothing here imports temporalio or yaml.
"""
