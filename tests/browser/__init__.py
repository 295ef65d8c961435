"""Browser tests: the dashboard in a real Chromium against a real Temporal dev server."""
