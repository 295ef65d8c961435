"""The Temporal client relmgr reads with: how to connect, and how Temporal's errors become relmgr's.

`connect()` is the one place a client is made for reading: address and namespace, TLS with an
optional client certificate (self-hosted mTLS), an API key (Temporal Cloud, TLS on), the pydantic
data converter, and a bounded retry policy so that a dead server fails in about a second instead
of the SDK's default 5-10 s. Start-up retries the connection with backoff, then gives up with a
`TemporalUnavailableError` that says what was tried.

A connection that fails for a reason no retry will fix (a certificate from another CA, a name
the server's certificate does not hold, a refused API key, plaintext to a TLS port...) is not
retried: `diagnose()` turns the SDK's transport error into one sentence that names the cause and
the setting to fix, at once, for the log and for the API's `/ready`.

`translate()` (and the `temporal_errors()` context manager built on it) turn every temporalio and
gRPC failure into the error tree of `relmgr.errors`, so nothing above the read layer ever sees a
temporalio exception:

    RPCError NOT_FOUND                         -> NotFoundError (or unavailable, for a namespace)
    RPCError DEADLINE_EXCEEDED, TimeoutError   -> ReadTimeoutError
    RPCError UNAVAILABLE/INTERNAL/..., OSError -> TemporalUnavailableError
    query failed or rejected                   -> LiveStateUnavailableError
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import TemporalError
from temporalio.service import RetryConfig, RPCError, RPCStatusCode, TLSConfig

from relmgr.errors import (
    ConfigError,
    LiveStateUnavailableError,
    NotFoundError,
    ReadTimeoutError,
    RelmgrError,
    TemporalUnavailableError,
)
from relmgr.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

# Bounded retries for the SDK's own retrying calls: a few quick tries for a blip, then give up, so
# that no call to a dead server outlives the read path's time budget (the SDK default is ~10 s).
READ_RETRY_CONFIG = RetryConfig(
    initial_interval_millis=100,
    randomization_factor=0.2,
    multiplier=2.0,
    max_interval_millis=400,
    max_elapsed_time_millis=1_000,
    max_retries=3,
)
# Start-up backoff between connection attempts: 0.5 s, 1 s, 2 s, ... capped.
_CONNECT_BACKOFF_SECONDS = 0.5
_CONNECT_BACKOFF_CAP_SECONDS = 8.0

_CHECK_SETTINGS = (
    "Is the server running, and are RELMGR_TEMPORAL_ADDRESS, RELMGR_TEMPORAL_NAMESPACE and the "
    "TLS / API key settings right?"
)

_UNAVAILABLE_CODES = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.ABORTED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.DATA_LOSS,
    }
)


def _read_file(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"RELMGR_{setting}: cannot read {path}: {exc.strerror}") from None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The TLS setting for `Client.connect`: False for plaintext, else a TLSConfig.

    TLS is on when `temporal_tls` is set, when any TLS file or server name is given, or when an
    API key is given (Temporal Cloud accepts API keys over TLS only).
    """
    wants_tls = (
        settings.temporal_tls
        or settings.temporal_api_key is not None
        or settings.temporal_tls_ca is not None
        or settings.temporal_tls_cert is not None
        or settings.temporal_tls_key is not None
        or settings.temporal_tls_server_name is not None
    )
    if not wants_tls:
        return False
    if (settings.temporal_tls_cert is None) != (settings.temporal_tls_key is None):
        raise ConfigError(
            "RELMGR_TEMPORAL_TLS_CERT and RELMGR_TEMPORAL_TLS_KEY must be set together "
            "(a client certificate needs its private key)"
        )
    ca = settings.temporal_tls_ca
    cert = settings.temporal_tls_cert
    key = settings.temporal_tls_key
    return TLSConfig(
        server_root_ca_cert=_read_file(ca, "TEMPORAL_TLS_CA") if ca else None,
        client_cert=_read_file(cert, "TEMPORAL_TLS_CERT") if cert else None,
        client_private_key=_read_file(key, "TEMPORAL_TLS_KEY") if key else None,
        domain=settings.temporal_tls_server_name,
    )


def _describe_target(settings: Settings) -> str:
    return f"{settings.temporal_address} (namespace {settings.temporal_namespace!r})"


async def connect(
    settings: Settings,
    *,
    retries: int = 4,
    identity: str | None = None,
    on_failed_attempt: Callable[[str], None] | None = None,
) -> Client:
    """Connect to Temporal as `settings` say, trying `1 + retries` times with growing pauses.

    `on_failed_attempt` hears, after each failed attempt that will be retried, what went wrong
    and which settings to check, so that a caller can report it before the last attempt.
    Raises `TemporalUnavailableError` (never a temporalio exception) when every attempt failed
    or at once for a problem no retry fixes (see `diagnose`), and `ConfigError` for settings that
    cannot work (unreadable certificate, unknown namespace).
    """
    tls = tls_config(settings)
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    connect_timeout = settings.temporal_connect_timeout
    attempts = max(1, retries + 1)
    last_problem = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            client = await asyncio.wait_for(
                Client.connect(
                    settings.temporal_address,
                    namespace=settings.temporal_namespace,
                    api_key=api_key,
                    tls=tls,
                    data_converter=pydantic_data_converter,
                    retry_config=READ_RETRY_CONFIG,
                    connect_timeout=timedelta(seconds=connect_timeout),
                    identity=identity or f"relmgr-reader@{socket.gethostname()}",
                ),
                timeout=connect_timeout + 1.0,
            )
        except (TimeoutError, RuntimeError, OSError, TemporalError) as exc:
            diagnosis = await diagnose(exc, settings)
            if diagnosis is not None:  # no retry will fix it: say so at once
                raise TemporalUnavailableError(
                    f"cannot connect to Temporal at {settings.temporal_address}: {diagnosis}"
                ) from None
            last_problem = _short(exc) or type(exc).__name__
            log.warning(
                "connecting to Temporal at %s failed (attempt %d of %d): %s",
                _describe_target(settings),
                attempt,
                attempts,
                last_problem,
            )
            if on_failed_attempt is not None and attempt < attempts:
                on_failed_attempt(
                    f"cannot connect to Temporal at {_describe_target(settings)} (attempt "
                    f"{attempt} of {attempts}, retrying): {last_problem}. {_CHECK_SETTINGS}"
                )
        else:
            await _check_namespace(client, settings)
            return client
        if attempt < attempts:
            pause = min(_CONNECT_BACKOFF_SECONDS * 2 ** (attempt - 1), _CONNECT_BACKOFF_CAP_SECONDS)
            await asyncio.sleep(pause)
    raise TemporalUnavailableError(
        f"cannot connect to Temporal at {_describe_target(settings)} after {attempts} "
        f"attempt(s): {last_problem}. {_CHECK_SETTINGS}"
    )


@dataclass(frozen=True)
class Diagnosis:
    """Why a connection failed for good, and which setting fixes it."""

    cause: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause}; {self.fix}"


# The SDK's transport errors (tonic/rustls/hyper inside a RuntimeError) carry these markers.
_HTTP_STATUS = re.compile(r"while receiving response with status: (\d{3})[ \w]*")
_DNS_NAME = re.compile(r'DnsName\(\\*"([^"\\]+)')
_PROBE_SECONDS = 2.0


async def diagnose(exc: BaseException, settings: Settings) -> Diagnosis | None:
    """The cause of a failed connection that retrying will not fix, or None for one it may fix.

    Reads the SDK's error text; where the text alone is ambiguous (a proxy's HTML error page, a
    protocol error on a plaintext connection) it asks the server once more over Python's own TLS.
    """
    text = str(exc)
    using_tls = tls_config(settings) is not False
    if "UnknownIssuer" in text or "UnknownCA" in text:
        return Diagnosis(
            "the server's TLS certificate is not signed by a CA relmgr trusts",
            "set RELMGR_TEMPORAL_TLS_CA to the PEM file of the CA that signed it "
            f"(now {settings.temporal_tls_ca or 'unset: the system CAs'})",
        )
    if "NotValidForName" in text:
        # "expected: DnsName(\"wanted\"), presented: [DnsName(\"a\"), ...]"
        wanted, *presented = _DNS_NAME.findall(text) or ["?"]
        return Diagnosis(
            f"the server's TLS certificate is not valid for the name {wanted!r} that relmgr "
            f"checks (it holds {', '.join(presented) or 'other names'})",
            "set RELMGR_TEMPORAL_TLS_SERVER_NAME to a name in the server's certificate",
        )
    if "UnsupportedCertVersion" in text:
        return _version_diagnosis(settings)
    if "InconsistentKeys" in text or "KeyMismatch" in text:
        return Diagnosis(
            "RELMGR_TEMPORAL_TLS_KEY is not the private key of the certificate in "
            "RELMGR_TEMPORAL_TLS_CERT",
            "set RELMGR_TEMPORAL_TLS_KEY to that certificate's own key",
        )
    if "InvalidContentType" in text or "WRONG_VERSION_NUMBER" in text:
        return Diagnosis(
            "the server does not speak TLS at this address",
            "unset RELMGR_TEMPORAL_TLS and the other TLS settings, or fix RELMGR_TEMPORAL_ADDRESS "
            "to the server's TLS port",
        )
    if isinstance(exc, RPCError) and exc.status in (
        RPCStatusCode.UNAUTHENTICATED,
        RPCStatusCode.PERMISSION_DENIED,
    ):
        return _credentials_diagnosis(settings, f"gRPC {exc.status.name}: {_short(exc)}")
    status = _HTTP_STATUS.search(text)
    if status is not None:
        return await _http_diagnosis(settings, status.group(0).split(": ", 1)[1], using_tls)
    # A TLS server answering plaintext HTTP/2 shows as a protocol error, a GOAWAY, or (when the
    # server closes first, as a loaded machine makes more likely) a closed connection.
    protocol_error = any(s in text for s in ("h2 protocol error", "GoAway", "connection closed"))
    if (
        not using_tls
        and protocol_error
        and await asyncio.to_thread(_speaks_tls, settings.temporal_address)
    ):
        return Diagnosis(
            "the server expects TLS and relmgr connected in plaintext",
            "set RELMGR_TEMPORAL_TLS=true (and RELMGR_TEMPORAL_TLS_CA for a private CA)",
        )
    return None


def _credentials_diagnosis(settings: Settings, answer: str) -> Diagnosis:
    if settings.temporal_api_key is not None:
        return Diagnosis(
            f"the server refused relmgr's API key ({answer})",
            "set RELMGR_TEMPORAL_API_KEY to a valid key for this namespace",
        )
    return Diagnosis(
        f"the server requires credentials and relmgr sent none ({answer})",
        "set RELMGR_TEMPORAL_API_KEY (Temporal Cloud API key) or RELMGR_TEMPORAL_TLS_CERT and "
        "RELMGR_TEMPORAL_TLS_KEY (client certificate)",
    )


async def _http_diagnosis(settings: Settings, status: str, using_tls: bool) -> Diagnosis | None:
    """A proxy in front of Temporal answered with an HTTP error page instead of gRPC."""
    code = int(status[:3])
    if code in (401, 403):
        return _credentials_diagnosis(settings, f"HTTP {status} from a proxy")
    if code >= 500:
        return None  # a proxy whose upstream is down: that may pass
    title = await asyncio.to_thread(_error_page_title, settings) if using_tls else ""
    said = f"; it says {title!r}" if title else ""
    if code in (400, 495, 496) and settings.temporal_tls_cert is None:
        return Diagnosis(
            f"the server (a proxy) refused the connection with HTTP {status}{said}: it wants a "
            "client certificate",
            "set RELMGR_TEMPORAL_TLS_CERT and RELMGR_TEMPORAL_TLS_KEY to a client certificate "
            "and key its CA trusts",
        )
    if code in (400, 495, 496):
        return Diagnosis(
            f"the server (a proxy) refused relmgr's client certificate with HTTP {status}{said}",
            "set RELMGR_TEMPORAL_TLS_CERT and RELMGR_TEMPORAL_TLS_KEY to a certificate its CA "
            "trusts",
        )
    return Diagnosis(
        f"the server answered with HTTP {status}{said}, not gRPC: is a proxy in the way?",
        "check RELMGR_TEMPORAL_ADDRESS (host:port of Temporal's gRPC endpoint)",
    )


def _version_diagnosis(settings: Settings) -> Diagnosis:
    from cryptography import x509  # lazy: only this rare failure needs it

    for path, setting in (
        (settings.temporal_tls_cert, "RELMGR_TEMPORAL_TLS_CERT"),
        (settings.temporal_tls_ca, "RELMGR_TEMPORAL_TLS_CA"),
    ):
        if path is None:
            continue
        try:
            version = x509.load_pem_x509_certificate(path.read_bytes()).version
        except (OSError, ValueError):
            continue
        if version is x509.Version.v1:
            return Diagnosis(
                f"{setting} ({path}) is an X.509 v1 certificate, which Temporal's client "
                "(rustls) refuses",
                f"reissue it as an X.509 v3 certificate and point {setting} at it",
            )
    return Diagnosis(
        "the server presents an X.509 v1 certificate, which Temporal's client (rustls) refuses",
        "reissue the server's certificate as X.509 v3 (RELMGR_TEMPORAL_ADDRESS names the server)",
    )


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _speaks_tls(address: str) -> bool:
    """Whether a TLS handshake (no verification: only the protocol matters) succeeds."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a protocol probe: nothing is sent
    try:
        host, port = _host_port(address)
        with (
            socket.create_connection((host, port), timeout=_PROBE_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return True
    except (OSError, ValueError):
        return False


def _error_page_title(settings: Settings) -> str:
    """The <title> of the page a TLS proxy sends for a plain request made as relmgr connects."""
    try:
        host, port = _host_port(settings.temporal_address)
        context = ssl.create_default_context()
        if settings.temporal_tls_ca is not None:
            context.load_verify_locations(cafile=str(settings.temporal_tls_ca))
        if settings.temporal_tls_cert is not None and settings.temporal_tls_key is not None:
            context.load_cert_chain(settings.temporal_tls_cert, settings.temporal_tls_key)
        name = settings.temporal_tls_server_name or host
        with (
            socket.create_connection((host, port), timeout=_PROBE_SECONDS) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            page = tls.recv(4096).decode("latin-1")
    except (OSError, ValueError):
        return ""
    title = re.search(r"<title>([^<]{1,200})</title>", page)
    return title.group(1).strip() if title else ""


async def _check_namespace(client: Client, settings: Settings) -> None:
    """Fail at start-up, not on the first read, when the namespace does not exist."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace),
            retry=True,
            timeout=timedelta(seconds=settings.temporal_rpc_timeout),
        )
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ConfigError(
                f"Temporal namespace {settings.temporal_namespace!r} does not exist at "
                f"{settings.temporal_address}: set RELMGR_TEMPORAL_NAMESPACE"
            ) from None
        # Some deployments (API keys scoped to a namespace) may not allow describing it; the
        # first read will tell. Anything else is logged, not fatal, for the same reason.
        log.info("describe_namespace at start-up failed: %s", _short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def translate(
    exc: BaseException,
    *,
    entity_id: str | None = None,
    what: str = "reading from Temporal",
) -> RelmgrError:
    """The relmgr error for a failure of a Temporal call; re-raises what is not Temporal's.

    `entity_id` names the entity for NotFoundError and LiveStateUnavailableError; `what` says
    what was being done, for the message.
    """
    if isinstance(exc, RelmgrError):
        return exc
    if isinstance(exc, RPCError):
        return _translate_rpc(exc, entity_id=entity_id, what=what)
    if isinstance(exc, (WorkflowQueryFailedError, WorkflowQueryRejectedError)):
        target = entity_id or "the workflow"
        return LiveStateUnavailableError(
            f"the live state of {target} is not available: {_short(exc)}",
            entity_id=entity_id or "",
        )
    if isinstance(exc, (TimeoutError, RPCTimeoutOrCancelledError)):
        return ReadTimeoutError(f"Temporal did not answer in time while {what}")
    if isinstance(exc, (OSError, RuntimeError, TemporalError)):
        # The bridge raises RuntimeError for transport failures ("Failed client connect", ...).
        return TemporalUnavailableError(f"Temporal is unavailable while {what}: {_short(exc)}")
    raise exc


def _translate_rpc(exc: RPCError, *, entity_id: str | None, what: str) -> RelmgrError:
    status = exc.status
    message = _short(exc) or status.name
    if status is RPCStatusCode.NOT_FOUND:
        if "namespace" in message.lower():
            return TemporalUnavailableError(f"Temporal namespace problem while {what}: {message}")
        return NotFoundError(
            f"{entity_id or 'the workflow'} not found in Temporal", entity_id=entity_id or ""
        )
    # The client's own RPC deadline surfaces as CANCELLED "Timeout expired".
    timed_out = status is RPCStatusCode.CANCELLED and "timeout" in message.lower()
    if status is RPCStatusCode.DEADLINE_EXCEEDED or timed_out:
        return ReadTimeoutError(f"Temporal did not answer in time while {what}")
    if status is RPCStatusCode.INVALID_ARGUMENT:
        return TemporalUnavailableError(
            f"Temporal rejected the request while {what}: {message} (are relmgr's search "
            "attributes registered in this namespace? see "
            "relmgr.temporal.contract.SEARCH_ATTRIBUTES)"
        )
    if status in (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED):
        return TemporalUnavailableError(
            f"Temporal refused relmgr's credentials while {what}: {message}"
        )
    if status in _UNAVAILABLE_CODES:
        return TemporalUnavailableError(f"Temporal is unavailable while {what}: {message}")
    return TemporalUnavailableError(f"Temporal failed while {what}: {status.name}: {message}")


@contextmanager
def temporal_errors(
    *, entity_id: str | None = None, what: str = "reading from Temporal"
) -> Iterator[None]:
    """Run a block whose Temporal failures leave it as relmgr errors (see `translate`)."""
    try:
        yield
    except RelmgrError:
        raise
    except (RPCError, TemporalError, TimeoutError, OSError, RuntimeError) as exc:
        raise translate(exc, entity_id=entity_id, what=what) from None


async def bounded(
    call: Awaitable[T],
    *,
    within: float,
    entity_id: str | None = None,
    what: str = "reading from Temporal",
) -> T:
    """Await one Temporal call for at most `within` seconds, with its errors translated."""
    with temporal_errors(entity_id=entity_id, what=what):
        return await asyncio.wait_for(call, within)
