"""The OpenAPI document is complete: each operation summarised, exemplified, errors documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from relmgr.api import create_app
from relmgr.settings import Settings
from relmgr.testing.fake_reader import FakeReader
from tests.api.conftest import SECRET, FakeController, demo_trees

OPERATIONS = [
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/me"),
    ("get", "/api/releases"),
    ("get", "/api/releases/{release_id}"),
    ("get", "/api/releases/{release_id}/hierarchy"),
    ("get", "/api/releases/{release_id}/timeline"),
    ("get", "/api/entities/{entity_id}"),
    ("get", "/api/entities/{entity_id}/hierarchy"),
    ("post", "/api/releases/{release_id}/actions/approve"),
    ("post", "/api/releases/{release_id}/actions/cancel"),
    ("post", "/api/releases/{release_id}/actions/{action}"),
    ("post", "/api/entities/{app_id}/actions/retry"),
    ("get", "/api/audit"),
    ("get", "/health"),
    ("get", "/ready"),
]


@pytest.fixture(scope="module")
def spec(users_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The app's OpenAPI document, built once for the module (each build takes ~1 s); the tests
    only read it."""
    folder = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        jwt_secret=SECRET,
        users_file=users_file,
        audit_log=folder / "audit.jsonl",
        revoked_sessions_file=folder / "revoked-sessions.json",
    )
    app = create_app(settings, reader=FakeReader(demo_trees()), controller=FakeController(set()))
    spec: dict[str, Any] = app.openapi()
    return spec


def test_the_document_lists_exactly_the_api(spec: dict[str, Any]) -> None:
    """Exactly these operations, no docs or static routes leaking into the spec."""
    found = [(m, p) for p, item in spec["paths"].items() for m in item]
    assert sorted(found) == sorted(OPERATIONS)
    assert spec["info"]["title"] == "relmgr API"
    assert "Authorization: Bearer" in spec["info"]["description"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_operation_has_a_summary_a_description_and_a_200_schema(
    spec: dict[str, Any], method: str, path: str
) -> None:
    """A reader of /docs sees what each operation does and what it returns (logout: 204, no
    body)."""
    operation = spec["paths"][path][method]
    assert operation["summary"]
    assert operation["description"]
    if (method, path) == ("post", "/api/auth/logout"):
        assert set(operation["responses"]["204"]) == {"description"}
        return
    assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_error_response_uses_the_error_shape(
    spec: dict[str, Any], method: str, path: str
) -> None:
    """Every documented 4xx/5xx has the ErrorResponse schema and an example in that shape."""
    operation = spec["paths"][path][method]
    errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
    assert "422" not in errors or "HTTPValidationError" not in str(errors["422"])
    for code, response in errors.items():
        content = response["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, code
        assert set(content["example"]["error"]) >= {"code", "message"}, code


def test_read_operations_document_304_401_422_503(spec: dict[str, Any]) -> None:
    """The read routes document the caching and failure answers a script must handle."""
    paths = spec["paths"]
    for path in (
        "/api/releases",
        "/api/releases/{release_id}",
        "/api/releases/{release_id}/hierarchy",
        "/api/releases/{release_id}/timeline",
        "/api/entities/{entity_id}",
        "/api/entities/{entity_id}/hierarchy",
    ):
        assert {"200", "304", "401", "422", "503"} <= set(paths[path]["get"]["responses"]), path


def test_examples_validate_against_their_schemas(spec: dict[str, Any]) -> None:
    """Each JSON example in a 200 response (`example` or each of `examples`) is valid for that
    response's schema; the release hierarchy has two (whole and `?depth=1`)."""
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "200" not in operation["responses"]:
                continue  # logout: 204, no body
            content = operation["responses"]["200"]["content"]["application/json"]
            found = [content["example"]] if "example" in content else []
            found += [named["value"] for named in content.get("examples", {}).values()]
            for example in found:
                jsonschema.validate(
                    example,
                    {"$ref": content["schema"]["$ref"], "components": spec["components"]},
                )
                checked += 1
                assert (method, path) in OPERATIONS
    assert checked == 7


def test_csv_is_documented_where_it_is_served(spec: dict[str, Any]) -> None:
    """The list and the hierarchy document text/csv with an example of the header row."""
    paths = spec["paths"]
    listing = paths["/api/releases"]["get"]["responses"]["200"]["content"]["text/csv"]
    tree = paths["/api/releases/{release_id}/hierarchy"]["get"]["responses"]["200"]["content"]
    assert listing["example"].startswith("id,state,percent_complete,")
    tree_csv = tree["text/csv"]["example"]
    assert tree_csv.startswith("kind,id,parent_id,wave,cluster,bundle,app,state,")


def test_id_parameters_document_their_pattern(spec: dict[str, Any]) -> None:
    """Path IDs and the search text carry their patterns, so clients can check before calling."""
    paths = spec["paths"]
    release = paths["/api/releases/{release_id}"]["get"]["parameters"][0]
    entity = paths["/api/entities/{entity_id}"]["get"]["parameters"][0]
    search = next(p for p in paths["/api/releases"]["get"]["parameters"] if p["name"] == "q")
    assert release["schema"]["pattern"].startswith("^rel-")
    assert entity["schema"]["pattern"].count("(?:^rel-") == 5
    assert search["schema"]["pattern"] == "^[a-z0-9.-]{1,64}$"


CONTROLS = [(m, p) for m, p in OPERATIONS if "/actions/" in p]


@pytest.mark.parametrize(("method", "path"), CONTROLS)
def test_control_operations_document_every_answer_and_a_valid_body_example(
    spec: dict[str, Any], method: str, path: str
) -> None:
    """Each control documents 200, 401, 403, 404, 409, 422 and 503, and its body schema has an
    example that the schema accepts."""
    operation = spec["paths"][path][method]
    assert {"200", "401", "403", "404", "409", "422", "503"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert schema["examples"]
    for example in schema["examples"]:
        jsonschema.validate(example, {**body, "components": spec["components"]})


def test_every_entity_schema_documents_its_duration(spec: dict[str, Any]) -> None:
    """The entity, each tree node and the list item document `duration_seconds` (read-only, a
    number or null); the examples show it for the app that finished (4 s after its start)."""
    schemas = spec["components"]["schemas"]
    for name in ("Entity", "Release", "Wave", "Cluster", "Bundle", "App", "ReleaseItem"):
        duration = schemas[name]["properties"]["duration_seconds"]
        assert duration["readOnly"] is True, name
        assert duration["anyOf"] == [{"type": "number"}, {"type": "null"}], name
    paths = spec["paths"]
    tree = paths["/api/releases/{release_id}/hierarchy"]["get"]["responses"]["200"]["content"]
    whole = tree["application/json"]["examples"]["whole"]["value"]
    apps = whole["release"]["waves"][0]["clusters"][0]["bundle"]["apps"]
    # FastAPI leaves nulls out of the document: the running app's example has no duration.
    assert [(a["state"], a.get("duration_seconds")) for a in apps] == [
        ("SUCCEEDED", 4.0),
        ("RETRYING", None),
    ]
    subtree = paths["/api/entities/{entity_id}/hierarchy"]["get"]["responses"]["200"]["content"]
    node = subtree["application/json"]["example"]["node"]
    assert node["bundle"]["apps"][0]["duration_seconds"] == 4.0
