"""The upstream client over TLS, and through the HTTP proxy the environment names (absolute-form, CONNECT)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trustme
from upstreamkit import read_body, tls_contexts

from chunkline.server import http1
from chunkline.server.http1_proxy import Proxy

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
ANSWER += b"5\r\nhello\r\n0\r\n\r\n"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@asynccontextmanager
async def _server(tls: ssl.SSLContext | None, heads: list[bytes]) -> AsyncIterator[int]:
    """An upstream (over TLS when ``tls`` is given) answering every request with ANSWER."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@asynccontextmanager
async def _proxy(upstream_port: int, heads: list[bytes], refuse: bool = False) -> AsyncIterator[int]:
    """An HTTP proxy: CONNECT opens a tunnel to the upstream (any host name: the test's upstream
    listens on 127.0.0.1); any other request is answered by the proxy itself with ANSWER."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        if head.startswith(b"CONNECT "):
            if refuse:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            return
        await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.asyncio
async def test_an_https_upstream_is_read_and_its_connection_kept(authority: trustme.CA) -> None:
    server_tls, client_tls = tls_contexts(authority, "127.0.0.1")
    heads: list[bytes] = []
    async with _server(server_tls, heads) as port:
        pool = http1.Pool(
            f"https://127.0.0.1:{port}", max_connections=4, connect_timeout=5, ssl_context=client_tls
        )
        assert [await read_body(pool), await read_body(pool)] == [b"hello", b"hello"]
        assert pool.use() == (0, 1)
        await pool.aclose()
    assert heads[0].startswith(b"POST /v1/messages HTTP/1.1\r\n")


@pytest.mark.asyncio
async def test_an_upstream_whose_certificate_is_not_trusted_is_a_connect_error(authority: trustme.CA) -> None:
    server_tls, _ = tls_contexts(authority, "127.0.0.1")
    async with _server(server_tls, []) as port:
        pool = http1.Pool(f"https://127.0.0.1:{port}", max_connections=4, connect_timeout=5)
        with pytest.raises(http1.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await read_body(pool)


@pytest.mark.asyncio
async def test_https_goes_through_the_proxys_tunnel_to_the_named_host(authority: trustme.CA) -> None:
    server_tls, client_tls = tls_contexts(authority, "api.example.test")
    upstream_heads: list[bytes] = []
    proxy_heads: list[bytes] = []
    async with _server(server_tls, upstream_heads) as port, _proxy(port, proxy_heads) as proxy_port:
        proxy = Proxy("127.0.0.1", proxy_port, "Basic dTpw")
        pool = http1.Pool(
            "https://api.example.test",
            max_connections=4,
            connect_timeout=5,
            ssl_context=client_tls,
            proxy=proxy,
        )
        assert [await read_body(pool), await read_body(pool)] == [b"hello", b"hello"]
    assert proxy_heads == [
        b"CONNECT api.example.test:443 HTTP/1.1\r\nhost: api.example.test:443\r\n"
        b"proxy-authorization: Basic dTpw\r\n\r\n"
    ]
    # The upstream itself sees an origin-form request and none of the proxy's credentials.
    assert upstream_heads[0].startswith(b"POST /v1/messages HTTP/1.1\r\nhost: api.example.test\r\n")
    assert all(b"proxy-authorization" not in head for head in upstream_heads)


@pytest.mark.asyncio
async def test_a_tunnel_the_proxy_refuses_is_a_connect_error(authority: trustme.CA) -> None:
    async with _proxy(1, [], refuse=True) as proxy_port:
        pool = http1.Pool(
            "https://api.example.test",
            max_connections=4,
            connect_timeout=5,
            proxy=Proxy("127.0.0.1", proxy_port),
        )
        with pytest.raises(http1.ConnectError, match=r"refused a tunnel to api\.example\.test:443: HTTP 407"):
            await read_body(pool)


@pytest.mark.asyncio
async def test_plain_http_goes_to_the_proxy_with_the_whole_url() -> None:
    heads: list[bytes] = []
    async with _proxy(1, heads) as proxy_port:
        pool = http1.Pool(
            "http://api.example.test:8080/base",
            max_connections=4,
            connect_timeout=5,
            proxy=Proxy("127.0.0.1", proxy_port, "Basic dTpw"),
        )
        assert await read_body(pool) == b"hello"
    assert heads[0].startswith(
        b"POST http://api.example.test:8080/base/v1/messages HTTP/1.1\r\nhost: api.example.test:8080\r\n"
        b"proxy-authorization: Basic dTpw\r\n"
    )


@pytest.mark.parametrize(
    ("environment", "url", "expected"),
    [
        ({}, "https://api.anthropic.com", None),
        (
            {"HTTPS_PROXY": "http://u%40x:p@proxy:3128"},
            "https://api.anthropic.com",
            Proxy("proxy", 3128, "Basic dUB4OnA="),
        ),
        ({"https_proxy": "proxy:3128"}, "https://api.anthropic.com", Proxy("proxy", 3128)),
        ({"HTTP_PROXY": "http://proxy"}, "https://api.anthropic.com", None),
        ({"HTTP_PROXY": "http://proxy"}, "http://vllm:8000/v1", Proxy("proxy", 80)),
        ({"ALL_PROXY": "http://proxy:1"}, "http://vllm:8000/v1", Proxy("proxy", 1)),
        ({"HTTPS_PROXY": "http://proxy:1", "NO_PROXY": "anthropic.com"}, "https://api.anthropic.com", None),
    ],
)
def test_the_proxy_is_the_one_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], url: str, expected: Proxy | None
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Proxy.for_url(url) == expected


def test_a_proxy_that_is_not_http_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy:1080")
    with pytest.raises(ValueError, match="not an http:// proxy"):
        Proxy.for_url("https://api.anthropic.com")
