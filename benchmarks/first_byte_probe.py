"""Timestamps of one request's way to its first byte inside ``chunkline serve``, for first_byte.py.

Loaded into the server by a ``sitecustomize`` that first_byte.py writes: it wraps a few of the
server's and asyncio's methods to note, for each request, when its first bytes were read, when its
app began, when the upstream request was written and answered, and when the first bytes left for
the client, and writes one line per request to a file. A diagnostic only: it patches private
methods (asyncio's socket transport among them), so it belongs in a benchmark, never in the server.
"""

from __future__ import annotations

import time
from asyncio import selector_events
from typing import Any, TextIO

#: The moments noted, in the order a request passes them.
MOMENTS = ("read", "app", "upstream_write", "upstream_read", "client_write")


def install(path: str) -> None:
    """Wrap the server's methods; each finished request appends its moments to ``path``."""
    from chunkline.server import accesslog, http1_connection, protocol_httptools

    clock = time.perf_counter  # CLOCK_MONOTONIC: one clock for every process of the machine
    seen: dict[str, float] = {}
    out: TextIO = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    protocol = protocol_httptools.GuardedHttpToolsProtocol
    upstream = http1_connection.Connection
    transport = selector_events._SelectorSocketTransport  # type: ignore[attr-defined]

    data_received = protocol.data_received

    def read(self: Any, data: bytes) -> None:
        seen.setdefault("read", clock())
        data_received(self, data)

    observe = accesslog.RequestObserver.__call__

    async def app(self: Any, scope: Any, receive: Any, send: Any) -> None:
        seen.setdefault("app", clock())
        await observe(self, scope, receive, send)

    upstream_received = upstream.data_received

    def upstream_read(self: Any, data: bytes) -> None:
        if "upstream_write" in seen:
            seen.setdefault("upstream_read", clock())
        upstream_received(self, data)

    write = transport.write

    def written(self: Any, data: Any) -> None:
        if "read" in seen:
            if isinstance(self._protocol, upstream):
                seen.setdefault("upstream_write", clock())
            elif "upstream_read" in seen:
                seen.setdefault("client_write", clock())
        write(self, data)

    complete = protocol.on_response_complete

    def completed(self: Any) -> None:
        if all(moment in seen for moment in MOMENTS):
            out.write(" ".join(f"{seen[moment]:.7f}" for moment in MOMENTS) + "\n")
        seen.clear()
        complete(self)

    protocol.data_received = read
    accesslog.RequestObserver.__call__ = app
    upstream.data_received = upstream_read
    transport.write = written
    protocol.on_response_complete = completed
