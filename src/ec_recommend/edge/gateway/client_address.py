"""The address a request really came from.

The socket's peer, unless that peer is a configured trusted proxy: then the
``X-Forwarded-For`` chain is read from the right, skipping trusted hops, and
the first untrusted address is the client. Anything a client writes to the
left of that cannot change its identity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self.trusted = parse_networks(trusted_proxies)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        peer = peer or "unknown"
        if not self.trusted or not forwarded_for or not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",")][-32:]
        for hop in reversed(hops):
            try:
                canonical = str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a garbled chain: trust nothing in it
            if not self._is_trusted(canonical):
                return canonical
        return peer
