"""Tests of the Streamlit dashboard (AppTest against the real entry point and a fake reader)."""
