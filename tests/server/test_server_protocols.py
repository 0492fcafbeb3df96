"""Each guarded protocol under a real server: deadlines, caps, disconnects, pipelining; which one serves."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
from fake_anthropic import FakeAnthropic
from fake_bodies import echo_events
from serverkit import CLIENT_KEY, PROTOCOLS, ServerThread, assert_cancelled_soon, user
from test_server_cli import _free_port, _serve, _stop, _wait_healthy
from test_server_exhaustion import DELTA, _echo_works, _request, _upstream_request

from chunkline.server.protocol import ConnectionGuards, GuardedH11Protocol, guard, protocol_class
from chunkline.server.settings import Settings


@pytest.fixture(scope="module", autouse=True)
def scripts(upstream: FakeAnthropic) -> None:
    async def flood(request: Any, out: Any) -> None:
        """An answer that never ends, as fast as it is read."""
        await out.start(200, "text/event-stream")
        for event in echo_events("x")[:2]:
            await out.data(event)
        while True:
            await out.data(DELTA)

    upstream.scripts["protocols-flood"] = flood


@pytest.fixture(params=PROTOCOLS)
def cls(request: pytest.FixtureRequest) -> type[ConnectionGuards]:
    protocol: type[ConnectionGuards] = request.param
    return protocol


@contextlib.contextmanager
def _server(upstream: FakeAnthropic, cls: type[ConnectionGuards], **settings: Any) -> Iterator[ServerThread]:
    server = ServerThread(Settings(upstream=upstream.url, **settings), protocol=cls).start()
    try:
        assert server.server.config.http is cls
        yield server
    finally:
        server.stop()


def _read_all(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything until the server closes the connection (a reset counts as a close)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _read_response(stream: Any) -> tuple[int, bytes]:
    """One response with a content-length from a socket's file: its status and body."""
    status = int(stream.readline().split()[1])
    length = 0
    while (line := stream.readline()) != b"\r\n":
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, stream.read(length)


def test_guard_picks_httptools_when_it_can_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("httptools")
    from chunkline.server.protocol_httptools import GuardedHttpToolsProtocol

    assert protocol_class() is GuardedHttpToolsProtocol
    monkeypatch.setitem(sys.modules, "httptools", None)  # what a missing package looks like to import
    assert protocol_class() is GuardedH11Protocol
    assert guard(uvicorn.Config("x:app"), Settings()).http is GuardedH11Protocol


def test_slow_heads_and_bodies_get_a_408(upstream: FakeAnthropic, cls: type[ConnectionGuards]) -> None:
    with _server(upstream, cls, header_timeout=0.5, body_timeout=0.5) as server:
        idle = socket.create_connection(("127.0.0.1", server.port))
        head = socket.create_connection(("127.0.0.1", server.port))
        head.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: slow\r\n")
        body = socket.create_connection(("127.0.0.1", server.port))
        body.sendall(_request("echo")[:-5])
        started = time.monotonic()
        for sock in (idle, head, body):
            with sock:
                assert _read_all(sock).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3
        _echo_works(server)


def test_more_connections_than_the_cap_get_a_503(
    upstream: FakeAnthropic, cls: type[ConnectionGuards]
) -> None:
    with _server(upstream, cls, max_connections=5) as server:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        try:
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", server.port)) as extra:
                answer = _read_all(extra)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"CHUNKLINE_MAX_CONNECTIONS" in answer
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert server.http.get("/healthz").status_code == 200


def test_a_client_that_reads_nothing_is_cut_off_and_its_upstream_cancelled(
    upstream: FakeAnthropic, cls: type[ConnectionGuards]
) -> None:
    marker = f"protocols write timeout {cls.__name__}"
    with _server(upstream, cls, write_timeout=1.0, upstream_max_connections=1) as server:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", server.port))
        with client:
            client.sendall(_request("script:protocols-flood", text=marker))
            assert client.recv(1024).startswith(b"HTTP/1.1 200")
            request = _upstream_request(upstream, marker)
            assert request.wait_ended(8), "the upstream request outlived the write timeout"
            assert request.outcome == "cancelled"
            _echo_works(server)  # the one upstream connection is free again
            _read_all(client)  # ends: the server let the connection go


def test_a_client_that_leaves_cancels_its_upstream_request(
    upstream: FakeAnthropic, cls: type[ConnectionGuards]
) -> None:
    marker = f"protocols client leaves {cls.__name__}"
    with _server(upstream, cls) as server:
        stream = server.client().chat.completions.create(model="stall:4", messages=user(marker), stream=True)
        with stream:
            next(iter(stream))
        assert_cancelled_soon(upstream.find(marker), time.monotonic())
        completion = server.client().chat.completions.create(model="echo", messages=user("after"))
        assert completion.choices[0].message.content == "after"


def test_pipelined_requests_are_answered_in_order(
    upstream: FakeAnthropic, cls: type[ConnectionGuards]
) -> None:
    with _server(upstream, cls) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        healthz = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n"
        sock.sendall(healthz + _request("echo", stream=False, text="second of three") + healthz)
        sock.settimeout(10)
        with sock.makefile("rb") as stream:
            answers = [_read_response(stream) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert json.loads(answers[1][1])["choices"][0]["message"]["content"] == "second of three"
    assert json.loads(answers[0][1]) == json.loads(answers[2][1])


def _endless_head_answer(port: int) -> bytes:
    """What the server answers a head that never ends (sent until the server answers)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: test\r\nx-big: ")
        for _ in range(256):  # 1 MiB at most
            if select.select([sock], [], [], 0.01)[0]:
                break
            sock.sendall(b"a" * 4096)
        return _read_all(sock)[:12]


@pytest.mark.parametrize("httptools", [True, False], ids=["with-httptools", "without-httptools"])
def test_chunkline_serve_runs_with_or_without_httptools(
    upstream: FakeAnthropic, tmp_path: Path, httptools: bool
) -> None:
    """Without httptools the server runs on h11, which answers an endless head with a 400; on
    httptools the server's own bound answers a 431."""
    environ = {"CHUNKLINE_UPSTREAM": upstream.url}
    if httptools:
        pytest.importorskip("httptools")
    else:
        hidden = tmp_path / "httptools"
        hidden.mkdir()
        (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        environ["PYTHONPATH"] = str(tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(["--port", str(port)], environ)
    try:
        _wait_healthy(url, process)
        with openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0) as client:
            marker = f"served, httptools {httptools}"
            with client.chat.completions.create(model="echo", messages=user(marker), stream=True) as stream:
                assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == marker
        assert _endless_head_answer(port) == (b"HTTP/1.1 431" if httptools else b"HTTP/1.1 400")
    finally:
        output = _stop(process)
    assert "Traceback" not in output, output
