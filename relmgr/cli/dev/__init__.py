"""`relmgr dev`: a real Temporal dev server, the worker, demo releases, the API and the dashboard.

    config    what `relmgr dev` starts and where (DevConfig), and the host it listens on
    datadir   the data directory: its files, the generated secrets, user `admin`, the lock
    children  the child processes (Temporal, API, Streamlit): their commands, environment, stop
    ports     checking the ports are free before anything starts, waiting for them after
    session   the supervisor (DevSession) that starts, watches and stops it all; run_dev

Each module imports only those above it in this list, so there is no import cycle.
"""

from relmgr.cli.dev.config import DevConfig
from relmgr.cli.dev.ports import port_is_free
from relmgr.cli.dev.session import DevSession, run_dev

__all__ = ["DevConfig", "DevSession", "port_is_free", "run_dev"]
