"""Upstream-client test helpers: a scripted HTTP/1.1 upstream (plain or TLS), chunked bodies, pools."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trustme

from chunkline.server import http1

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunked(chunks: list[bytes], ext: bytes = b"") -> bytes:
    """``chunks`` as a chunked body, each chunk header with ``ext`` after its size."""
    return b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks) + b"0\r\n\r\n"


class Seen:
    """What the fake upstream saw: the connections it accepted and the request heads."""

    def __init__(self) -> None:
        self.accepted = 0
        self.heads: list[bytes] = []
        self.url = ""


@asynccontextmanager
async def fake_upstream(
    answer: Callable[[int], list[bytes]], tls: ssl.SSLContext | None = None
) -> AsyncIterator[Seen]:
    """A server on 127.0.0.1 (over TLS with ``tls``) that answers its n-th request
    (over all connections, from 1) with the pieces ``answer(n)`` returns, each written and
    drained on its own; a piece b"" closes the connection."""
    seen = Seen()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.accepted += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.heads.append(head)
                length = head.lower().split(b"content-length: ")
                if len(length) > 1:
                    await reader.readexactly(int(length[1].split(b"\r\n")[0]))
                for piece in answer(len(seen.heads)):
                    if not piece:
                        writer.close()
                        return
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.0005)  # so that each piece is a read of its own
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    scheme = "https" if tls is not None else "http"
    seen.url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield seen
    finally:
        server.close()


def tls_contexts(authority: trustme.CA, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``name``, and a client context that trusts it."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client


def new_pool(url: str, ssl_context: ssl.SSLContext | None = None, **options: float) -> http1.Pool:
    limits: dict[str, float] = {"max_connections": 10, "connect_timeout": 5.0, **options}
    return http1.Pool(
        url,
        max_connections=int(limits.pop("max_connections")),
        connect_timeout=limits.pop("connect_timeout"),
        ssl_context=ssl_context,
        **limits,
    )


async def read_body(pool: http1.Pool, path: str = "/v1/messages") -> bytes:
    response = await pool.request("POST", path, [("content-type", "application/json")], b"{}")
    try:
        return b"".join([data async for data in response.reads()])
    finally:
        await response.aclose()
