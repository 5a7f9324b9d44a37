"""The client address of a web request, believing forwarded headers only from our proxy.

Limits per client address (token minting, concurrent sockets) are worthless
if a client can name its own address: ``X-Forwarded-For`` and ``X-Real-IP``
are plain request headers. They are read only when the TCP peer is a trusted
proxy (loopback by default: nginx of the production profile runs on the same
host). nginx sets ``X-Real-IP`` to the address it saw, replacing whatever the
client sent, and appends that address to ``X-Forwarded-For`` (whose leftmost
entries stay client-controlled), so: ``X-Real-IP`` first, else the rightmost
``X-Forwarded-For`` entry that is not itself a trusted proxy.

An IPv6 client is counted by its /64: one subscriber (a phone, a home) gets a
whole /64 and could otherwise pick a new address for every request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)

DEFAULT_TRUSTED_PROXIES: Tuple[str, ...] = ("127.0.0.1", "::1")
# Host names among the trusted proxies (e.g. a compose service "nginx") are
# resolved again after this many seconds; a failed look-up is remembered as long.
RESOLVE_TTL = 30.0
RESOLVE_TIMEOUT = 1.0

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_ip(value: Any) -> Optional[IPAddress]:
    """An address from a header value or a socket peer (``[v6]:port`` and ``v4:port`` too)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1 and "." in text:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


class TrustedProxies:
    """Addresses, networks (CIDR) and host names whose forwarded headers we believe.

    Args:
        entries: ``"127.0.0.1"``, ``"::1"``, ``"10.0.0.0/8"``, ``"nginx"``...;
            a comma-separated string is split.
    """

    def __init__(self, entries: Union[str, Iterable[str], None] = DEFAULT_TRUSTED_PROXIES) -> None:
        if entries is None:
            entries = DEFAULT_TRUSTED_PROXIES
        if isinstance(entries, str):
            entries = entries.split(",")
        self.networks: List[IPNetwork] = []
        self.hostnames: List[str] = []
        for entry in entries:
            entry = str(entry).strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not all(part.isalnum() or part in "-._" for part in entry):
                    raise ValueError(f"trusted proxy {entry!r} is not an address, network or host name")
                self.hostnames.append(entry)
        self._resolved: Dict[str, Tuple[float, Tuple[IPAddress, ...]]] = {}

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self.networks] + self.hostnames})"

    async def _addresses_of(self, hostname: str) -> Sequence[IPAddress]:
        now = time.monotonic()
        cached = self._resolved.get(hostname)
        if cached is not None and now - cached[0] < RESOLVE_TTL:
            return cached[1]
        found: Tuple[IPAddress, ...] = ()
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(hostname, None, type=socket.SOCK_STREAM),
                RESOLVE_TIMEOUT)
            found = tuple(a for a in (parse_ip(info[4][0]) for info in infos) if a is not None)
        except (OSError, asyncio.TimeoutError) as error:
            logger.debug("trusted proxy %s not resolved: %s", hostname, error)
        self._resolved[hostname] = (now, found)
        return found

    async def trusts(self, address: Optional[IPAddress]) -> bool:
        """Whether ``address`` is one of our proxies."""
        if address is None:
            return False
        if any(address in network for network in self.networks):
            return True
        for hostname in self.hostnames:
            if address in await self._addresses_of(hostname):
                return True
        return False


async def client_address(request: Any, proxies: TrustedProxies) -> str:
    """The address a per-client limit counts: the peer, or what our proxy says it saw."""
    raw_peer = getattr(request, "ip", "") or ""
    peer = parse_ip(raw_peer)
    if peer is None:
        return raw_peer or "unknown"
    if not await proxies.trusts(peer):
        return str(peer)
    headers = getattr(request, "headers", None) or {}
    real = parse_ip(headers.get("X-Real-IP"))
    if real is not None:
        return str(real)
    getall = getattr(headers, "getall", None)
    values = getall("X-Forwarded-For", []) if getall else [headers.get("X-Forwarded-For") or ""]
    hops = [hop for value in values for hop in str(value).split(",")]
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:
            break  # garbage: nothing left of it can be believed
        if not await proxies.trusts(address):
            return str(address)
    return str(peer)


def limit_key(address: str) -> str:
    """What per-address limits count: the IPv4 address, or the IPv6 address's /64."""
    parsed = parse_ip(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else address
