"""Trusted proxies: X-Forwarded-For believed only from them, read from the right."""

from __future__ import annotations

import pytest

from relmgr.auth.proxies import TrustedProxies
from relmgr.errors import ConfigError

PROXIES = TrustedProxies.parse("10.0.0.0/8, 127.0.0.1 2001:db8::/32")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # untrusted peer: header ignored
        ("127.0.0.1", None, "127.0.0.1"),  # trusted peer, no header: the peer
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.1.1.1", "6.6.6.6, 198.51.100.1, 10.2.2.2", "198.51.100.1"),  # spoofed left part
        ("10.1.1.1", "10.3.3.3, 10.2.2.2", "10.3.3.3"),  # all trusted: the leftmost
        ("10.1.1.1", "garbage, 10.2.2.2", "10.2.2.2"),  # garbage: the last trusted hop
        ("10.1.1.1", " 2001:db8::1 , 198.51.100.9 ", "198.51.100.9"),
        ("2001:db8::5", "198.51.100.2", "198.51.100.2"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str | None, forwarded_for: str | None, client: str
) -> None:
    """The peer unless trusted; then the chain is walked right to left past trusted proxies."""
    assert PROXIES.client(peer, forwarded_for) == client


def test_no_trusted_proxies_by_default() -> None:
    """An empty setting trusts nobody, loopback included."""
    nobody = TrustedProxies.parse("")
    assert nobody.trusts("127.0.0.1") is False
    assert nobody.client("127.0.0.1", "198.51.100.1") == "127.0.0.1"


@pytest.mark.parametrize("setting", ["10.0.0.0/33", "proxy.example.com", "1.2.3"])
def test_a_bad_entry_is_a_config_error_naming_it(setting: str) -> None:
    """An entry that is not an address or CIDR names the setting and the entry."""
    with pytest.raises(ConfigError, match=f"RELMGR_TRUSTED_PROXIES: '{setting}' is not an IP"):
        TrustedProxies.parse(f"127.0.0.1, {setting}")
