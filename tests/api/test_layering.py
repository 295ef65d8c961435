"""The API package keeps to its layer: no temporalio or streamlit; reads only through the reader."""

from __future__ import annotations

import ast
from pathlib import Path

import relmgr.api

API_DIR = Path(relmgr.api.__file__).parent
FORBIDDEN = ("temporalio", "streamlit", "yaml")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_api_modules_import_no_temporalio_streamlit_or_yaml() -> None:
    """No module of relmgr/api imports temporalio, streamlit or yaml directly."""
    files = sorted(API_DIR.rglob("*.py"))
    assert len(files) >= 15
    for path in files:
        bad = {n for n in _imports(path) if n.split(".")[0] in FORBIDDEN}
        assert bad == set(), path


def test_only_the_app_lifespan_reaches_for_the_production_reader() -> None:
    """`create_reader` is imported in one place, lazily; routes use the ReleaseReader protocol."""
    users = [p.name for p in sorted(API_DIR.rglob("*.py")) if "create_reader" in p.read_text()]
    assert users == ["app.py"]
