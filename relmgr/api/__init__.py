"""The companion REST API: the dashboard's data for scripts, behind tokens, with ETags and CSV.

`create_app()` builds the FastAPI application; `serve()` validates the configuration and runs it
under uvicorn (what `relmgr api` calls).
"""

from relmgr.api.app import create_app
from relmgr.api.server import serve

__all__ = ["create_app", "serve"]
