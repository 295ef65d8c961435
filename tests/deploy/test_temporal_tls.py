"""relmgr reaching Temporal through nginx (`grpc_pass`) as it would a real cluster or Temporal
Cloud: TLS with a private CA and a server name, mutual TLS, and an API key; and for each usual
misconfiguration, a diagnosis naming the cause and the setting to fix, within 5 s."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from relmgr.api import create_app
from relmgr.errors import TemporalUnavailableError
from relmgr.settings import Settings
from relmgr.temporal.client import connect
from relmgr.testing.ports import free_port
from relmgr.testing.processes import stop_process
from tests.api.served import write_users
from tests.deploy.certs import Authority, Pair
from tests.deploy.nginx import main_config, require_nginx, running_nginx

pytestmark = pytest.mark.integration

SERVER_NAME = "temporal.relmgr.test"
API_KEY = "relmgr-test-api-key-0123456789"
DIAGNOSIS_SECONDS = 5.0
# A process first imports FastAPI, uvicorn and the SDK: 2-4 s on an idle machine, 10 s and more
# on the shared CI box, which is not what is measured. What is: the API serves nothing before its
# first connection attempt has ended, so its first answer already names the cause; the 5 s bound
# is asserted on the same code path in-process (test_api_ready_and_log_name_cause_and_setting).
PROCESS_START_SECONDS = 30.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Proxy:
    """nginx in front of the session's dev server, and the certificates of the tests."""

    tls_address: str  # TLS, no client certificate asked
    mtls_address: str  # TLS, client certificate required (ssl_verify_client on)
    api_key_address: str  # TLS, `authorization: Bearer <API_KEY>` required
    plain_address: str  # the dev server itself: no TLS
    ca: Path
    other_ca: Path
    client: Pair
    client_v1: Pair
    stranger: Pair  # signed by the right CA, but its key is not the client's


@pytest.fixture(scope="module")
def proxy(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """One nginx for the module, three server blocks, all proxying to the dev server."""
    require_nginx()
    directory = tmp_path_factory.mktemp("tls")
    ca = Authority.create(directory, "relmgr-test-ca")
    other = Authority.create(directory, "another-ca")
    server = ca.issue(directory, "server", server=True, dns_name=SERVER_NAME)
    upstream = temporal_env.client.service_client.config.target_host
    ports = [free_port(), free_port(), free_port()]
    tls = f"ssl_certificate {server.cert}; ssl_certificate_key {server.key};"
    block = f"""
    server {{
        listen 127.0.0.1:{ports[0]} ssl http2; {tls}
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
    server {{
        listen 127.0.0.1:{ports[1]} ssl http2; {tls}
        ssl_client_certificate {ca.cert_file}; ssl_verify_client on;
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
    server {{
        listen 127.0.0.1:{ports[2]} ssl http2; {tls}
        location / {{
            if ($http_authorization != "Bearer {API_KEY}") {{ return 401; }}
            grpc_pass grpc://{upstream};
        }}
    }}"""
    prefix = directory / "nginx"
    with running_nginx(prefix, main_config(prefix, block), ports):
        yield Proxy(
            tls_address=f"127.0.0.1:{ports[0]}",
            mtls_address=f"127.0.0.1:{ports[1]}",
            api_key_address=f"127.0.0.1:{ports[2]}",
            plain_address=upstream,
            ca=ca.cert_file,
            other_ca=other.cert_file,
            client=ca.issue(directory, "client", server=False),
            client_v1=ca.issue_v1(directory, "client-v1"),
            stranger=ca.issue(directory, "stranger", server=False),
        )


def _settings(**fields: Any) -> Settings:
    return Settings(temporal_namespace="default", **fields)


def tls_settings(proxy: Proxy, **fields: Any) -> Settings:
    """TLS to the plain-TLS block with the private CA and the server name."""
    values = {
        "temporal_address": proxy.tls_address,
        "temporal_tls_ca": proxy.ca,
        "temporal_tls_server_name": SERVER_NAME,
    }
    return _settings(**{**values, **fields})


def mtls_settings(proxy: Proxy, **fields: Any) -> Settings:
    """Mutual TLS to the block that requires a client certificate."""
    values = {
        "temporal_address": proxy.mtls_address,
        "temporal_tls_ca": proxy.ca,
        "temporal_tls_server_name": SERVER_NAME,
        "temporal_tls_cert": proxy.client.cert,
        "temporal_tls_key": proxy.client.key,
    }
    return _settings(**{**values, **fields})


def api_key_settings(proxy: Proxy, **fields: Any) -> Settings:
    """An API key (TLS on, as Temporal Cloud requires) to the block that checks it."""
    values = {
        "temporal_address": proxy.api_key_address,
        "temporal_tls_ca": proxy.ca,
        "temporal_tls_server_name": SERVER_NAME,
        "temporal_api_key": API_KEY,
    }
    return _settings(**{**values, **fields})


GOOD: dict[str, Callable[[Proxy], Settings]] = {
    "tls": tls_settings,
    "mtls": mtls_settings,
    "api-key": api_key_settings,
}


@pytest.mark.parametrize("kind", GOOD)
async def test_connects_through_nginx(proxy: Proxy, kind: str) -> None:
    """With the right settings, relmgr connects through the proxy and reads visibility."""
    client = await connect(GOOD[kind](proxy), retries=0)
    count = await client.count_workflows()
    assert count.count >= 0


@dataclass(frozen=True)
class Misconfiguration:
    """Settings that cannot work, and what the diagnosis must say."""

    settings: Callable[[Proxy], Settings]
    cause: str  # a fragment of the cause, as the message gives it
    setting: str  # the setting the message tells to fix


MISCONFIGURATIONS: dict[str, Misconfiguration] = {
    "no-client-cert": Misconfiguration(
        lambda p: mtls_settings(p, temporal_tls_cert=None, temporal_tls_key=None),
        "No required SSL certificate was sent",
        "RELMGR_TEMPORAL_TLS_CERT",
    ),
    "wrong-ca": Misconfiguration(
        lambda p: tls_settings(p, temporal_tls_ca=p.other_ca),
        "not signed by a CA relmgr trusts",
        "RELMGR_TEMPORAL_TLS_CA",
    ),
    "wrong-server-name": Misconfiguration(
        lambda p: tls_settings(p, temporal_tls_server_name="temporal.elsewhere.test"),
        f"not valid for the name 'temporal.elsewhere.test' that relmgr checks (it holds "
        f"{SERVER_NAME})",
        "RELMGR_TEMPORAL_TLS_SERVER_NAME",
    ),
    "v1-client-cert": Misconfiguration(
        lambda p: mtls_settings(
            p, temporal_tls_cert=p.client_v1.cert, temporal_tls_key=p.client_v1.key
        ),
        "is an X.509 v1 certificate",
        "RELMGR_TEMPORAL_TLS_CERT",
    ),
    "key-of-another-cert": Misconfiguration(
        lambda p: mtls_settings(p, temporal_tls_key=p.stranger.key),
        "is not the private key of the certificate",
        "RELMGR_TEMPORAL_TLS_KEY",
    ),
    "wrong-api-key": Misconfiguration(
        lambda p: api_key_settings(p, temporal_api_key="not-the-key"),
        "refused relmgr's API key (HTTP 401",
        "RELMGR_TEMPORAL_API_KEY",
    ),
    "plaintext-to-tls-port": Misconfiguration(
        lambda p: _settings(temporal_address=p.tls_address),
        "expects TLS and relmgr connected in plaintext",
        "RELMGR_TEMPORAL_TLS=true",
    ),
    "tls-to-plaintext-port": Misconfiguration(
        lambda p: tls_settings(p, temporal_address=p.plain_address),
        "the server does not speak TLS at this address",
        "RELMGR_TEMPORAL_ADDRESS",
    ),
    "no-api-key": Misconfiguration(
        lambda p: api_key_settings(p, temporal_api_key=None),
        "requires credentials and relmgr sent none (HTTP 401",
        "RELMGR_TEMPORAL_API_KEY",
    ),
}


@pytest.mark.parametrize("case", MISCONFIGURATIONS)
async def test_connect_names_cause_and_setting(proxy: Proxy, case: str) -> None:
    """connect() gives up at once (no retry fixes these) with the cause and the setting."""
    wrong = MISCONFIGURATIONS[case]
    started = time.monotonic()
    with pytest.raises(TemporalUnavailableError) as raised:
        await connect(wrong.settings(proxy), retries=4)
    elapsed = time.monotonic() - started
    print(f"\n{case}: diagnosed in {elapsed:.2f} s: {raised.value.message}")
    assert wrong.cause in raised.value.message
    assert wrong.setting in raised.value.message
    assert elapsed < DIAGNOSIS_SECONDS


@pytest.fixture
def api_settings(tmp_path: Path) -> Callable[[Settings], Settings]:
    """The API's own settings (secret, users, audit log) added to connection settings."""
    users = write_users(tmp_path / "users.yaml", "api-test-password")

    def build(connection: Settings) -> Settings:
        return Settings(
            **{
                **connection.model_dump(),
                "jwt_secret": "tls-test-jwt-secret-0123456789-abcdefghijklmnop",
                "users_file": users,
                "audit_log": tmp_path / "audit.jsonl",
            }
        )

    return build


@pytest.fixture
async def served_app() -> AsyncIterator[Callable[[Settings], Any]]:
    """Run an API app's lifespan (its connection to Temporal) for the length of a test."""
    contexts: list[Any] = []

    async def serve(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        contexts.append(lifespan)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api")

    yield serve
    for lifespan in reversed(contexts):
        await lifespan.__aexit__(None, None, None)


@pytest.mark.parametrize("case", MISCONFIGURATIONS)
async def test_api_ready_and_log_name_cause_and_setting(
    proxy: Proxy,
    case: str,
    api_settings: Callable[[Settings], Settings],
    served_app: Callable[[Settings], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API logs the diagnosis once and answers /ready 503 with it, within 5 s of start-up."""
    wrong = MISCONFIGURATIONS[case]
    caplog.set_level(logging.WARNING, logger="relmgr.api")
    started = time.monotonic()
    api = await served_app(api_settings(wrong.settings(proxy)))
    async with api:
        answer = await api.get("/ready")
    elapsed = time.monotonic() - started
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert wrong.cause in message
    assert wrong.setting in message
    logged = [r.getMessage() for r in caplog.records if r.name == "relmgr.api"]
    assert len(logged) == 1
    assert wrong.cause in logged[0]
    assert wrong.setting in logged[0]
    assert elapsed < DIAGNOSIS_SECONDS


def test_relmgr_api_process_logs_and_reports_a_missing_client_certificate(
    proxy: Proxy, tmp_path: Path
) -> None:
    """`relmgr api` as deployed: its first /ready answer and its log say what is wrong."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELMGR_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "RELMGR_TEMPORAL_ADDRESS": proxy.mtls_address,
            "RELMGR_TEMPORAL_TLS_CA": str(proxy.ca),
            "RELMGR_TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
            "RELMGR_JWT_SECRET": "tls-test-jwt-secret-0123456789-abcdefghijklmnop",
            "RELMGR_USERS_FILE": str(write_users(tmp_path / "users.yaml", "api-test-password")),
            "RELMGR_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        }
    )
    log_file = tmp_path / "api.log"
    started = time.monotonic()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "relmgr", "api", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        body = ""
        while time.monotonic() - started < PROCESS_START_SECONDS:
            assert process.poll() is None, log_file.read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1, trust_env=False)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            body = answer.json()["error"]["message"]
            break
        elapsed = time.monotonic() - started
        print(f"\nrelmgr api: its first /ready answer, {elapsed:.2f} s after exec: {body}")
        assert "No required SSL certificate was sent" in body
        assert "RELMGR_TEMPORAL_TLS_CERT" in body
        logged = [line for line in log_file.read_text().splitlines() if "relmgr.api" in line]
        assert any("RELMGR_TEMPORAL_TLS_CERT" in line for line in logged), logged
    finally:
        stop_process(process)


async def test_api_ready_reports_a_server_that_is_down_before_the_retries_end(
    api_settings: Callable[[Settings], Settings],
    served_app: Callable[[Settings], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens at the address: retried (it may come up), but /ready and the log say so
    after the first failed attempt, with the settings to check, not after the last."""
    caplog.set_level(logging.WARNING, logger="relmgr.api")
    started = time.monotonic()
    api = await served_app(api_settings(_settings(temporal_address=f"127.0.0.1:{free_port()}")))
    async with api:
        answer = await api.get("/ready")
    elapsed = time.monotonic() - started
    print(f"\nserver down: /ready says so {elapsed:.2f} s after start-up")
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "(attempt 1 of 5, retrying)" in message
    assert "RELMGR_TEMPORAL_ADDRESS" in message
    logged = [r.getMessage() for r in caplog.records if r.name == "relmgr.api"]
    assert len(logged) == 1
    assert "RELMGR_TEMPORAL_ADDRESS" in logged[0]
    assert elapsed < DIAGNOSIS_SECONDS
