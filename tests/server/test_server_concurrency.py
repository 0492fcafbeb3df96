"""Streams at once through one server: each keeps its own content, and the upstream connection limit holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from fake_anthropic import FakeAnthropic
from serverkit import ServerThread, accumulate, user

import harness
from chunkline.server.settings import Settings

STREAMS = 200
# Every tenth stream replays a recording with tool calls or thinking instead of an echo.
RECORDINGS = ["otel_text_then_parallel_tool_use_args", "llm_thinking_then_tool_use", "vercel_tool_no_args"]


def _text(n: int) -> str:
    return " ".join(f"s{n}w{i}" for i in range(5 + n % 7))


@pytest.mark.asyncio
async def test_200_concurrent_streams_keep_their_own_content(
    proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    expected_recordings: dict[str, Any] = {}
    for name in RECORDINGS:
        with proxy.client().chat.completions.create(
            model=name, messages=user("alone"), stream=True
        ) as stream:
            expected_recordings[name] = accumulate(stream)

    async with proxy.async_client() as async_client:

        async def one(n: int) -> tuple[int, str, dict[str, Any]]:
            model = RECORDINGS[n // 10 % len(RECORDINGS)] if n % 10 == 9 else "echo-slow"
            stream = await async_client.chat.completions.create(
                model=model, messages=user(_text(n)), stream=True, stream_options={"include_usage": True}
            )
            chunks = [chunk async for chunk in stream]
            return n, model, accumulate(chunks)

        results = await asyncio.gather(*(one(n) for n in range(STREAMS)))

    assert len(results) == STREAMS
    for n, model, got in results:
        if model == "echo-slow":
            words = _text(n).split(" ")
            assert got["content"] == _text(n), f"stream {n} got someone else's content"
            assert got["finish"] == ["stop"]
            assert got["usage"]["completion_tokens"] == len(words)
            assert got["tool_calls"] == {}
        else:
            reference = dict(expected_recordings[model])
            assert {k: v for k, v in got.items() if k != "usage"} == {
                k: v for k, v in reference.items() if k != "usage"
            }, f"stream {n} ({model}) differs from the same recording alone"
            assert got["usage"] is not None
    calls = [got["tool_calls"] for _, model, got in results if model == RECORDINGS[0]]
    assert calls and all(json.loads(c[1]["arguments"]) for c in calls)
    assert (
        sum(1 for r in upstream.requests if r.body and r.body.get("model") == "echo-slow")
        >= STREAMS * 9 // 10
    )
    truth = harness.anthropic_truth(
        harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / f"{RECORDINGS[0]}.sse")
    )
    assert [c["id"] for c in calls[0].values()] == [t["id"] for t in truth.tool_calls]


@pytest.mark.asyncio
async def test_the_upstream_connection_limit_is_exact(upstream: FakeAnthropic) -> None:
    """CHUNKLINE_UPSTREAM_MAX_CONNECTIONS=17: of 20 streams held open at once 17 are answered and
    3 get "no free connection" 503s once the pool's wait (the connect timeout) runs out."""
    # The connect timeout is also the pool's wait: long enough that no TCP connect of the 17 runs
    # out under a loaded CI machine, short enough that the 3 waiting 503s come quickly.
    settings = Settings(upstream=upstream.url, upstream_max_connections=17, connect_timeout=1.0)
    server = ServerThread(settings).start()
    statuses: list[int] = []
    headers = {"Authorization": "Bearer k"}
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            contextlib.AsyncExitStack() as held,
        ):

            async def hold(n: int) -> None:
                # A 200 means the upstream answered, on a connection the stall keeps taken.
                payload = {"model": "stall:3", "stream": True, "messages": user(f"held {n}")}
                stream = http.stream("POST", "/v1/chat/completions", json=payload, headers=headers)
                statuses.append((await held.enter_async_context(stream)).status_code)

            await asyncio.gather(*(hold(n) for n in range(20)))
    finally:
        server.stop()
    assert sorted(statuses) == [200] * 17 + [503] * 3
