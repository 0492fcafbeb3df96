"""An upstream response's body unframed in one pass per network read: chunked, by length, or to the close."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Final

from .http1_connection import Connection
from .http1_errors import RemoteProtocolError

__all__ = ["body_reads"]

# The longest chunk header (or trailer) waited for: h11's limit for an incomplete line.
_MAX_LINE: Final = 16 * 1024
_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?[ \t]*")
# httpx's words for a body cut off, which clients and logs already know.
_CUT_CHUNKED: Final = "peer closed connection without sending complete message body (incomplete chunked read)"


def body_reads(connection: Connection, framing: int | None) -> AsyncGenerator[bytes, None]:
    """The body after the head: ``framing`` is its length, -1 for chunked, None for a body that
    ends with the connection. Each item is what one receive brought, its framing removed (never
    empty). ``connection.complete`` is set once the body has ended."""
    if framing == -1:
        return _chunked(connection)
    if framing is None:
        return _to_close(connection)
    return _by_length(connection, framing)


async def _by_length(connection: Connection, length: int) -> AsyncGenerator[bytes, None]:
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


async def _to_close(connection: Connection) -> AsyncGenerator[bytes, None]:
    while True:
        data = await connection.receive()
        if not data:
            connection.complete = True
            return
        yield data


async def _chunked(connection: Connection) -> AsyncGenerator[bytes, None]:
    """Chunk after chunk, all those one read completes (or part of one) handed over together;
    an SSE upstream sends a chunk per event, so this is the hot path's inner loop."""
    left = 0  # bytes of the current chunk still to come
    crlf = 0  # bytes of the CRLF after it still to come
    pending = b""  # an incomplete chunk header
    while True:
        waiter = connection.arrival()
        while waiter is not None:
            await waiter
            waiter = connection.arrival()
        data = connection.take()
        if not data:
            raise RemoteProtocolError(_CUT_CHUNKED)
        if pending:
            data, pending = pending + data, b""
        out = []
        pos, end = 0, len(data)
        while pos < end:
            if left:
                take = left if left < end - pos else end - pos
                out.append(data[pos : pos + take])
                pos += take
                left -= take
                if not left:
                    crlf = 2
                continue
            if crlf:
                take = crlf if crlf < end - pos else end - pos
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
            left = _chunk_size(data, pos, newline)
            pos = newline + 2
            if not left:
                if out:
                    yield out[0] if len(out) == 1 else b"".join(out)
                await _trailer(connection, data[pos:])
                return
            stop = pos + left
            if stop + 2 <= end:  # the whole chunk is here (the usual case): taken at once
                if data[stop : stop + 2] != b"\r\n":
                    raise RemoteProtocolError(f"malformed chunk footer: {data[stop : stop + 2]!r}")
                out.append(data[pos:stop])
                pos, left = stop + 2, 0
        # Neither the read nor its pieces are kept while the reader holds the chunk or the next
        # read is awaited: a read may be hundreds of kilobytes, and held streams add up.
        del data
        if out:
            chunk = out[0] if len(out) == 1 else b"".join(out)
            del out
            yield chunk
            del chunk


def _chunk_size(data: bytes, start: int, end: int) -> int:
    """The size a chunk header line gives (hex digits, maybe an extension after ``;``)."""
    line = data[start:end]
    if 0 < len(line) <= 16 and not line.strip(_HEX_DIGITS):  # the usual header: no regex
        return int(line, 16)
    header = _CHUNK_HEADER.fullmatch(line)
    if header is not None:
        return int(header[1], 16)
    raise RemoteProtocolError(f"illegal chunk header: {data[start : end + 2]!r}")


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
