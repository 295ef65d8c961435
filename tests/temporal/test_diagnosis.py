"""relmgr.temporal.client.diagnose on errors a proxy cannot produce in the tests: Temporal Cloud's
own gRPC refusals, a v1 server certificate, and a server that is merely down (not diagnosed, so
that it is retried)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from temporalio.service import RPCError, RPCStatusCode

from relmgr.settings import Settings
from relmgr.temporal.client import diagnose


@pytest.mark.parametrize("status", [RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED])
async def test_a_refused_api_key_names_the_setting(status: RPCStatusCode) -> None:
    """Temporal Cloud refuses a bad key with a gRPC status, not an HTTP page."""
    settings = Settings(temporal_api_key=SecretStr("k"))
    found = await diagnose(RPCError("Request unauthorized", status, b""), settings)
    assert found is not None
    assert f"refused relmgr's API key (gRPC {status.name}: Request unauthorized)" in found.cause
    assert "RELMGR_TEMPORAL_API_KEY" in found.fix


async def test_a_v1_server_certificate_is_the_servers_to_fix() -> None:
    """With no v1 certificate among relmgr's own files, the server's certificate is named."""
    error = RuntimeError("Failed client connect: InvalidCertificate(Other(UnsupportedCertVersion))")
    found = await diagnose(error, Settings(temporal_tls=True))
    assert found is not None
    assert "the server presents an X.509 v1 certificate" in found.cause


@pytest.mark.parametrize(
    "text",
    [
        "Failed client connect: Server connection error: tonic::transport::Error(Transport, "
        'ConnectError(ConnectError("tcp connect error", Os { code: 111, kind: ConnectionRefused '
        "})))",
        "Failed client connect: `get_system_info` call error after connection: Status { code: "
        'Internal, message: "protocol error: received message with invalid compression flag: 60 '
        '(valid flags are 0 and 1) while receiving response with status: 502 Bad Gateway"',
    ],
)
async def test_a_server_that_is_down_is_left_to_retries(text: str) -> None:
    """Connection refused, or a proxy whose upstream is down (502): no diagnosis, so retried."""
    assert await diagnose(RuntimeError(text), Settings()) is None
