"""Free loopback ports for the servers tests start.

`free_port()` names a port that was free a moment ago: between its probe closing and the server
binding it, another process may take it. Where the server can take an open socket (uvicorn, in a
thread or as a child with `--fd`), hand it `bound_socket()` instead, which never lets go of the
port; where it cannot (the temporal CLI, Streamlit), retry the start on a conflict.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (see the module's caveat)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bound_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a port the kernel chose, for a server to listen on;
    inheritable, so that a child process can be given it (`pass_fds`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    """The port a bound socket holds."""
    return int(sock.getsockname()[1])
