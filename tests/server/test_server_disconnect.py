"""A client that goes away cancels its upstream request: the fake upstream sees the connection close."""

from __future__ import annotations

import logging
import socket
import time

import openai
import pytest
from fake_anthropic import FakeAnthropic
from serverkit import ServerThread, assert_cancelled_soon, leave_a_stream, user


@pytest.mark.asyncio
async def test_an_async_client_that_stops_reading_a_stream(
    proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    marker = "asynchronous client stops reading"
    async with proxy.async_client() as client:
        stream = await client.chat.completions.create(model="stall:4", messages=user(marker), stream=True)
        first = await stream.__anext__()
        assert first.choices[0].delta.role == "assistant"
        received = upstream.find(marker)
        assert received.outcome == "open"
        await stream.close()
        left_at = time.monotonic()
    assert_cancelled_soon(received, left_at)


def test_a_sync_client_that_leaves_mid_stream(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    marker = "sync reader leaves early"
    left_at = leave_a_stream(proxy, marker)
    assert_cancelled_soon(upstream.find(marker), left_at)


def test_a_client_that_leaves_a_busy_stream(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    """The upstream is still sending (a word every 2 ms, 400 words) when the client goes."""
    marker = " ".join(f"busy{i}" for i in range(400))
    with proxy.client().chat.completions.create(model="echo-slow", messages=user(marker), stream=True) as s:
        for _ in zip(range(3), s, strict=False):
            pass
    left_at = time.monotonic()
    assert_cancelled_soon(upstream.find(marker), left_at)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_client_that_gives_up_before_the_upstream_answers(
    proxy: ServerThread, upstream: FakeAnthropic, stream: bool
) -> None:
    marker = f"gives up waiting {stream}"
    with pytest.raises(openai.APITimeoutError):
        proxy.client().chat.completions.create(
            model="stall-headers", messages=user(marker), stream=stream, timeout=0.3
        )
    left_at = time.monotonic()
    assert_cancelled_soon(upstream.find(marker), left_at)


def test_a_non_streaming_client_that_gives_up_mid_answer(
    proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    marker = "whole answer never comes"
    with pytest.raises(openai.APITimeoutError):
        proxy.client().chat.completions.create(model="stall:4", messages=user(marker), timeout=0.3)
    left_at = time.monotonic()
    assert_cancelled_soon(upstream.find(marker), left_at)


def test_the_server_keeps_serving_after_clients_leave(proxy: ServerThread) -> None:
    completion = proxy.client().chat.completions.create(model="echo", messages=user("still here"))
    assert completion.choices[0].message.content == "still here"


def test_a_client_that_leaves_mid_request_is_no_server_error(
    proxy: ServerThread, upstream: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(upstream.requests)
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
            b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n" + b'{"model": "echo", "mess'
        )
        time.sleep(0.1)
    time.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert len(upstream.requests) == before
    after = proxy.client().chat.completions.create(model="echo", messages=user("after"))
    assert after.choices[0].message.content == "after"
