"""Contract tests generated from the OpenAPI document by schemathesis, against the in-process app.

Every generated request (valid and deliberately invalid) must get a documented status, a body that
matches its schema and never a 5xx. The default run (in `make test`) asks Hypothesis for 10 examples
per operation (about 290 cases with schemathesis's coverage phase, ~5 s). For the long run
(>= 1,000 cases; 300 gives about 1,700 in ~35 s) set RELMGR_CONTRACT_EXAMPLES:

    RELMGR_CONTRACT_EXAMPLES=300 .venv/bin/pytest tests/api/test_contract.py -s
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from relmgr.api import create_app
from relmgr.settings import Settings
from relmgr.testing.fake_reader import FakeReader
from tests.api.conftest import SECRET, FakeController, claims_for, demo_trees, sign

EXAMPLES_PER_OPERATION = int(os.environ.get("RELMGR_CONTRACT_EXAMPLES", "10"))
_statuses: Counter[int] = Counter()

# schemathesis.pytest.from_fixture (the lazy loader) fails on pytest 9.2 (it sets the removed
# `Node._nodeid`), so the app and its schema are built at import, with a users file whose bcrypt
# cost is the minimum (4) to keep collection fast. Its directory is removed after the module.
_workdir = tempfile.TemporaryDirectory(prefix="relmgr-contract-")
_users = Path(_workdir.name) / "users.yaml"
_hash = bcrypt.hashpw(b"contract-password", bcrypt.gensalt(4)).decode()
_users.write_text(
    "credentials:\n  usernames:\n    admin:\n      email: admin@example.com\n"
    f"      name: Admin\n      password: '{_hash}'\n      roles: [admin]\n"
)
_app = create_app(
    Settings(
        jwt_secret=SECRET,
        users_file=_users,
        audit_log=Path(_workdir.name) / "audit.jsonl",
        login_attempts_per_minute=5,
    ),
    reader=FakeReader(demo_trees()),
    controller=FakeController({tree.release.id for tree in demo_trees()}),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@pytest.fixture(scope="module", autouse=True)
def _report_and_clean_up() -> Iterator[None]:
    """Print how many cases ran and their statuses; remove the temporary users file."""
    yield
    total = sum(_statuses.values())
    print(f"\nschemathesis: {total} cases, statuses {dict(sorted(_statuses.items()))}")
    _workdir.cleanup()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    """No 5xx; status, content type, headers and body all as the OpenAPI document says."""
    token = sign(claims_for("admin", lifetime=3600))
    response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
    _statuses[response.status_code] += 1
    assert response.status_code < 500
