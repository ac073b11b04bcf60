"""The address guard: newsbot never fetches from or delivers to a private or loopback address.

Remote servers tell newsbot which URLs to fetch (a ``keyId``, an actor, an
inbox); without a guard, anyone could make it reach the machine's own
services. The guard resolves the host name itself, refuses any address that
is not globally routable (unless ``activitypub.allow_private_addresses``),
and connects to the address it checked, so a second DNS answer cannot
change it (no DNS rebinding). It is an httpcore network backend, so every
request of the ActivityPub HTTP client passes through it; for the aiohttp
session that delivers activities (:func:`newsbot.activitypub.sessions.guarded_session`)
it is the session's resolver, with a middleware refusing private IP literals
(which aiohttp connects to without asking the resolver).

The resolver is injected: tests and the benchmark map many host names to
127.0.0.1 to stand for many servers on one machine.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import httpcore
import httpx

from newsbot.errors import NewsbotError

Resolver = Callable[[str, int], list[str]]
"""Host name and port -> IP addresses."""


class BlockedAddress(NewsbotError):
    """The URL's host is (or resolves to) a private, loopback or otherwise local address."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def mapped_resolver(names: Mapping[str, str], fallback: Resolver = system_resolver) -> Resolver:
    """A resolver that answers ``names`` from the table and asks ``fallback`` otherwise."""

    def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return [names[host]]
        return fallback(host, port)

    return resolve


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_literal(url: str, allow_private: bool) -> None:
    """Refuse at once a URL whose host is a non-public IP literal or ``localhost`` (no lookup)."""
    if allow_private:
        return
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddress(f"not an http(s) URL: {url}")
    host = parsed.host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise BlockedAddress(f"{parsed.host} is a loopback name")
    try:
        public = is_public(host)
    except ValueError:
        return  # a name: checked when it is resolved
    if not public:
        raise BlockedAddress(f"{parsed.host} is not a public address")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects: the only way the ActivityPub client reaches a host."""

    def __init__(self, resolver: Resolver, allow_private: bool) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            ipaddress.ip_address(host.strip("[]"))
            addresses = [host.strip("[]")]
        except ValueError:
            try:
                addresses = await anyio.to_thread.run_sync(self._resolver, host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not self._allow_private and not all(is_public(a) for a in addresses):
            raise BlockedAddress(f"{host} resolves to a private or loopback address")
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not reachable from ActivityPub")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    *,
    allow_private: bool,
    tls: ssl.SSLContext | None = None,
    resolver: Resolver = system_resolver,
    timeout: float = 15.0,
    max_connections: int = 256,
    user_agent: str = "newsbot",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection goes through :class:`GuardedBackend`.

    ``tls`` is shared by the clients of one process: loading the CA bundle
    takes tens of milliseconds, too long to repeat for each remote host.
    """
    transport = httpx.AsyncHTTPTransport(
        verify=tls if tls is not None else True,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )
    # httpx builds its pool without a backend argument; the guard replaces the default one.
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    pool._network_backend = GuardedBackend(resolver, allow_private)
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": user_agent},
    )
