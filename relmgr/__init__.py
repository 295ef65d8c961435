"""relmgr: an operations dashboard for software releases orchestrated by Temporal workflows.

The package root imports nothing heavy on purpose: pages import `relmgr.ui`, which must not pull in
temporalio; the public pieces live in their modules (`relmgr.models`, `relmgr.reader`, ...).
"""

__version__ = "0.1.0"
