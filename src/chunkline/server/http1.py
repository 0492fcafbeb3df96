"""The upstream's HTTP/1.1 client: pooled keep-alive connections, one write per request, bodies by read."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from urllib.parse import urlsplit

from .http1_body import body_reads
from .http1_connection import Connection
from .http1_errors import (
    ConnectError,
    ConnectTimeout,
    HTTPError,
    PoolTimeout,
    ReadError,
    RemoteProtocolError,
)
from .http1_head import TOKEN_PATTERN, Unanswered, read_head
from .http1_proxy import Proxy, open_tunnel

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "HTTPError",
    "Pool",
    "PoolTimeout",
    "ReadError",
    "RemoteProtocolError",
    "Response",
]

_FIELD_NAME = re.compile(TOKEN_PATTERN)
_UNSENDABLE = re.compile(r"[\r\n\x00]")


class Response:
    """One upstream response: its status and head, and its body read by `reads` (each item what
    one network read brought, its framing removed). `aclose` lets go of the connection: back to
    the pool when the body was read to its end and the connection may carry another request,
    else closed (which also tells the upstream to stop)."""

    __slots__ = ("_body", "_pool", "connection", "framing", "headers", "keep_alive", "status_code")

    def __init__(
        self,
        pool: Pool,
        connection: Connection,
        status_code: int,
        headers: dict[str, str],
        framing: int | None,
        keep_alive: bool,
    ) -> None:
        self._pool = pool
        self.connection: Connection | None = connection
        self.status_code = status_code
        #: Lower-case names; a repeated header's values joined with ", ".
        self.headers = headers
        #: The body's length; -1 for chunked, None for a body that ends when the connection does.
        self.framing = framing
        self.keep_alive = keep_alive
        self._body: AsyncGenerator[bytes, None] | None = None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def take_headers(self) -> dict[str, str]:
        """The head's headers, which the response then no longer keeps: a stream may run for
        minutes, and an API's rate-limit and tracing headers come to a kilobyte and more (the
        Anthropic API sends some twenty)."""
        headers = self.headers
        self.headers = {}
        return headers

    def reads(self) -> AsyncGenerator[bytes, None]:
        """The body, read by read (once)."""
        if self._body is None:
            if self.connection is None:
                raise ReadError("the response was closed before its body was read")
            self._body = body_reads(self.connection, self.framing)
        return self._body

    async def aread(self, limit: int) -> bytes:
        """The body's first ``limit`` bytes (all of it when shorter)."""
        data = bytearray()
        async for chunk in self.reads():
            data += chunk
            if len(data) >= limit:
                break
        return bytes(data[:limit])

    async def aclose(self) -> None:
        """Let go of the connection (once; later calls do nothing)."""
        connection = self.connection
        if connection is None:
            return
        self.connection = None
        if connection.complete and self.keep_alive and not connection.leftover():
            self._pool.release(connection)
        else:
            self._pool.discard(connection)
        if self._body is not None:
            await self._body.aclose()


def _header_lines(headers: Sequence[tuple[str, str]]) -> list[str]:
    lines = []
    for name, value in headers:
        if _FIELD_NAME.fullmatch(name) is None or _UNSENDABLE.search(value) is not None:
            raise ValueError(f"the header {name!r} cannot be sent: a line break or NUL in it")
        lines.append(f"{name}: {value}\r\n")
    return lines


class Pool:
    """Keep-alive HTTP/1.1 connections to the one origin of ``base_url`` (whose path prefixes every
    request's), at most ``max_connections`` open at once; a request beyond that waits for one
    for up to ``connect_timeout`` seconds. The most recently used idle connection is taken first,
    and one idle for ``keepalive_expiry`` seconds is closed (servers close theirs after a few
    seconds; a request sent on one just closed would fail). Every step of a request is O(1): no
    walk over the pool's connections. ``headers`` go with every request, before each one's own."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = 5.0,
        proxy: Proxy | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.base_path = url.path.rstrip("/")
        name = f"[{self.host}]" if ":" in self.host else self.host
        self._authority = name if url.port is None else f"{name}:{url.port}"
        self._ssl = (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        self._proxy = proxy
        self._tunnel_to = f"{name}:{self.port}"
        # Through a proxy, plain HTTP requests name the whole URL; HTTPS goes through a tunnel.
        self._target_prefix = self.base_path
        self._fixed_lines = ""
        if proxy is not None and self._ssl is None:
            self._target_prefix = f"http://{self._authority}{self.base_path}"
            self._fixed_lines = proxy.header_lines()
        # Rendered and checked once, not per request.
        self._fixed_lines += "".join(_header_lines(headers))
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._expiry = keepalive_expiry
        self._idle: deque[Connection] = deque()
        self._open = 0  # connecting, carrying a request, or idle
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()

    def use(self) -> tuple[int, int]:
        """Connections open now: (carrying a request or connecting, idle)."""
        return self._open - len(self._idle), len(self._idle)

    async def request(
        self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes = b""
    ) -> Response:
        """Send a request and read its head; the body is the response's to read. A connection
        kept idle that the upstream closed just as it was used (no byte of an answer came) is
        replaced and the request sent again, once, as browsers and Go's client do."""
        head = self._head(method, path, headers, body)
        for attempt in (1, 2):
            connection, reused = await self._acquire()
            try:
                transport = connection.transport
                assert transport is not None
                if len(body) < 64 * 1024:
                    transport.write(head + body)
                else:  # not copied into one buffer
                    transport.write(head)
                    transport.write(body)
                status, fields, framing, keep_alive = await read_head(connection, method)
            except Unanswered:
                self.discard(connection)
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                self.discard(connection)
                raise
            connection.complete = framing == 0
            return Response(self, connection, status, fields, framing, keep_alive)
        raise AssertionError("unreachable")

    def _head(self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
        lines = [
            f"{method} {self._target_prefix}{path} HTTP/1.1\r\nhost: {self._authority}\r\n",
            self._fixed_lines,
            *_header_lines(headers),
        ]
        if body or method not in ("GET", "HEAD"):
            lines.append(f"content-length: {len(body)}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    async def _acquire(self) -> tuple[Connection, bool]:
        idle = self._idle
        if idle:
            now = asyncio.get_running_loop().time()
            while idle:
                connection = idle.pop()
                if connection.usable and now - connection.idle_since < self._expiry:
                    return connection, True
                connection.close()
                self._open -= 1
        if self._open >= self._max:
            handed = await self._wait()
            if handed is not None:
                return handed, True
            # else a slot was counted for this request as it was handed over
        else:
            self._open += 1
        try:
            return await self._connect(), False
        except BaseException:
            self._open -= 1
            self._hand_over(None)
            raise

    async def _wait(self) -> Connection | None:
        """Wait for a connection given back (returned) or a slot to open one in (None)."""
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed over just as this request gave up: pass it on.
                handed = waiter.result()
                if handed is not None:
                    self.release(handed)
                else:
                    self._open -= 1
                    self._hand_over(None)
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise PoolTimeout(
                    f"all {self._max} connections to the upstream stayed busy for {self._connect_timeout:g} s"
                ) from None
            raise

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        proxy = self._proxy
        host, port = (proxy.host, proxy.port) if proxy is not None else (self.host, self.port)
        tunnel = proxy is not None and self._ssl is not None
        connection: Connection | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(loop),
                    host,
                    port,
                    ssl=None if tunnel else self._ssl,
                    server_hostname=self.host if self._ssl is not None and not tunnel else None,
                )
                if tunnel:
                    assert proxy is not None and self._ssl is not None
                    await open_tunnel(connection, proxy, self._tunnel_to)
                    assert connection.transport is not None
                    connection.transport = await loop.start_tls(
                        connection.transport, connection, self._ssl, server_hostname=self.host
                    )
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, TimeoutError):
                raise ConnectTimeout(
                    f"connecting to {host}:{port} took longer than {self._connect_timeout:g} s"
                ) from None
            if isinstance(exc, OSError):
                raise ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        return connection

    def release(self, connection: Connection) -> None:
        """A connection whose response was read to its end, for the next request."""
        connection.complete = False
        if self._hand_over(connection):
            return
        loop = asyncio.get_running_loop()
        connection.idle_since = now = loop.time()
        idle = self._idle
        idle.append(connection)
        while now - idle[0].idle_since >= self._expiry:  # the oldest, unused for too long
            idle.popleft().close()
            self._open -= 1

    def discard(self, connection: Connection) -> None:
        """Close a connection not fit for another request; its place goes to a waiting request."""
        connection.close()
        self._open -= 1
        self._hand_over(None)

    def _hand_over(self, handed: Connection | None) -> bool:
        """Give a connection (or, None, a slot to open one in, counted here) to the
        longest-waiting request; False when none waits."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                if handed is None:
                    self._open += 1
                waiter.set_result(handed)
                return True
        return False

    async def aclose(self) -> None:
        """Close the idle connections (those carrying a request close when it ends)."""
        idle, self._idle = self._idle, deque()
        for connection in idle:
            connection.close()
            self._open -= 1
