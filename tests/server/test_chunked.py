"""The upstream body read per network read (chunkline.server.chunked): split anywhere, faults, reuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from chunkline.server.chunked import _internals, body_reads

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
CHUNKS = [b"event: a\ndata: {}\n\n", b"x" * 300, b"data: \xc3\xa9\n\n", b"!"]
# More than one network read holds.
LONG = [b"y" * 200_000, b"z" * 70_000, b"."]
BODY = b"".join(CHUNKS)


def _framed(chunks: list[bytes], ext: bytes = b"") -> bytes:
    return b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks) + b"0\r\n\r\n"


@asynccontextmanager
async def _upstream(answer: Callable[[int], list[bytes]]) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that answers its n-th request (per connection: one more each) with the pieces
    ``answer(n)`` returns, each written and drained on its own; a piece b"" closes the
    connection. Yields its URL and the connections it accepted."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                for piece in answer(len(accepted)):
                    if not piece:
                        writer.close()
                        return
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.0005)  # so that each piece is a read of its own
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()


async def _read(client: httpx.AsyncClient, url: str) -> bytes:
    request = client.build_request("POST", url, content=b"{}")
    response = await client.send(request, stream=True)
    try:
        return b"".join([data async for data in body_reads(response)])
    finally:
        await response.aclose()


def _split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("chunks", "size"), [(CHUNKS, 1), (CHUNKS, 2), (CHUNKS, 7), (LONG, 4093), (LONG, 1 << 20)]
)
async def test_a_body_split_anywhere_reads_whole_and_the_connection_is_reused(
    chunks: list[bytes], size: int
) -> None:
    framed = HEAD + _framed(chunks, b";ext=1")
    async with (
        _upstream(lambda n: _split_every(framed, size)) as (url, accepted),
        httpx.AsyncClient() as client,
    ):
        for _ in range(3):
            assert await _read(client, url) == b"".join(chunks)
    assert len(accepted) == 1  # each response ended cleanly, so its connection was used again


@pytest.mark.asyncio
async def test_a_trailer_after_the_last_chunk_is_read() -> None:
    framed = HEAD + _framed(CHUNKS)[:-2] + b"x-trailer: 1\r\n\r\n"
    async with (
        _upstream(lambda n: [framed[:-5], framed[-5:]]) as (url, accepted),
        httpx.AsyncClient() as client,
    ):
        assert await _read(client, url) == BODY
        assert await _read(client, url) == BODY
    assert len(accepted) == 1


@pytest.mark.asyncio
async def test_a_connection_closed_mid_body_is_httpxs_error() -> None:
    framed = HEAD + _framed(CHUNKS)
    async with _upstream(lambda n: [framed[:300], b""]) as (url, _), httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete chunked read"):
            await _read(client, url)


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", [b"zz\r\nab\r\n", b"2\r\nabXY", b"0x2\r\nab\r\n"])
async def test_a_malformed_chunk_is_a_protocol_error(bad: bytes) -> None:
    async with (
        _upstream(lambda n: [HEAD, b"1\r\na\r\n", bad, b""]) as (url, _),
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await _read(client, url)


@pytest.mark.asyncio
async def test_a_body_with_a_length_is_read_through_httpx() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BODY)
    async with _upstream(lambda n: [head, BODY]) as (url, accepted), httpx.AsyncClient() as client:
        assert await _read(client, url) == BODY
        assert await _read(client, url) == BODY
    assert len(accepted) == 1


@pytest.mark.asyncio
async def test_a_body_in_one_read_after_the_headers() -> None:
    async with _upstream(lambda n: [HEAD, _framed(CHUNKS)]) as (url, accepted), httpx.AsyncClient() as client:
        assert await _read(client, url) == BODY
        assert await _read(client, url) == BODY
    assert len(accepted) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("cut", [5, 25, 40])
async def test_a_connection_closed_after_some_chunks_is_httpxs_error(cut: int) -> None:
    body = _framed(CHUNKS)
    async with (
        _upstream(lambda n: [HEAD, body[:20], body[20:cut], b""]) as (url, _),
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete chunked read"):
            await _read(client, url)


@pytest.mark.asyncio
async def test_an_endless_chunk_header_is_a_protocol_error() -> None:
    async with (
        _upstream(lambda n: [HEAD, b"1\r\na\r\n", b"1" * 20_000, b""]) as (url, _),
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await _read(client, url)


@pytest.mark.asyncio
@pytest.mark.parametrize("cut", range(1, 48))
async def test_h11_hands_over_wherever_the_first_read_ends(cut: int) -> None:
    """The first read brings the headers and part of the body, cut anywhere (in a header line,
    in a chunk's data, in its CRLF): h11 reads that part, this module the rest."""
    body = _framed(CHUNKS)
    async with (
        _upstream(lambda n: [HEAD + body[:cut], body[cut:]]) as (url, accepted),
        httpx.AsyncClient() as client,
    ):
        assert await _read(client, url) == BODY
        assert await _read(client, url) == BODY
    assert len(accepted) == 1


@pytest.mark.asyncio
async def test_a_connection_closed_in_the_trailer_is_httpxs_error() -> None:
    body = _framed(CHUNKS)[:-2]  # the last chunk, but not the blank line that ends the trailer
    async with _upstream(lambda n: [HEAD, body, b""]) as (url, _), httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError, match=r"peer closed connection"):
            await _read(client, url)


@pytest.mark.asyncio
async def test_the_installed_httpx_and_h11_take_the_one_pass_path() -> None:
    """If an httpx, httpcore or h11 release moves the state this module reads, the body is still
    read (through aiter_bytes), only slower: this says so."""
    async with (
        _upstream(lambda n: [HEAD, _framed(CHUNKS)]) as (url, _),
        httpx.AsyncClient() as client,
    ):
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        try:
            assert _internals(response) is not None
        finally:
            await response.aclose()
