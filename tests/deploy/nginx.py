"""Debian's nginx run by a test: a config written into a temporary prefix, started in the
foreground on loopback ports, stopped (and waited for) at the end."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relmgr.testing.processes import stop_process

NGINX = Path("/usr/sbin/nginx")


def require_nginx() -> None:
    """Skip when nginx is not installed (.ci/run installs it)."""
    if not NGINX.exists():
        pytest.skip(f"these tests need Debian's nginx at {NGINX} (.ci/run installs it)")


def main_config(prefix: Path, http_block: str) -> str:
    """A whole nginx.conf: one worker, everything under `prefix`, `http_block` inside http {}."""
    return f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format relmgr_test '$cookie_relmgr_route $upstream_addr $status $request_uri';
    access_log {prefix}/access.log relmgr_test;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{http_block}
}}
"""


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def running_nginx(prefix: Path, config: str, ports: list[int]) -> Iterator[Path]:
    """Check `config` with `nginx -t`, run it until the block ends; yields the error log."""
    require_nginx()
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    base = [str(NGINX), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, f"nginx -t refused the config:\n{checked.stderr}"
    with (prefix / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 10
        while not all(_accepts(port) for port in ports):
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(prefix / 'stderr.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen within 10 s")
            time.sleep(0.05)
        yield prefix / "error.log"
    finally:
        stop_process(process)
