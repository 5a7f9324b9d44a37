"""The client address of a desk request, trusting forwarded headers only from our proxy.

``X-Forwarded-For`` and ``X-Real-IP`` are plain request headers: anyone can
send them. They are read only when the request itself comes from a trusted
proxy (by default 127.0.0.1 and ::1, where nginx runs in the production
profile); from anyone else the socket's peer address is the client address.

nginx appends the address it saw to ``X-Forwarded-For``
(``$proxy_add_x_forwarded_for``), after whatever the client sent, so the
header is read from the right: the first address that is not a trusted proxy
is the client. Addresses the client wrote further left are never used.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, List, Optional, Sequence, Union

DEFAULT_TRUSTED_PROXIES: Sequence[str] = ("127.0.0.1", "::1")

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def normalize(raw: Any) -> Optional[str]:
    """The address in canonical form (IPv4-mapped IPv6 as IPv4), None if it is not one.

    A port (``1.2.3.4:5678``, ``[::1]:5678``) is dropped.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


class TrustedProxies:
    """Addresses or networks (``10.0.0.0/8``) whose forwarded headers are believed."""

    def __init__(self, entries: Iterable[str] = DEFAULT_TRUSTED_PROXIES) -> None:
        networks: List[_Network] = []
        for entry in entries:
            entry = str(entry).strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"trusted proxy {entry!r} is not an address or network") from None
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, value: Any) -> "TrustedProxies":
        """From a list, or a comma-separated string; the defaults when empty or None."""
        if value is None or value == "":
            return cls()
        if isinstance(value, str):
            return cls(value.split(","))
        if isinstance(value, (list, tuple)):
            return cls(str(v) for v in value)
        raise ValueError(f"trusted_proxies must be a list or a comma-separated string, not {value!r}")

    def __contains__(self, address: object) -> bool:
        normal = normalize(address) if isinstance(address, str) else None
        if normal is None:
            return False
        ip = ipaddress.ip_address(normal)
        return any(ip.version == net.version and ip in net for net in self.networks)


def client_address(request: Any, trusted: TrustedProxies) -> str:
    """Who sent ``request`` (a Sanic request), as an IP address string.

    The socket's peer address, unless that peer is a trusted proxy: then the
    rightmost untrusted address of ``X-Forwarded-For``, else ``X-Real-IP``.
    """
    peer = normalize(getattr(request, "ip", "")) or "unknown"
    if peer not in trusted:
        return peer
    headers = request.headers
    forwarded: List[str] = []
    for value in headers.getall("x-forwarded-for", []):
        forwarded.extend(part.strip() for part in value.split(","))
    for candidate in reversed(forwarded):
        address = normalize(candidate)
        if address is None:
            break  # not written by a proxy of ours: stop believing the header
        if address not in trusted:
            return address
    real = normalize(headers.get("x-real-ip", ""))
    return real or peer
