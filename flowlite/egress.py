"""The egress policy of `http_request`: which addresses a workflow may send requests to.

By default link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata endpoints
(169.254.169.254, fd00:ec2::254, 100.100.100.200, ``metadata.google.internal``) are refused, so a
workflow cannot read the host's cloud credentials. Loopback and private networks stay allowed
(local services are a normal target of a self-hosted tool); ``allow_private=False`` refuses them.

The check is made by :class:`EgressTransport` on every request the client sends, so also on every
redirect hop, and on the *resolved* address: the host name is resolved once, every answer is
checked, and the connection goes to a checked address (the original name kept for the ``Host``
header and TLS SNI), so a DNS answer that changes between check and connect cannot slip through.
A refused request raises :class:`EgressDenied` before any connection is opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from flowlite.errors import NodeError

__all__ = ["DEFAULT_DENY", "METADATA_HOSTS", "EgressDenied", "EgressPolicy", "EgressTransport"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

DEFAULT_DENY = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "127.0.0.0/8", "::1/128")


class EgressDenied(NodeError):
    """The egress policy refuses a request's destination."""


def _networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


@dataclass(frozen=True)
class EgressPolicy:
    """Networks refused (the defaults plus ``extra_deny``); private ones too unless allowed."""

    extra_deny: tuple[str, ...] = ()
    allow_private: bool = True
    deny: tuple[Network, ...] = field(init=False)

    def __post_init__(self) -> None:
        cidrs = (*DEFAULT_DENY, *self.extra_deny, *(() if self.allow_private else _PRIVATE))
        object.__setattr__(self, "deny", _networks(cidrs))

    def check_host(self, host: str) -> None:
        if host.rstrip(".").lower() in METADATA_HOSTS:
            raise EgressDenied(f"requests to {host!r} (a cloud metadata service) are not allowed")

    def check_address(self, host: str, address: str) -> None:
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        for candidate in (ip, mapped) if mapped else (ip,):
            for network in self.deny:
                if candidate.version == network.version and candidate in network:
                    shown = host if host == address else f"{host!r} ({address})"
                    raise EgressDenied(
                        f"requests to {shown} are not allowed by the egress policy "
                        f"(network {network})"
                    )


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver answers for ``host``."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks each request's resolved destination, then connects to it."""

    def __init__(
        self,
        policy: EgressPolicy | None = None,
        *,
        resolver: Resolver = system_resolver,
        **transport_options: Any,
    ) -> None:
        self.policy = policy or EgressPolicy()
        self.resolver = resolver
        self.inner = httpx.AsyncHTTPTransport(**transport_options)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.policy.check_host(host)
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            port = request.url.port or (443 if request.url.scheme == "https" else 80)
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise httpx.ConnectError(
                    f"cannot resolve {host!r}: {exc}", request=request
                ) from exc
        if not addresses:
            raise httpx.ConnectError(f"{host!r} has no address", request=request)
        for address in addresses:
            self.policy.check_address(host, address)
        if addresses[0] != host:
            # connect to the address just checked; the name stays in Host and in TLS SNI (a
            # new request: httpx builds redirects from the original one)
            request = httpx.Request(
                request.method,
                request.url.copy_with(host=addresses[0]),
                headers=request.headers,
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
