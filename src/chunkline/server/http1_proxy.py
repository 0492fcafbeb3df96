"""Reaching the upstream through the HTTP proxy the environment names (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)."""

from __future__ import annotations

import base64
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .http1_connection import Connection
from .http1_errors import ConnectError
from .http1_head import read_head

__all__ = ["Proxy", "open_tunnel"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it listens, and the ``proxy-authorization`` its URL's user info makes."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def for_url(cls, url: str) -> Proxy | None:
        """The proxy the environment names for ``url`` (as httpx, curl and urllib read it:
        ``<scheme>_proxy`` or ``all_proxy``, either case, unless ``no_proxy`` covers the host),
        else None. Raises ValueError for a proxy that is not ``http://``."""
        parts = urlsplit(url)
        proxies = urllib.request.getproxies()
        named = proxies.get(parts.scheme) or proxies.get("all")
        if not named or urllib.request.proxy_bypass(parts.hostname or ""):
            return None
        proxy = urlsplit(named if "://" in named else f"http://{named}")
        if proxy.scheme != "http" or not proxy.hostname:
            raise ValueError(
                f"the {parts.scheme} proxy the environment names ({proxy.scheme}://{proxy.hostname}) "
                "is not an http:// proxy, the only kind this server speaks to"
            )
        authorization = None
        if proxy.username is not None:
            user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
            authorization = "Basic " + base64.b64encode(user.encode()).decode("ascii")
        return cls(proxy.hostname, proxy.port or 80, authorization)

    def header_lines(self) -> str:
        return f"proxy-authorization: {self.authorization}\r\n" if self.authorization else ""


async def open_tunnel(connection: Connection, proxy: Proxy, authority: str) -> None:
    """Ask the proxy on ``connection`` for a tunnel to ``authority`` (host:port): CONNECT."""
    assert connection.transport is not None
    request = f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n{proxy.header_lines()}\r\n"
    connection.transport.write(request.encode("latin-1"))
    status = (await read_head(connection, "CONNECT"))[0]
    if not 200 <= status < 300:
        raise ConnectError(
            f"the proxy {proxy.host}:{proxy.port} refused a tunnel to {authority}: HTTP {status}"
        )
    if connection.leftover():
        raise ConnectError(f"the proxy {proxy.host}:{proxy.port} sent bytes before the tunnel was up")
