"""Layering: which parts of relmgr may import temporalio, streamlit and fastapi, directly or not.

Direct imports are read from the source (every `import`, lazy ones inside functions included);
transitive ones are checked by importing modules in a fresh interpreter and looking at
`sys.modules`, since one eager import in a package `__init__` is enough to break a layer.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import relmgr

PACKAGE = Path(relmgr.__file__).parent
ROOT = PACKAGE.parent
API_DIR = PACKAGE / "api"
UI_DIR = PACKAGE / "ui"

# The front ends' own frameworks; each may be imported only inside its own front end.
OWNER = {"streamlit": UI_DIR, "fastapi": API_DIR}
TRACKED = ("temporalio", "streamlit", "fastapi")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules_under(folder: Path) -> list[str]:
    return sorted(_module_name(p) for p in folder.rglob("*.py"))


def _page_imports() -> list[str]:
    """The relmgr modules the pages and the frame import (the pages are scripts, not modules)."""
    scripts = [*sorted((ROOT / "pages").glob("*.py")), ROOT / "streamlit_app.py"]
    assert len(scripts) == 6  # releases, release, entity, history, inbox; the frame
    names: set[str] = set()
    for script in scripts:
        for node in ast.walk(ast.parse(script.read_text(), filename=str(script))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("relmgr"):
                assert node.module is not None
                # `from relmgr.ui import frame` imports the module relmgr.ui.frame.
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists()
                    names.add(candidate if is_module else node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("relmgr"))
    return sorted(names)


_PROBE = """
import importlib, json, sys
tracked = {tracked!r}
first_loaded_by = {{}}
for module in {modules!r}:
    importlib.import_module(module)
    for package in tracked:
        if package in sys.modules and package not in first_loaded_by:
            first_loaded_by[package] = module
print(json.dumps(first_loaded_by))
"""


def _first_importers(modules: list[str]) -> dict[str, str]:
    """Import `modules` in order in a fresh interpreter; for each tracked package that ends up
    loaded, the first of `modules` after whose import it was there."""
    probe = _PROBE.format(tracked=TRACKED, modules=modules)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_frameworks_are_imported_directly_only_by_their_front_end() -> None:
    """streamlit is imported only under relmgr/ui, fastapi only under relmgr/api."""
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 60
    strays = sorted(
        (str(path.relative_to(ROOT)), name)
        for path in files
        for name in _imports(path)
        if name.split(".")[0] in OWNER and OWNER[name.split(".")[0]] not in path.parents
    )
    assert strays == []


def test_api_modules_import_no_temporalio_streamlit_or_yaml() -> None:
    """No module of relmgr/api imports temporalio, streamlit or yaml directly."""
    files = sorted(API_DIR.rglob("*.py"))
    assert len(files) >= 15
    bad = {
        (path.name, n)
        for path in files
        for n in _imports(path)
        if n.split(".")[0] in ("temporalio", "streamlit", "yaml")
    }
    assert bad == set()


def test_only_the_app_lifespan_reaches_for_the_production_reader() -> None:
    """`create_reader` is imported in one place, lazily; routes use the ReleaseReader protocol."""
    users = [p.name for p in sorted(API_DIR.rglob("*.py")) if "create_reader" in p.read_text()]
    assert users == ["app.py"]


@pytest.mark.parametrize(
    ("layer", "modules", "allowed"),
    [
        # The protocol, the package that exports it and the fake: nothing but the domain.
        (
            "reader protocol",
            ["relmgr.reader.protocol", "relmgr.reader", "relmgr.testing.fake_reader"],
            (),
        ),
        # runtime.py reaches the production reader lazily, inside the function that builds it.
        ("UI helpers", _modules_under(UI_DIR), ("streamlit",)),
        ("pages", _page_imports(), ("streamlit",)),
        ("API", _modules_under(API_DIR), ("fastapi",)),
    ],
    ids=["protocol", "ui", "pages", "api"],
)
def test_importing_a_layer_loads_no_sdk_and_no_other_front_end(
    layer: str, modules: list[str], allowed: tuple[str, ...]
) -> None:
    """Importing the layer's modules in a fresh interpreter loads neither temporalio nor the
    other front end's framework (the old eager `TemporalReader` import in relmgr/reader/__init__
    loaded temporalio here for the protocol, the UI helpers and the pages)."""
    assert modules
    loaded = _first_importers(modules)
    assert {p: m for p, m in loaded.items() if p not in allowed} == {}, layer
