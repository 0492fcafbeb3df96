"""What a request keeps while it waits and streams: its body as the bytes it sent, no upstream head."""

from __future__ import annotations

import gc
import json
import socket
import time
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fake_anthropic import FakeAnthropic
from fake_openai_chat import FakeOpenAIChat
from serverkit import CLIENT_KEY, ServerThread

from chunkline.server import http1
from chunkline.server.settings import Settings

SERVER_CODE = "/chunkline/server/"


def _post(port: int, path: str, payload: dict[str, Any]) -> socket.socket:
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {CLIENT_KEY}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(head + body)
    return client


def _server_coroutines() -> Iterator[types.CoroutineType[Any, Any, Any]]:
    for thing in gc.get_objects():
        if type(thing) is types.CoroutineType and SERVER_CODE in thing.cr_code.co_filename:
            yield thing


def _holds(value: Any, marker: str) -> bool:
    """Whether ``value`` is a parsed JSON container (dict or list) with ``marker`` in it."""
    return isinstance(value, dict | list) and marker in json.dumps(value, default=str)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "MARKER"}]}),
        ("/v1/responses", {"input": "MARKER"}),
    ],
)
def test_a_request_waiting_for_the_upstream_holds_no_parsed_conversation(
    proxy: ServerThread, upstream: FakeAnthropic, path: str, payload: dict[str, Any]
) -> None:
    """The client's conversation, parsed, is a Python object several times its JSON's size: once
    encoded for the upstream it is let go of, not held for the seconds a long prompt takes to
    answer (the upstream here stalls before its headers)."""
    marker = f"conversation-{uuid.uuid4().hex}-" + "x" * 10_000
    text = json.dumps(payload).replace("MARKER", marker)
    client = _post(proxy.port, path, {"model": "stall-headers", "stream": True, **json.loads(text)})
    try:
        deadline = time.monotonic() + 10
        while not any(marker in json.dumps(r.body) for r in list(upstream.requests)):
            assert time.monotonic() < deadline, "the request never reached the upstream"
            time.sleep(0.01)
        time.sleep(0.05)  # the server is waiting for the upstream's headers now
        waiting = [c for c in _server_coroutines() if c.cr_code.co_name == "_open_upstream"]
        exchanges = [c.cr_frame.f_locals["self"] for c in waiting if c.cr_frame is not None]
        assert exchanges, "no request is waiting for the upstream"
        for coroutine in _server_coroutines():
            if coroutine.cr_frame is None:
                continue
            for name, value in coroutine.cr_frame.f_locals.items():
                assert not _holds(value, marker), f"{coroutine.cr_code.co_name} holds {name}"
        for exchange in exchanges:
            held = {k: v for k, v in vars(exchange).items() if _holds(v, marker)}
            assert not held, f"the exchange holds {list(held)}"
            request = getattr(exchange, "_responses", None) or exchange._request
            assert request.body == {}
    finally:
        client.close()


def _read_until(client: socket.socket, marker: bytes) -> bytes:
    client.settimeout(10)
    data = b""
    while marker not in data:
        more = client.recv(65536)
        assert more, f"the connection closed before {marker!r}: {data[-300:]!r}"
        data += more
    return data


def _held_upstream_heads() -> list[dict[str, str]]:
    """The headers of every upstream response still reading its body."""
    gc.collect()
    return [
        thing.headers
        for thing in gc.get_objects()
        if type(thing) is http1.Response and thing.connection is not None
    ]


@pytest.mark.parametrize(
    ("path", "payload", "first"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, b'"content":'),
        ("/v1/responses", {"input": "hi"}, b"response.output_text.delta"),
    ],
)
def test_a_held_stream_keeps_none_of_the_upstream_head(
    proxy: ServerThread, path: str, payload: dict[str, Any], first: bytes
) -> None:
    """The upstream's headers go with the client's head (those it passes on) and are not kept for
    as long as the stream runs: the Anthropic API sends some twenty, a kilobyte and more."""
    client = _post(proxy.port, path, {"model": "stall:3", "stream": True, **payload})
    try:
        received = _read_until(client, first)
        assert b"request-id: req_fake_1" in received.partition(b"\r\n\r\n")[0].lower()
        heads = _held_upstream_heads()
        assert heads, "no upstream response is being read"
        assert all(head == {} for head in heads), heads
    finally:
        client.close()


def test_a_held_messages_stream_keeps_none_of_the_upstream_head(chat_upstream: FakeOpenAIChat) -> None:
    settings = Settings(upstream=f"{chat_upstream.url}/v1", upstream_format="openai-chat")
    server = ServerThread(settings).start()
    try:
        payload = {
            "model": "stall",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
        client = _post(server.port, "/v1/messages", payload)
        try:
            _read_until(client, b"event: content_block_delta")
            heads = _held_upstream_heads()
            assert heads, "no upstream response is being read"
            assert all(head == {} for head in heads), heads
        finally:
            client.close()
    finally:
        server.stop()
