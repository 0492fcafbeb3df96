"""An upstream's chunked body read once per network read, not once per chunk: the hot path's reads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import h11
import httpx

__all__ = ["body_reads"]

# httpcore's own read size.
_READ_BYTES = 64 * 1024
# The longest chunk header line waited for (h11's limit for an incomplete event).
_MAX_LINE = 16 * 1024
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:[ \t]*;[^\r\n]*)?[ \t]*")
_CUT = "peer closed connection without sending complete message body (incomplete chunked read)"


def body_reads(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body of a streaming ``response``, each item what one network read brought.

    httpx hands a chunked body over one chunk at a time, each through h11's state machine and six
    async generators: about a third of the server's CPU in `make bench-server`, where the
    upstream sends one chunk per event. Here the bytes httpcore's connection receives are
    unframed in one pass, and h11 is handed the body's last chunk, so it ends the response as it
    would have, and the connection goes back to the pool. Any other response (not HTTP/1.1
    chunked through httpcore's connection as known here) is read through ``aiter_bytes``.
    Errors are httpx's, in its words. Does not close ``response``.
    """
    parts = _internals(response)
    if parts is None:
        return response.aiter_bytes()
    return _reads(*parts)


def _internals(response: httpx.Response) -> tuple[h11.Connection, Any] | None:
    """The h11 connection and the anyio byte stream under ``response``, if they are as known
    here and h11 is reading a chunked body; else None."""
    try:
        outer: Any = response.stream
        connection = outer._stream._httpcore_stream._stream._connection
        state = connection._h11_state
        stream = connection._network_stream._stream
        reader = state._reader
    except AttributeError:
        return None
    if not isinstance(state, h11.Connection) or state.their_state is not h11.SEND_BODY:
        return None
    if type(reader).__name__ != "ChunkedReader" or not hasattr(reader, "_bytes_in_chunk"):
        return None
    if reader._reading_trailer or not hasattr(state, "_receive_buffer"):
        return None
    if not isinstance(stream, anyio.abc.ByteReceiveStream):
        return None
    return state, stream


async def _receive(stream: Any) -> bytes:
    try:
        data: bytes = await stream.receive(_READ_BYTES)
    except anyio.EndOfStream:
        return b""
    except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise httpx.ReadError(str(exc)) from exc
    return data


async def _reads(state: h11.Connection, stream: Any) -> AsyncIterator[bytes]:
    """The chunks' data, read by read, until the last chunk, which (with whatever follows it)
    goes to h11 to end the response. What h11 holds already (often the whole body, read with
    the headers) is taken from its buffer, and its reader left at a chunk's start, as it must be
    when it reads the last chunk."""
    reader: Any = state._reader
    left = reader._bytes_in_chunk  # bytes of the current chunk still to come
    crlf = len(reader._bytes_to_discard)  # bytes of the CRLF after it still to come
    reader._bytes_in_chunk, reader._bytes_to_discard = 0, b""
    data = bytes(state._receive_buffer)
    state._receive_buffer = type(state._receive_buffer)()
    pending = b""  # an incomplete chunk header
    while True:
        if not data:
            data = await _receive(stream)
            if not data:
                raise httpx.RemoteProtocolError(_CUT)
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
                    raise httpx.RemoteProtocolError(f"malformed chunk footer: {data[pos : pos + take]!r}")
                pos += take
                crlf -= take
                continue
            newline = data.find(b"\r\n", pos)
            if newline < 0:
                pending = data[pos:]
                if len(pending) > _MAX_LINE:
                    raise httpx.RemoteProtocolError("chunk header too long")
                break
            header = _CHUNK_HEADER.fullmatch(data, pos, newline)
            if header is None:
                raise httpx.RemoteProtocolError(f"illegal chunk header: {data[pos : newline + 2]!r}")
            left = int(header[1], 16)
            if not left:
                if out:
                    yield b"".join(out)
                await _finish(state, stream, data[pos:])
                return
            pos = newline + 2
        if out:
            yield out[0] if len(out) == 1 else b"".join(out)
        data = b""


async def _finish(state: h11.Connection, stream: Any, tail: bytes) -> None:
    """Hand h11 the last chunk (and its trailer), so that it ends the response."""
    state.receive_data(tail)
    while True:
        try:
            event = state.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from None
        if isinstance(event, h11.EndOfMessage):
            return
        if event is h11.NEED_DATA:
            state.receive_data(await _receive(stream))
        elif not isinstance(event, h11.Data):
            raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} at the body's end")
