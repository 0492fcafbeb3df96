"""The streaming write path: a read's events leave together at once; none waits for a later read."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson
from fake_anthropic import FakeAnthropic
from fake_bodies import echo_events
from serverkit import CLIENT_KEY, ServerThread

PACE = 0.15  # seconds between the upstream's writes
WORDS = [f"w{k}" for k in range(6)]


def _request(port: int, model: str) -> bytes:
    body = orjson.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"authorization: Bearer {CLIENT_KEY}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_slowly(port: int, model: str, *, pause: float, size: int) -> list[tuple[float, bytes]]:
    """Everything the server sends for one stream, as (arrival time, bytes) per recv of at most
    ``size`` bytes, with ``pause`` seconds between recvs: a client that reads slowly."""
    arrivals: list[tuple[float, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_request(port, model))
        while True:
            data = sock.recv(size)
            if not data:
                break
            arrivals.append((time.monotonic(), data))
            if b"\r\n0\r\n\r\n" in b"".join(d for _, d in arrivals[-3:]):
                break
            time.sleep(pause)
    return arrivals


def _first_seen(arrivals: list[tuple[float, bytes]], marker: bytes) -> float:
    """When the last byte of ``marker`` arrived (so the whole frame start holding it had)."""
    seen = b""
    for at, data in arrivals:
        seen += data
        if marker in seen:
            return at
    raise AssertionError(f"{marker!r} never arrived")


def test_each_event_reaches_a_slow_reader_before_the_upstream_sends_the_next(
    proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    """With the upstream writing one event every PACE seconds, each text delta is in the client's
    hands before the upstream writes the next event: the server writes what a read completes at
    once (as it wrote every event at once before it grouped them), never waiting for a later
    read to fill a batch. The client reads 64 bytes at a time, 10 ms apart."""
    frames = echo_events(" ".join(WORDS))
    sent: list[float] = []

    async def paced(request: Any, out: Any) -> None:
        await out.start(200, "text/event-stream")
        for frame in frames:
            sent.append(time.monotonic())
            await out.data(frame)
            await asyncio.sleep(PACE)
        await out.end()

    upstream.scripts["paced-writes"] = paced
    arrivals = _read_slowly(proxy.port, "script:paced-writes", pause=0.01, size=64)
    body = b"".join(d for _, d in arrivals)
    assert b"data: [DONE]" in body
    for k, word in enumerate(WORDS):
        index = 2 + k  # message_start and content_block_start come first
        arrived = _first_seen(arrivals, b'"content":"' + word.encode())
        assert sent[index] <= arrived < sent[index + 1], (word, arrived - sent[index])


def test_the_events_of_one_upstream_write_leave_in_one_piece(
    proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    """An upstream write that holds a whole answer reaches the client whole and in order: the
    grouped write loses and reorders nothing."""
    frames = echo_events(" ".join(WORDS))

    async def at_once(request: Any, out: Any) -> None:
        await out.start(200, "text/event-stream")
        await out.data(b"".join(frames))
        await out.end()

    upstream.scripts["one-write"] = at_once
    arrivals = _read_slowly(proxy.port, "script:one-write", pause=0.0, size=65536)
    body = b"".join(d for _, d in arrivals)
    positions = [body.index(b'"content":"' + w.encode()) for w in WORDS]
    assert positions == sorted(positions)
    assert body.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
