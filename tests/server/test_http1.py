"""The upstream client (chunkline.server.http1): bodies split anywhere, framing faults, reuse and limits."""

from __future__ import annotations

import asyncio

import pytest
from upstreamkit import HEAD, chunked, fake_upstream, new_pool, read_body

from chunkline.server import http1

CHUNKS = [b"event: a\ndata: {}\n\n", b"x" * 300, b"data: \xc3\xa9\n\n", b"!"]
# More than one network read holds.
LONG = [b"y" * 200_000, b"z" * 70_000, b"."]
BODY = b"".join(CHUNKS)


def _split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("chunks", "size"), [(CHUNKS, 1), (CHUNKS, 2), (CHUNKS, 7), (LONG, 4093), (LONG, 1 << 20)]
)
async def test_a_body_split_anywhere_reads_whole_and_the_connection_is_reused(
    chunks: list[bytes], size: int
) -> None:
    framed = HEAD + chunked(chunks, b";ext=1")
    async with fake_upstream(lambda n: _split_every(framed, size)) as upstream:
        pool = new_pool(upstream.url)
        for _ in range(3):
            assert await read_body(pool) == b"".join(chunks)
        assert pool.use() == (0, 1)
        await pool.aclose()
    assert upstream.accepted == 1  # each response ended cleanly, so its connection was used again


@pytest.mark.asyncio
@pytest.mark.parametrize("cut", range(1, 48))
async def test_the_first_read_may_end_anywhere_after_the_head(cut: int) -> None:
    """The first read brings the head and part of the body, cut anywhere (in a chunk header, in
    a chunk's data, in its CRLF); the next read the rest."""
    body = chunked(CHUNKS)
    async with fake_upstream(lambda n: [HEAD + body[:cut], body[cut:]]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == BODY
        assert await read_body(pool) == BODY
    assert upstream.accepted == 1


@pytest.mark.asyncio
async def test_the_request_goes_out_whole_under_the_base_path() -> None:
    async with fake_upstream(lambda n: [HEAD + chunked(CHUNKS)]) as upstream:
        pool = new_pool(upstream.url + "/api/v1/")
        assert await read_body(pool, "/chat/completions") == BODY
    head = upstream.heads[0].decode()
    assert head.startswith("POST /api/v1/chat/completions HTTP/1.1\r\n")
    assert f"host: {upstream.url.removeprefix('http://')}\r\n" in head
    assert "content-length: 2\r\n" in head


@pytest.mark.asyncio
async def test_a_trailer_after_the_last_chunk_is_read() -> None:
    framed = HEAD + chunked(CHUNKS)[:-2] + b"x-trailer: 1\r\n\r\n"
    async with fake_upstream(lambda n: [framed[:-5], framed[-5:]]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == BODY
        assert await read_body(pool) == BODY
    assert upstream.accepted == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("cut", [5, 25, 40, 300])
async def test_a_connection_closed_mid_body_is_httpxs_error(cut: int) -> None:
    body = chunked(CHUNKS)
    async with fake_upstream(lambda n: [HEAD, body[:20], body[20:cut], b""]) as upstream:
        with pytest.raises(http1.RemoteProtocolError, match=r"incomplete chunked read"):
            await read_body(new_pool(upstream.url))


@pytest.mark.asyncio
async def test_a_connection_closed_in_the_trailer_is_httpxs_error() -> None:
    body = chunked(CHUNKS)[:-2]  # the last chunk, but not the blank line that ends the trailer
    async with fake_upstream(lambda n: [HEAD, body, b""]) as upstream:
        with pytest.raises(http1.RemoteProtocolError, match=r"peer closed connection"):
            await read_body(new_pool(upstream.url))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bad",
    [b"zz\r\nab\r\n", b"2\r\nabXY", b"0x2\r\nab\r\n", b"+2\r\nab\r\n", b"2_0\r\n", b" \r\n", b"1" * 20_000],
)
async def test_a_malformed_chunk_is_a_protocol_error(bad: bytes) -> None:
    # The whole body follows, so only the bad piece can be the fault.
    async with fake_upstream(lambda n: [HEAD, b"1\r\na\r\n", bad, chunked([b"ok"])]) as upstream:
        with pytest.raises(http1.RemoteProtocolError, match="chunk"):
            await read_body(new_pool(upstream.url))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-a: " + b"a" * 70_000,
        b"HTTP/1.1 200 OK\r\nx-a: 1\r\n",
    ],
)
async def test_a_malformed_head_is_a_protocol_error(head: bytes) -> None:
    async with fake_upstream(lambda n: [head, b""]) as upstream:
        with pytest.raises(http1.RemoteProtocolError):
            await read_body(new_pool(upstream.url))


@pytest.mark.asyncio
async def test_interim_answers_are_skipped_and_repeated_headers_joined() -> None:
    head = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
        b"HTTP/1.1 429 Too Many Requests\r\nX-Thing: a\r\nx-thing:  b \r\ncontent-length: 2\r\n\r\nno"
    )
    async with fake_upstream(lambda n: [head]) as upstream:
        pool = new_pool(upstream.url)
        response = await pool.request("POST", "/", [], b"{}")
        assert (response.status_code, response.is_success) == (429, False)
        assert response.headers["x-thing"] == "a, b"
        assert "link" not in response.headers
        assert await response.aread(1000) == b"no"
        await response.aclose()
        assert pool.use() == (0, 1)


@pytest.mark.asyncio
async def test_a_body_with_a_length_is_read_and_the_connection_reused() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BODY)
    async with fake_upstream(lambda n: [head, BODY[:10], BODY[10:]]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == BODY
        assert await read_body(pool) == BODY
    assert upstream.accepted == 1


@pytest.mark.asyncio
async def test_a_body_shorter_than_its_length_is_a_protocol_error() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(BODY) + 1)
    async with fake_upstream(lambda n: [head, BODY, b""]) as upstream:
        with pytest.raises(http1.RemoteProtocolError, match=r"expected"):
            await read_body(new_pool(upstream.url))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",  # the body ends with the connection
        b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
    ],
)
async def test_a_connection_that_cannot_carry_another_request_is_closed(head: bytes) -> None:
    async with fake_upstream(lambda n: [head, b"1", b""]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == b"1"
        assert pool.use() == (0, 0)
        assert await read_body(pool) == b"1"
    assert upstream.accepted == 2


@pytest.mark.asyncio
async def test_bytes_after_the_response_make_the_connection_unfit() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n"
    async with fake_upstream(lambda n: [head + b"1junk"]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == b"1"
        assert pool.use() == (0, 0)


@pytest.mark.asyncio
async def test_a_response_let_go_of_early_closes_its_connection() -> None:
    async with fake_upstream(lambda n: [HEAD, b"1\r\na\r\n"]) as upstream:
        pool = new_pool(upstream.url)
        response = await pool.request("POST", "/", [], b"{}")
        reads = response.reads()
        assert await reads.__anext__() == b"a"
        await response.aclose()
        await response.aclose()  # a second call does nothing
        assert pool.use() == (0, 0)
        again = await pool.request("POST", "/", [], b"{}")  # on a new connection
        await again.aclose()
    assert upstream.accepted == 2


@pytest.mark.asyncio
async def test_an_idle_connection_the_upstream_closed_is_replaced_once() -> None:
    """The upstream closes each connection after its answer without saying so: the next request
    finds it closed before any byte of an answer came, and is sent again on a new one."""
    answer = HEAD + chunked(CHUNKS)
    async with fake_upstream(lambda n: [answer, b""]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == BODY
        await asyncio.sleep(0.05)
        assert await read_body(pool) == BODY
    assert upstream.accepted == 2


@pytest.mark.asyncio
async def test_a_request_the_upstream_closed_on_unanswered_is_sent_again_once() -> None:
    """The upstream takes the second request on a kept connection and closes it without a byte
    of answer (as a server does whose idle timeout struck as the request came): the request goes
    again on a new connection. On a new connection, the same is an error."""
    answer = HEAD + chunked(CHUNKS)
    async with fake_upstream(lambda n: [b""] if n in (2, 4) else [answer]) as upstream:
        pool = new_pool(upstream.url)
        assert await read_body(pool) == BODY
        assert await read_body(pool) == BODY
        assert [len(upstream.heads), upstream.accepted] == [3, 2]
        pool = new_pool(upstream.url)
        with pytest.raises(http1.RemoteProtocolError, match="without sending a response"):
            await read_body(pool)


@pytest.mark.asyncio
async def test_a_connection_idle_past_the_expiry_is_not_used() -> None:
    async with fake_upstream(lambda n: [HEAD + chunked(CHUNKS)]) as upstream:
        pool = new_pool(upstream.url, keepalive_expiry=0.05)
        assert await read_body(pool) == BODY
        await asyncio.sleep(0.1)
        assert await read_body(pool) == BODY
    assert upstream.accepted == 2


@pytest.mark.asyncio
async def test_requests_past_the_limit_wait_for_a_connection_then_time_out() -> None:
    answer = HEAD + chunked(CHUNKS)
    async with fake_upstream(lambda n: [answer]) as upstream:
        pool = new_pool(upstream.url, max_connections=1, connect_timeout=0.3)
        first = await pool.request("POST", "/", [], b"{}")
        waiting = asyncio.create_task(read_body(pool))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the one connection is busy
        assert b"".join([d async for d in first.reads()]) == BODY
        await first.aclose()
        assert await waiting == BODY  # handed the connection the first let go of
        held = await pool.request("POST", "/", [], b"{}")
        with pytest.raises(http1.PoolTimeout, match="stayed busy"):
            await read_body(pool)
        await held.aclose()
        assert pool.use() == (0, 0)
    assert upstream.accepted == 1


@pytest.mark.asyncio
async def test_an_unreachable_upstream_is_a_connect_error() -> None:
    async with fake_upstream(lambda n: []) as upstream:
        url = upstream.url
    with pytest.raises(http1.ConnectError):
        await read_body(new_pool(url))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "value"), [("x-a", "1\r\nx-b: 2"), ("x-a", "1\n"), ("x a", "1"), ("x-a", "\0")]
)
async def test_a_header_that_would_split_the_request_is_refused(name: str, value: str) -> None:
    async with fake_upstream(lambda n: [HEAD + chunked(CHUNKS)]) as upstream:
        with pytest.raises(ValueError, match="cannot be sent"):
            await new_pool(upstream.url).request("POST", "/", [(name, value)], b"{}")
    assert upstream.heads == []


@pytest.mark.parametrize(("name", "value"), [("x-a", "1\r\nx-b: 2"), ("x a", "1")])
def test_a_pool_header_that_would_split_requests_is_refused_at_once(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        http1.Pool("http://127.0.0.1:1", max_connections=1, connect_timeout=1, headers=[(name, value)])


@pytest.mark.asyncio
async def test_the_pool_s_headers_go_with_every_request_before_its_own() -> None:
    async with fake_upstream(lambda n: [b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n1"]) as upstream:
        pool = http1.Pool(
            upstream.url, max_connections=2, connect_timeout=5, headers=[("x-fixed", "f"), ("accept", "a")]
        )
        for own in ("1", "2"):
            response = await pool.request("POST", "/", [("x-own", own)], b"{}")
            await response.aread(10)
            await response.aclose()
    for own, head in zip(("1", "2"), upstream.heads, strict=True):
        lines = head.split(b"\r\n")
        assert lines[1:5] == [
            b"host: " + upstream.url.split("//")[1].encode(),
            b"x-fixed: f",
            b"accept: a",
            b"x-own: " + own.encode(),
        ]


@pytest.mark.asyncio
async def test_no_cookie_is_ever_sent_back() -> None:
    """The connections are shared by every client's requests: a cookie one answer set must not go
    out with the next."""
    head = b"HTTP/1.1 200 OK\r\nset-cookie: session=abc; Path=/\r\ncontent-length: 1\r\n\r\n1"
    async with fake_upstream(lambda n: [head]) as upstream:
        pool = new_pool(upstream.url)
        await read_body(pool)
        await read_body(pool)
    assert all(b"cookie" not in head.lower() for head in upstream.heads)
