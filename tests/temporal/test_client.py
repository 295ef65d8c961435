"""Connecting to Temporal and translating its errors into relmgr's error tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from relmgr.errors import (
    ConfigError,
    LiveStateUnavailableError,
    NotFoundError,
    ReadTimeoutError,
    TemporalUnavailableError,
)
from relmgr.settings import Settings
from relmgr.temporal.client import connect, temporal_errors, tls_config, translate
from relmgr.testing.ports import free_port


def rpc(status: RPCStatusCode, message: str = "boom") -> RPCError:
    return RPCError(message, status, b"")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (rpc(RPCStatusCode.NOT_FOUND, "workflow not found"), NotFoundError),
        (rpc(RPCStatusCode.UNAVAILABLE), TemporalUnavailableError),
        (rpc(RPCStatusCode.DEADLINE_EXCEEDED), ReadTimeoutError),
        (rpc(RPCStatusCode.CANCELLED, "Timeout expired"), ReadTimeoutError),
        (rpc(RPCStatusCode.INTERNAL), TemporalUnavailableError),
        (rpc(RPCStatusCode.RESOURCE_EXHAUSTED), TemporalUnavailableError),
        (rpc(RPCStatusCode.UNAUTHENTICATED), TemporalUnavailableError),
        (rpc(RPCStatusCode.INVALID_ARGUMENT, "unknown search attribute"), TemporalUnavailableError),
        (TimeoutError(), ReadTimeoutError),
        (RuntimeError("Failed client connect: refused"), TemporalUnavailableError),
        (ConnectionRefusedError(), TemporalUnavailableError),
        (WorkflowQueryFailedError("no handler"), LiveStateUnavailableError),
        (WorkflowQueryRejectedError(None), LiveStateUnavailableError),
    ],
)
def test_temporal_errors_become_relmgr_errors(error: BaseException, expected: type) -> None:
    """Each temporalio/gRPC failure maps to exactly one class of the error tree."""
    translated = translate(error, entity_id="rel-x", what="testing")
    assert type(translated) is expected


def test_not_found_names_the_entity_and_a_missing_namespace_is_no_not_found() -> None:
    """NOT_FOUND of a workflow is NotFoundError for it; of a namespace, an outage."""
    found = translate(rpc(RPCStatusCode.NOT_FOUND, "workflow not found"), entity_id="rel-x")
    assert isinstance(found, NotFoundError)
    assert found.entity_id == "rel-x"
    namespace = translate(rpc(RPCStatusCode.NOT_FOUND, "Namespace nope is not found."))
    assert type(namespace) is TemporalUnavailableError


def test_errors_that_are_not_temporals_pass_through() -> None:
    """A bug (KeyError) is not disguised as an outage."""
    with pytest.raises(KeyError), temporal_errors():
        raise KeyError("bug")


def test_the_context_manager_raises_translated_errors() -> None:
    """Inside `temporal_errors()` an RPCError leaves as a relmgr error."""
    with pytest.raises(TemporalUnavailableError), temporal_errors(what="listing"):
        raise rpc(RPCStatusCode.UNAVAILABLE)


def test_plaintext_by_default() -> None:
    """A local dev server needs no TLS."""
    assert tls_config(Settings()) is False


def test_an_api_key_turns_tls_on() -> None:
    """Temporal Cloud takes API keys over TLS only."""
    config = tls_config(Settings(temporal_api_key=SecretStr("key")))
    assert config == TLSConfig()


def test_mtls_files_are_read(tmp_path: Path) -> None:
    """CA, client certificate and key are read from their files; the server name is kept."""
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_bytes(name.encode())
    config = tls_config(
        Settings(
            temporal_tls_ca=tmp_path / "ca.pem",
            temporal_tls_cert=tmp_path / "cert.pem",
            temporal_tls_key=tmp_path / "key.pem",
            temporal_tls_server_name="temporal.internal",
        )
    )
    assert config == TLSConfig(
        server_root_ca_cert=b"ca.pem",
        client_cert=b"cert.pem",
        client_private_key=b"key.pem",
        domain="temporal.internal",
    )


def test_a_certificate_without_its_key_is_a_config_error(tmp_path: Path) -> None:
    """mTLS needs both halves."""
    (tmp_path / "cert.pem").write_bytes(b"cert")
    with pytest.raises(ConfigError, match="TLS_KEY"):
        tls_config(Settings(temporal_tls_cert=tmp_path / "cert.pem"))


def test_an_unreadable_ca_is_a_config_error(tmp_path: Path) -> None:
    """A missing file names its setting."""
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CA"):
        tls_config(Settings(temporal_tls_ca=tmp_path / "missing.pem"))


async def test_connecting_to_nothing_fails_typed_after_retrying() -> None:
    """No server at the address: TemporalUnavailableError naming it, never a temporalio error."""
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(TemporalUnavailableError, match="after 2 attempt") as raised:
        await connect(Settings(temporal_address=address, temporal_connect_timeout=1), retries=1)
    assert address in raised.value.message
