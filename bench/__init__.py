"""relmgr's benchmarks: `python -m bench` (issue 6's figures), `python -m bench.soak` (issue 7)."""
