"""Clients and upstreams that try to exhaust the server: each is cut off by a limit, within a bounded time."""

from __future__ import annotations

import gzip
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_anthropic import FakeAnthropic, Received
from fake_bodies import echo_events, sse_event
from serverkit import CLIENT_KEY, ServerThread, user
from test_server_cli import _serve, _stop, _wait_healthy

from chunkline.server.settings import Settings, SettingsError

DELTA = sse_event(
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "y" * 16384}}
)


@pytest.fixture(scope="module", autouse=True)
def scripts(upstream: FakeAnthropic) -> None:
    async def flood(request: Any, out: Any) -> None:
        """An answer that never ends, as fast as it is read."""
        await out.start(200, "text/event-stream")
        for event in echo_events("x")[:2]:
            await out.data(event)
        while True:
            await out.data(DELTA)

    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 KiB on the wire

    async def gzip_bomb(request: Any, out: Any) -> None:
        status = int(request.body["messages"][-1]["content"][0]["text"])
        kind = "text/event-stream" if status == 200 else "application/json"
        await out.start(status, kind, {"content-encoding": "gzip"})
        await out.data(bomb)
        await out.end()

    async def big_answer(request: Any, out: Any) -> None:
        await out.start(200, "text/event-stream")
        events = echo_events("x")
        for event in events[:2]:
            await out.data(event)
        for _ in range(64):  # 1 MiB of text
            await out.data(DELTA)
        for event in events[3:]:
            await out.data(event)
        await out.end()

    upstream.scripts.update({"flood": flood, "gzip-bomb": gzip_bomb, "big-answer": big_answer})


def _server(upstream: FakeAnthropic, **settings: Any) -> Iterator[ServerThread]:
    server = ServerThread(Settings(upstream=upstream.url, **settings)).start()
    try:
        yield server
    finally:
        server.stop()


def _request(model: str, *, stream: bool = True, text: str = "hi") -> bytes:
    body = json.dumps({"model": model, "messages": user(text), "stream": stream}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {CLIENT_KEY}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _stalled_client(server: ServerThread, marker: str) -> socket.socket:
    """A client that sends a streaming request, reads the start of the answer, then reads nothing."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", server.port))
    client.sendall(_request("script:flood", text=marker))
    assert client.recv(1024).startswith(b"HTTP/1.1 200")
    return client


def _upstream_request(upstream: FakeAnthropic, marker: str) -> Received:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [r for r in list(upstream.requests) if marker in json.dumps(r.body)]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError("the request never reached the upstream")


def _echo_works(server: ServerThread) -> None:
    answer = server.post_chat({"model": "echo", "messages": user("after")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "after"


def test_the_stream_time_limit_holds_when_the_client_stops_reading(upstream: FakeAnthropic) -> None:
    for server in _server(upstream, stream_timeout=1.0, write_timeout=60.0, upstream_max_connections=1):
        client = _stalled_client(server, "time limit, stalled")
        started = time.monotonic()
        try:
            request = _upstream_request(upstream, "time limit, stalled")
            # The limit (1 s) and the grace for an in-band error (1 s); never the client's pace.
            assert request.wait_ended(6), "the upstream request outlived the stream time limit"
            assert request.outcome == "cancelled"
            assert time.monotonic() - started < 4
            _echo_works(server)  # the one upstream connection is free again
        finally:
            client.close()


def test_a_client_that_reads_nothing_is_cut_off_by_the_write_timeout(upstream: FakeAnthropic) -> None:
    for server in _server(upstream, write_timeout=1.0, upstream_max_connections=1):
        client = _stalled_client(server, "write timeout")
        try:
            request = _upstream_request(upstream, "write timeout")
            assert request.wait_ended(8), "the upstream request outlived the write timeout"
            assert request.outcome == "cancelled"
            _echo_works(server)
            # The server dropped the connection: after what was buffered, the client reads its end.
            # (A timeout here would mean the connection is still held.)
            client.settimeout(5)
            try:
                while client.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass  # aborted: the kernel answers with a reset
        finally:
            client.close()


def test_more_connections_than_the_cap_get_a_503_and_are_closed(upstream: FakeAnthropic) -> None:
    for server in _server(upstream, max_connections=20):
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        try:
            time.sleep(0.2)
            extra = socket.create_connection(("127.0.0.1", server.port))
            extra.settimeout(5)
            answer = b""
            while chunk := extra.recv(4096):
                answer += chunk
            extra.close()
            assert answer.startswith(b"HTTP/1.1 503") and b"CHUNKLINE_MAX_CONNECTIONS" in answer
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert server.http.get("/healthz").status_code == 200


@pytest.mark.parametrize("status", [200, 429])
def test_a_compressed_upstream_body_is_refused_not_inflated(upstream: FakeAnthropic, status: int) -> None:
    for server in _server(upstream):
        for stream in (True, False):
            response = server.http.post(
                "/v1/chat/completions",
                json={"model": "script:gzip-bomb", "messages": user(str(status)), "stream": stream},
                headers={"authorization": f"Bearer {CLIENT_KEY}"},
            )
            if status == 200:
                assert response.status_code == 502
                assert "compressed ('gzip')" in response.json()["error"]["message"]
            else:
                assert response.status_code == 429
                assert "answered HTTP 429 with no body" in response.json()["error"]["message"]


def test_a_non_streaming_answer_past_the_cap_is_a_502_naming_it(upstream: FakeAnthropic) -> None:
    for server in _server(upstream, max_response_bytes=256 * 1024):
        whole = server.post_chat({"model": "script:big-answer", "messages": user("hi")})
        assert whole.status_code == 502
        error = whole.json()["error"]
        assert error["type"] == "limit_exceeded"
        assert "CHUNKLINE_MAX_RESPONSE_BYTES" in error["message"] and "262144" in error["message"]
        streamed = server.post_chat({"model": "script:big-answer", "messages": user("hi"), "stream": True})
        assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
        assert len(streamed.content) > 1024 * 1024
        # The Responses route assembles its whole answers under the same cap.
        response = server.http.post(
            "/v1/responses",
            json={"model": "script:big-answer", "input": "hi"},
            headers={"authorization": f"Bearer {CLIENT_KEY}"},
        )
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "limit_exceeded"
        assert "CHUNKLINE_MAX_RESPONSE_BYTES" in response.json()["error"]["message"]


# -- a real `chunkline serve` process: connections that never finish a request, bodies that stall it --


def _fds(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


def test_connections_that_never_finish_a_request_are_let_go_at_the_deadline(upstream: FakeAnthropic) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {
        "CHUNKLINE_UPSTREAM": upstream.url,
        "CHUNKLINE_HEADER_TIMEOUT": "1",
        "CHUNKLINE_BODY_TIMEOUT": "1",
        "CHUNKLINE_ACCESS_LOG": "false",
    }
    process = _serve(["--port", str(port), "--log-level", "warning"], environ)
    sockets: list[socket.socket] = []
    try:
        _wait_healthy(url, process)
        base = _fds(process.pid)
        body_head = _request("echo")[:-5]  # the headers and all but the last 5 bytes of the body
        for n in range(450):
            sock = socket.create_connection(("127.0.0.1", port))
            if n % 3 == 1:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: slow\r\n")  # never ends
            elif n % 3 == 2:
                sock.sendall(body_head)  # a body that never ends
            sockets.append(sock)
        opened = time.monotonic()
        time.sleep(0.3)
        assert _fds(process.pid) >= base + 400, "the connections were not accepted"
        # /healthz on a fresh connection is served meanwhile.
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        deadline = opened + 6
        while _fds(process.pid) > base + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        held = _fds(process.pid) - base
        print(f"450 connections: {held} held {time.monotonic() - opened:.1f} s after opening")
        assert held <= 5, f"{held} connections still held {time.monotonic() - opened:.1f} s after opening"
        answers = set()
        for sock in sockets[:30]:
            sock.settimeout(2)
            try:
                answers.add(sock.recv(64)[:12])
            except (ConnectionResetError, TimeoutError):
                answers.add(b"reset")
        assert b"HTTP/1.1 408" in answers
    finally:
        for sock in sockets:
            sock.close()
        _stop(process)


def test_a_body_of_tiny_values_neither_blows_up_nor_stalls_the_server(upstream: FakeAnthropic) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {"CHUNKLINE_UPSTREAM": upstream.url, "CHUNKLINE_ACCESS_LOG": "false"}
    process = _serve(["--port", str(port), "--log-level", "warning"], environ)
    attack = b"[" + b"[]," * (5 * 1024 * 1024) + b"[]]"  # 15 MiB: under the default body limit
    stop = threading.Event()
    statuses: list[int] = []

    def attacker() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                response = http.post(
                    "/v1/chat/completions", content=attack, headers={"authorization": "Bearer x"}
                )
                statuses.append(response.status_code)
                if response.status_code == 413:
                    assert "CHUNKLINE_MAX_REQUEST_VALUES" in response.text

    try:
        _wait_healthy(url, process)
        threads = [threading.Thread(target=attacker, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        latencies = []
        with httpx.Client(base_url=url, timeout=30) as http:
            time.sleep(0.3)
            for _ in range(20):
                started = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(30)
        print(f"/healthz during the attack: p50 {statistics.median(latencies) * 1000:.0f} ms")
        assert statuses and set(statuses) == {413}
        assert statistics.median(latencies) < 0.2, latencies
    finally:
        stop.set()
        _stop(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_quiet_upstream_past_the_stream_limit_is_a_504_for_a_whole_answer(upstream: FakeAnthropic) -> None:
    # The upstream sends three events, then nothing (within the idle timeout): the hard limit
    # (the stream limit and its one-second grace) answers for it.
    for server in _server(upstream, stream_timeout=1.0, idle_timeout=30.0):
        started = time.monotonic()
        whole = server.post_chat({"model": "stall:3", "messages": user("quiet upstream")})
        assert time.monotonic() - started < 5
        assert whole.status_code == 504
        assert "CHUNKLINE_STREAM_TIMEOUT" in whole.json()["error"]["message"]
        assert upstream.find("quiet upstream").wait_ended(2)


@pytest.mark.parametrize("name", ["header_timeout", "body_timeout"])
def test_read_deadlines_are_at_most_15_seconds(name: str) -> None:
    with pytest.raises(SettingsError, match="at most 15 seconds"):
        Settings(**{name: 16.0})
    assert getattr(Settings(**{name: 15.0}), name) == 15.0
