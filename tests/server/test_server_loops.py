"""The server on each event loop it runs on: asyncio's, and uvloop (which the server extra installs).

The other server tests run on the loop `chunkline serve` would choose (uvloop where it is
installed); these run the main paths on both, so neither loop is left untested."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anthropic
import pytest
import trustme
from fake_anthropic import FakeAnthropic
from fake_openai_chat import FakeOpenAIChat
from serverkit import CLIENT_KEY, LOOPS, ServerThread, assert_cancelled_soon, leave_a_stream, sse_events, user
from upstreamkit import HEAD, chunked, fake_upstream, new_pool, tls_contexts

import harness
import responses_judge as judge
from chat_route import load_chat_sse, message_reading, openai_reading, single_choice_paths
from chunkline.server import http1
from chunkline.server.settings import Settings


def _loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


async def _within(seconds: float, coroutine: Coroutine[Any, Any, None]) -> None:
    async with asyncio.timeout(seconds):
        await coroutine


def _run(loop: str, coroutine: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        runner.run(_within(20, coroutine))


@pytest.fixture(scope="module", params=LOOPS)
def loop_proxy(request: pytest.FixtureRequest, upstream: FakeAnthropic) -> Iterator[ServerThread]:
    server = ServerThread(Settings(upstream=upstream.url), loop=request.param).start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=LOOPS)
def loop_front(request: pytest.FixtureRequest, chat_upstream: FakeOpenAIChat) -> Iterator[ServerThread]:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1", upstream_format="openai-chat", model_map={"claude-*": "echo"}
    )
    server = ServerThread(settings, loop=request.param).start()
    yield server
    server.stop()


def test_each_server_runs_on_the_loop_it_was_given(
    loop_proxy: ServerThread, loop_front: ServerThread
) -> None:
    for server in (loop_proxy, loop_front):
        module = server.loop_module
        asked = server.server.config.loop
        assert (module == "uvloop") if asked == "uvloop" else module.startswith("asyncio"), module


@pytest.mark.parametrize("recording", harness.well_formed_paths(), ids=lambda p: p.stem)
def test_chat_streams_are_the_pipelines_bytes(loop_proxy: ServerThread, recording: Any) -> None:
    payload = {
        "model": f"{recording.stem}@61",  # 61-byte upstream writes: events split across reads
        "messages": user("hi"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = loop_proxy.post_chat(payload)
    assert response.status_code == 200
    expected = harness.convert(
        harness.load_complete_sse(recording), include_usage=True, reasoning_details=True
    )
    assert sse_events(response.content) == sse_events(expected)


def test_a_responses_stream_reads_back_strictly(loop_proxy: ServerThread) -> None:
    stem = "llm_thinking_then_tool_use"
    client = loop_proxy.client(_strict_response_validation=True)
    events = list(client.responses.create(model=stem, input="hi", stream=True))
    with client.responses.stream(model=stem, input="hi") as stream:
        final = stream.get_final_response()
    judge.assert_same(judge.Reading(events, final, "response.completed"), harness.final_message_of(stem))


@pytest.mark.parametrize("path", single_choice_paths(), ids=lambda p: p.stem)
def test_messages_streams_read_as_the_upstreams_answer(loop_front: ServerThread, path: Any) -> None:
    sdk = anthropic.Anthropic(
        api_key=CLIENT_KEY, base_url=loop_front.url, max_retries=0, _strict_response_validation=True
    )
    hello = [{"role": "user", "content": "hello there"}]
    with sdk.messages.stream(model=f"{path.stem}@97", max_tokens=100, messages=hello) as stream:
        message = stream.get_final_message()
    assert message_reading(message) == openai_reading(load_chat_sse(path))


def test_a_client_that_leaves_cancels_the_upstream_request(
    loop_proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    marker = f"leaves on {loop_proxy.server.config.loop}"
    left_at = leave_a_stream(loop_proxy, marker)
    assert_cancelled_soon(upstream.find(marker), left_at)


# Past the connection's high-water mark (256 KiB), so a slow reader pauses and resumes reading.
_LONG = [b"a" * 100_000, b"b" * 200_000, b"c" * 10, b"d" * 70_000]


async def _three_reads_on_one_connection(
    server_tls: ssl.SSLContext | None, client_tls: ssl.SSLContext | None
) -> None:
    answer = HEAD + chunked(_LONG)
    async with fake_upstream(lambda n: [answer], server_tls) as upstream:
        pool = new_pool(upstream.url, client_tls)
        try:
            for _ in range(3):
                response = await pool.request("POST", "/v1/messages", [], b"{}")
                assert response.status_code == 200
                reads = []
                async for data in response.reads():
                    reads.append(data)
                    await asyncio.sleep(0.001)  # a slow reader: the upstream's bytes pile up
                await response.aclose()
                assert b"".join(reads) == b"".join(_LONG)
            assert pool.use() == (0, 1)  # one connection, used three times
        finally:
            await pool.aclose()
    assert upstream.accepted == 1


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("over", ["tcp", "tls"])
def test_the_upstream_client_reads_and_reuses_a_connection(loop: str, over: str) -> None:
    """uvloop's transports are not asyncio.Transport subclasses (the client once refused them,
    and every request through the server failed): the client takes either loop's alike."""
    server_tls, client_tls = tls_contexts(trustme.CA(), "127.0.0.1") if over == "tls" else (None, None)
    _run(loop, _three_reads_on_one_connection(server_tls, client_tls))


async def _refused(port: int) -> None:
    pool = new_pool(f"http://127.0.0.1:{port}", max_connections=1)
    with pytest.raises(http1.ConnectError):
        await pool.request("GET", "/", [])
    assert pool.use() == (0, 0)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_refused_connection_is_a_connect_error(loop: str) -> None:
    with socket.socket() as bound:  # bound, not listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        _run(loop, _refused(bound.getsockname()[1]))
