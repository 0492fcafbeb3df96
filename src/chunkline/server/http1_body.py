"""An upstream response's body unframed in one pass per network read: chunked, by length, or to the close."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final

from .http1_connection import Connection
from .http1_errors import RemoteProtocolError

__all__ = ["body_reads"]

# The longest chunk header (or trailer) waited for: h11's limit for an incomplete line.
_MAX_LINE: Final = 16 * 1024
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?[ \t]*")
# httpx's words for a body cut off, which clients and logs already know.
_CUT_CHUNKED: Final = "peer closed connection without sending complete message body (incomplete chunked read)"


def body_reads(connection: Connection, framing: int | None) -> AsyncIterator[bytes]:
    """The body after the head: ``framing`` is its length, -1 for chunked, None for a body that
    ends with the connection. Each item is what one receive brought, its framing removed (never
    empty). ``connection.complete`` is set once the body has ended."""
    if framing == -1:
        return _chunked(connection)
    if framing is None:
        return _to_close(connection)
    return _by_length(connection, framing)


async def _by_length(connection: Connection, length: int) -> AsyncIterator[bytes]:
    left = length
    while left:
        data = await connection.receive()
        if not data:
            raise RemoteProtocolError(
                f"peer closed connection without sending complete message body "
                f"(received {length - left} bytes, expected {length})"
            )
        if len(data) > left:
            connection.unread(data[left:])
            data = data[:left]
        left -= len(data)
        if not left:
            connection.complete = True
        yield data
    connection.complete = True


async def _to_close(connection: Connection) -> AsyncIterator[bytes]:
    while True:
        data = await connection.receive()
        if not data:
            connection.complete = True
            return
        yield data


async def _chunked(connection: Connection) -> AsyncIterator[bytes]:
    """Chunk after chunk, all those one read completes (or part of one) handed over together;
    an SSE upstream sends a chunk per event, so this is the hot path's inner loop."""
    left = 0  # bytes of the current chunk still to come
    crlf = 0  # bytes of the CRLF after it still to come
    pending = b""  # an incomplete chunk header
    while True:
        data = await connection.receive()
        if not data:
            raise RemoteProtocolError(_CUT_CHUNKED)
        if pending:
            data, pending = pending + data, b""
        out = []
        pos, end = 0, len(data)
        while pos < end:
            if left:
                take = min(left, end - pos)
                out.append(data[pos : pos + take])
                pos += take
                left -= take
                if not left:
                    crlf = 2
                continue
            if crlf:
                take = min(crlf, end - pos)
                if data[pos : pos + take] != b"\r\n"[2 - crlf : 2 - crlf + take]:
                    raise RemoteProtocolError(f"malformed chunk footer: {data[pos : pos + take]!r}")
                pos += take
                crlf -= take
                continue
            newline = data.find(b"\r\n", pos)
            if newline < 0:
                pending = data[pos:]
                if len(pending) > _MAX_LINE:
                    raise RemoteProtocolError("chunk header too long")
                break
            header = _CHUNK_HEADER.fullmatch(data, pos, newline)
            if header is None:
                raise RemoteProtocolError(f"illegal chunk header: {data[pos : newline + 2]!r}")
            left = int(header[1], 16)
            pos = newline + 2
            if not left:
                if out:
                    yield out[0] if len(out) == 1 else b"".join(out)
                await _trailer(connection, data[pos:])
                return
        if out:
            yield out[0] if len(out) == 1 else b"".join(out)


async def _trailer(connection: Connection, data: bytes) -> None:
    """Read the trailer after the last chunk (usually just its CRLF), and end the body there."""
    while True:
        if data.startswith(b"\r\n"):
            end = 2
        else:
            found = data.find(b"\r\n\r\n")
            end = found + 4 if found >= 0 else -1
        if end >= 0:
            connection.unread(data[end:])
            connection.complete = True
            return
        if len(data) > _MAX_LINE:
            raise RemoteProtocolError("chunked trailer too long")
        more = await connection.receive()
        if not more:
            raise RemoteProtocolError(_CUT_CHUNKED)
        data += more
