"""Stopping the child processes tests and benchmarks start (servers, dashboards, CPU hogs)."""

from __future__ import annotations

import contextlib
import subprocess


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL if it has not ended within 15 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
