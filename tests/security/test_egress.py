"""The egress policy: metadata and link-local addresses are refused before any connection,
also after a redirect and when a host name resolves to them; loopback stays allowed."""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx
import pytest

from flowlite.egress import EgressDenied, EgressPolicy, EgressTransport
from flowlite.testing import run_node
from tests.httpserver import Response, TestServer


@pytest.fixture
def no_outside_traffic(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fails the test if anything connects anywhere but loopback."""
    attempts: list[Any] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        attempts.append(address)
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a connection to {address} was attempted")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


async def test_a_redirect_to_the_metadata_address_is_refused(
    http_server: TestServer, no_outside_traffic: list[Any]
) -> None:
    url = http_server.url("/redirect?to=http://169.254.169.254/latest/meta-data/")
    result = await run_node("http_request", {"url": url})
    assert result.error is not None
    assert "169.254.169.254" in result.error.message
    assert "egress policy" in result.error.message
    assert len(http_server.requests) == 1  # the first hop went out, the second never did
    assert all(a[0] == "127.0.0.1" for a in no_outside_traffic if isinstance(a, tuple))


async def test_loopback_stays_allowed(http_server: TestServer) -> None:
    http_server.route("/ok", lambda request: Response.json({"host": request.headers["host"]}))
    result = await run_node("http_request", {"url": http_server.url("/ok")})
    assert result.error is None
    assert result.json()[0]["host"].startswith("127.0.0.1:")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_metadata_and_link_local_literals_are_refused(
    url: str, no_outside_traffic: list[Any]
) -> None:
    result = await run_node("http_request", {"url": url})
    assert result.error is not None and "not allowed" in result.error.message
    assert no_outside_traffic == []


async def _resolve_to(address: str) -> Any:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1", address] if host == "mixed.test" else [address]

    return resolver


async def test_a_host_name_resolving_to_a_denied_address_is_refused(
    no_outside_traffic: list[Any],
) -> None:
    transport = EgressTransport(resolver=await _resolve_to("169.254.169.254"))
    async with httpx.AsyncClient(transport=transport) as client:
        for host in ("evil.test", "mixed.test"):  # every answer is checked
            with pytest.raises(EgressDenied, match=re.escape("169.254.169.254")):
                await client.get(f"http://{host}/")
    assert no_outside_traffic == []


async def test_the_checked_address_is_the_one_connected_to(http_server: TestServer) -> None:
    http_server.route("/who", lambda request: Response.json({"host": request.headers["host"]}))
    port = http_server.url("/").split(":")[2].split("/")[0]
    resolver = await _resolve_to("127.0.0.1")
    async with httpx.AsyncClient(transport=EgressTransport(resolver=resolver)) as client:
        response = await client.get(f"http://service.test:{port}/who")
    assert response.json() == {"host": f"service.test:{port}"}  # the name kept in Host


async def test_private_networks_and_extra_cidrs_can_be_refused(
    http_server: TestServer, no_outside_traffic: list[Any]
) -> None:
    strict = EgressTransport(EgressPolicy(allow_private=False))
    async with httpx.AsyncClient(transport=strict) as client:
        with pytest.raises(EgressDenied, match=re.escape("127.0.0.0/8")):
            await client.get(http_server.url("/echo"))
    extra = EgressTransport(EgressPolicy(extra_deny=("203.0.113.0/24",)))
    async with httpx.AsyncClient(transport=extra) as client:
        with pytest.raises(EgressDenied, match=re.escape("203.0.113.0/24")):
            await client.get("http://203.0.113.9/")
    assert http_server.requests == []
