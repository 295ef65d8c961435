"""Which client a request comes from, believing `X-Forwarded-For` only from trusted proxies.

`RELMGR_TRUSTED_PROXIES` lists the addresses or CIDRs of the reverse proxies in front of relmgr
(comma- or space-separated; empty by default: the header is never believed). The API and the
dashboard both ask `TrustedProxies.client`; uvicorn's own rewriting of the client address is
turned off in both, so this is the only rule. The chain is read from the right: each trusted hop
is skipped, and the first address that is not a trusted proxy is the client (anything further
left was written by that client and proves nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from relmgr.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class TrustedProxies:
    """The reverse proxies whose `X-Forwarded-For` is believed."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = tuple(networks)

    @classmethod
    def parse(cls, setting: str) -> TrustedProxies:
        """From the setting's text; ConfigError naming the entry that is not an address/CIDR."""
        networks: list[Network] = []
        for entry in setting.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(
                    f"RELMGR_TRUSTED_PROXIES: {entry[:64]!r} is not an IP address or CIDR "
                    "(e.g. 10.0.0.0/8, 127.0.0.1)"
                ) from None
        return cls(networks)

    def trusts(self, address: str | None) -> bool:
        """Whether `address` is one of the trusted proxies."""
        parsed = _address(address) if address else None
        return parsed is not None and any(parsed in network for network in self._networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, unless it is a trusted proxy that forwarded for one."""
        client = peer or "unknown"
        if not forwarded_for or not self.trusts(peer):
            return client
        for hop in reversed(forwarded_for.split(",")):
            if _address(hop) is None:
                return client  # garbage from a trusted hop: the last trusted address stands
            client = hop.strip()
            if not self.trusts(client):
                return client
        return client
