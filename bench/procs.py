"""What a process costs, read from Linux's /proc: CPU seconds, resident memory, open descriptors.

The servers under test (the Temporal dev server, the API, Streamlit) run as child processes of the
harness, so that each one's own cost can be read by PID without instrumenting it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; after the command's ")" they are 12th and 13th.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_queue_wait_seconds(pid: int) -> float:
    """Time the process's threads have spent runnable but waiting for a CPU, so far.

    The second field of each thread's schedstat: the direct measure of CPU contention, which on
    a shared machine explains latency that the process's own CPU time cannot.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended while we looked
    return total / 1e9


def rss_bytes(pid: int) -> int:
    """The process's resident set size now."""
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE_BYTES


def open_fds(pid: int) -> int:
    """How many file descriptors the process holds open now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """The direct children of a process (Chromium's renderers, say)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (shared pages counted in each)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += rss_bytes(current)
            pending.extend(children(current))
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended while we looked
    return total


@dataclass
class CpuMeter:
    """Cores a process used between `start()` and `cores()` (CPU seconds / wall seconds), and
    how long it waited for a CPU meanwhile (`waiting()`, seconds per second)."""

    pid: int
    _cpu0: float = 0.0
    _wait0: float = 0.0
    _wall0: float = 0.0

    def start(self) -> None:
        """Begin a measurement window."""
        self._cpu0 = cpu_seconds(self.pid)
        self._wait0 = run_queue_wait_seconds(self.pid)
        self._wall0 = time.monotonic()

    def waiting(self) -> float:
        """Seconds spent waiting for a CPU per second since `start()` (summed over threads)."""
        wall = time.monotonic() - self._wall0
        return (run_queue_wait_seconds(self.pid) - self._wait0) / wall if wall > 0 else 0.0

    def cores(self) -> float:
        """Average cores used since `start()`."""
        wall = time.monotonic() - self._wall0
        return (cpu_seconds(self.pid) - self._cpu0) / wall if wall > 0 else 0.0


def mib(count: int) -> float:
    """Bytes as MiB, rounded for a report."""
    return round(count / (1024 * 1024), 1)
