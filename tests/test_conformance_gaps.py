"""Conformance rules the rest of the suite covered only in passing (R5, R20, R31, R39, R49, R50)."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

import chunkline
import harness
from faults import DONE, PING_OUT, assert_client_error, error_body, events, split_output
from minimal_streams import text_sse
from strategies import CREATED, block_events, message_delta, message_start, read_openai_stream

STOP = {"type": "message_stop"}
CONSUMERS = sorted(harness.CONSUMERS)


@functools.cache
def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options)


def text_block(index: int, *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    return block_events(index, {"type": "text", "text": ""}, list(deltas))


def text(fragment: str) -> dict[str, Any]:
    return {"type": "text_delta", "text": fragment}


def arguments(fragment: str) -> dict[str, Any]:
    return {"type": "input_json_delta", "partial_json": fragment}


# -- R31: citations, pings, unknown events, blocks and deltas change nothing a client sees ----------

TOOL = {"type": "tool_use", "id": "toolu_01R31", "name": "get_weather", "input": {}}
CITATION = {
    "type": "citations_delta",
    "citation": {
        "type": "web_search_result_location",
        "cited_text": "CITED-TEXT-must-not-leak",
        "url": "https://example.com/weather",
        "title": "Weather",
        "encrypted_index": "ENCRYPTED-INDEX",
    },
}
PLAIN = [
    message_start(),
    *text_block(0, text("The answer"), text(" is 4.")),
    *block_events(2, TOOL, [arguments('{"city":'), arguments(' "Paris"}')]),
    message_delta("tool_use"),
    STOP,
]
PING = {"type": "ping"}
NOISY = [
    PING,
    message_start(),
    PING,
    {"type": "message_annotation", "note": "UNKNOWN-EVENT-must-not-leak"},
    *text_block(
        0,
        text("The answer"),
        CITATION,
        {"type": "sparkle_delta", "sparkle": "UNKNOWN-DELTA-must-not-leak"},
        text(" is 4."),
        CITATION,
    ),
    PING,
    *block_events(
        1,
        {"type": "hologram", "payload": "UNKNOWN-BLOCK-must-not-leak"},
        [{"type": "hologram_delta", "beam": "UNKNOWN-BLOCK-DELTA-must-not-leak"}, text("must-not-leak")],
    ),
    *(tool := block_events(2, TOOL, [arguments('{"city":'), arguments(' "Paris"}')]))[:2],
    PING,
    *tool[2:],
    PING,
    message_delta("tool_use"),
    PING,
    STOP,
]
NOISY_PINGS = sum(event == PING for event in NOISY)


def test_citations_pings_and_unknown_types_change_nothing_a_client_sees() -> None:
    plain = pipeline().convert(events(*PLAIN))
    noisy = pipeline().convert(events(*NOISY))
    # Every ping is a comment where it arrived; without them the bytes are the plain stream's.
    assert noisy.count(PING_OUT) == NOISY_PINGS == 6
    assert [item for item in noisy if item != PING_OUT] == plain
    assert pipeline(ping="drop").convert(events(*NOISY)) == plain
    wire = b"".join(noisy)
    assert b"must-not-leak" not in wire and b"ENCRYPTED-INDEX" not in wire
    for consumer in CONSUMERS:
        got = harness.CONSUMERS[consumer](wire)
        assert (got.content, got.finish_reason, got.refusal) == ("The answer is 4.", "tool_calls", None)
        assert [(c.id, c.type, c.name, c.arguments) for c in got.tool_calls] == [
            ("toolu_01R31", "function", "get_weather", '{"city": "Paris"}')
        ], consumer


# -- R20: no service_tier (Anthropic's values are not OpenAI's), system_fingerprint or obfuscation ---


@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "usage"])
@pytest.mark.parametrize("tier", ["standard", "priority", "batch"])
def test_no_service_tier_system_fingerprint_or_obfuscation(tier: str, include_usage: bool) -> None:
    usage = {"input_tokens": 9, "output_tokens": 1, "service_tier": tier}
    data = events(
        message_start(usage=usage),
        *text_block(0, text("Hi")),
        message_delta("end_turn", {"output_tokens": 3, "service_tier": tier}),
        STOP,
    )
    output = b"".join(pipeline(include_usage=include_usage).convert(data))
    assert f'"{tier}"'.encode() not in output
    payloads = [p for p in harness.data_payloads(output) if p != "[DONE]"]
    assert payloads
    for payload in payloads:
        for key in ("service_tier", "system_fingerprint", "obfuscation"):
            assert key not in payload and key not in (payload.get("usage") or {}), (key, payload)
    chunks = list(harness.iter_openai_chunks(output, include_usage=include_usage))
    assert len(chunks) == len(payloads)
    assert all(c.service_tier is None and c.system_fingerprint is None for c in chunks)
    assert all(not c.model_extra for c in chunks)


# -- R39 (MAY, not done): Anthropic's extra usage fields stay out of the usage object ---------------

USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}
EXTRA_USAGE = {
    "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
    "service_tier": "standard",
    "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
}


@pytest.mark.parametrize("where", ["chunk", "final"])
def test_extra_anthropic_usage_fields_are_not_exposed(where: str) -> None:
    data = events(
        message_start(
            usage={
                "input_tokens": 120,
                "output_tokens": 1,
                "cache_creation_input_tokens": 30,
                "cache_read_input_tokens": 50,
                **EXTRA_USAGE,
            }
        ),
        *text_block(0, text("Hi")),
        message_delta("end_turn", {"input_tokens": 300, "output_tokens": 42, **EXTRA_USAGE}),
        STOP,
    )
    stream = read_openai_stream(pipeline(include_usage=True, usage=where).convert(data))
    (carrier,) = stream.usage_chunks if where == "chunk" else stream.finish_chunks
    assert carrier["usage"] == {
        "prompt_tokens": 300 + 50 + 30,
        "completion_tokens": 42,
        "total_tokens": 422,
        "prompt_tokens_details": {"cached_tokens": 50},
    }
    wire = b"".join(pipeline(include_usage=True, usage=where).convert(data))
    completion = harness.openai_stream_state(wire, include_usage=True)
    assert completion.usage == carrier["usage"]  # model_dump keeps unknown fields, so none came


def test_no_recording_exposes_anthropic_usage_extras() -> None:
    extras_seen: set[str] = set()
    for path in harness.fixture_paths():
        sse = harness.load_complete_sse(path)
        for event in harness.parse_anthropic_sse(harness.first_response(sse)):
            usage = event.data.get("usage") or event.data.get("message", {}).get("usage") or {}
            extras_seen |= set(usage) & {"cache_creation", "service_tier", "server_tool_use"}
        stream = read_openai_stream(pipeline(include_usage=True).convert(sse), check=False)
        if stream.error is not None:
            continue  # the spliced recording ends in a protocol error before any usage
        (chunk,) = stream.usage_chunks
        assert set(chunk["usage"]) <= USAGE_KEYS | {"completion_tokens_details"}, path.name
        assert set(chunk["usage"]["prompt_tokens_details"]) == {"cached_tokens"}, path.name
        assert set(chunk["usage"].get("completion_tokens_details", {})) <= {"reasoning_tokens"}, path.name
    # The recordings do carry each of the fields R39 names, so the loop above saw them dropped.
    assert extras_seen == {"cache_creation", "service_tier", "server_tool_use"}


# -- R49: test inputs name every event by its type; a nameless event is not silently skipped --------


def test_every_recorded_sse_event_is_named_by_its_type() -> None:
    checked = 0
    for path in harness.fixture_paths():
        data = harness.load_sse(path)
        frames = [f for f in data.replace(b"\r\n", b"\n").split(b"\n\n") if b"data:" in f]
        parsed = harness.parse_anthropic_sse(data)
        assert len(parsed) == len(frames), path.name
        for event in parsed:
            assert event.name == event.data["type"], (path.name, event.name, event.data["type"])
        checked += path.suffix == ".sse"
    assert checked >= 25


NAMELESS = json.dumps(
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}
).encode()


def test_a_nameless_event_is_reported_not_skipped_as_the_anthropic_sdk_does() -> None:
    data = (
        events(message_start(), *text_block(0, text("Hi"))[:2])
        + b"data: "
        + NAMELESS
        + b"\n\n"
        + events({"type": "content_block_stop", "index": 0}, message_delta(), STOP)
    )
    # The anthropic SDK drops the nameless delta without a word: its message reads "Hi".
    message = harness.anthropic_final_message(data)
    assert [block.text for block in message.content] == ["Hi"]
    output = pipeline().convert(data)
    _, error = split_output(output)
    assert error == error_body(
        "an SSE event has data but no 'event:' line; the Anthropic stream names every event "
        f"(use input_format='jsonl' for bare JSON): {NAMELESS[:80]!r}",
        "invalid_upstream_response",
    )
    assert_client_error(b"".join(output), error, content="Hi")


# -- R50 (and R25): stop_sequence and stop_details have no OpenAI field and are dropped --------------


def _stop_extras(name: str) -> tuple[str | None, dict[str, Any] | None]:
    message = harness.anthropic_truth(harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / name)).message
    details = message.stop_details.model_dump() if message.stop_details is not None else None
    return message.stop_sequence, details


STOP_EXTRAS = [
    p.name for p in harness.fixture_paths() if p.name != "vercel_spliced_message_start_thinking_tool.jsonl"
]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def test_recorded_stop_sequences_and_stop_details_are_dropped() -> None:
    with_extras = 0
    for name in STOP_EXTRAS:
        sequence, details = _stop_extras(name)
        if sequence is None and details is None:
            continue
        with_extras += 1
        sse = harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / name)
        truth = harness.anthropic_truth(sse)
        output = harness.convert(sse, include_usage=True)
        assert b"stop_sequence" not in output and b"stop_details" not in output, name
        # Every string stop_details carries (explanation, category, recommended model, tokens),
        # searched for in what the chunks carry besides the envelope (the recommended model may
        # be the model that answered). "refusal" is its type, and the name of an OpenAI field.
        carried = json.dumps(
            [[p["choices"], p.get("usage")] for p in harness.data_payloads(output) if p != "[DONE]"]
        )
        for value in _strings(details):
            if value != "refusal":
                assert json.dumps(value)[1:-1] not in carried, (name, value)
        for consumer in CONSUMERS:
            got = harness.CONSUMERS[consumer](output, include_usage=True)
            assert got.refusal is None, (name, consumer)  # the MAY of R50 (explanation as refusal): not done
            assert got.content == truth.text, (name, consumer)
            if sequence:
                assert not got.content.endswith(sequence), (name, consumer)  # R25
    assert with_extras >= 5


STOPS = {
    "stop_sequence": ("<<STOP-SEQUENCE-7f3a>>", None, "stop"),
    "refusal": (
        None,
        {"type": "refusal", "category": "cyber", "explanation": "EXPLANATION-b41c"},
        "content_filter",
    ),
}


@pytest.mark.parametrize("stop_reason", sorted(STOPS))
def test_a_stop_sequence_and_stop_details_never_reach_the_client(stop_reason: str) -> None:
    sequence, details, finish = STOPS[stop_reason]
    delta = message_delta(stop_reason, stop_sequence=sequence)
    delta["delta"]["stop_details"] = details
    data = events(message_start(), *text_block(0, text("Hello")), delta, STOP)
    wire = b"".join(pipeline().convert(data))
    assert b"STOP-SEQUENCE" not in wire and b"EXPLANATION" not in wire and b"cyber" not in wire
    for consumer in CONSUMERS:
        got = harness.CONSUMERS[consumer](wire)
        assert (got.content, got.refusal, got.finish_reason) == ("Hello", None, finish), consumer


# -- R5: after [DONE] the stream ends at once, however long the upstream stays open ------------------

ANSWER = text_sse("Hel", "lo")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_transform_ends_right_after_done_while_the_upstream_stays_open(backend: str) -> None:
    reads = 0
    closed = False

    async def upstream() -> AsyncIterator[bytes]:
        # An upstream that sends the whole answer, then holds the connection open and sends nothing.
        nonlocal reads, closed
        try:
            for start in range(0, len(ANSWER), 64):
                reads += 1
                yield ANSWER[start : start + 64]
            reads += 1
            await anyio.sleep_forever()
            yield b"never"
        finally:
            closed = True

    async def main() -> list[bytes]:
        with anyio.fail_after(5):  # a hang here is the failure R5 is about
            return [out async for out in pipeline().transform(upstream())]

    out = anyio.run(main, backend=backend)
    assert out == pipeline().convert(ANSWER) and out[-1] == DONE
    assert reads == -(-len(ANSWER) // 64), "the upstream was read again after message_stop"
    assert closed, "the upstream is closed as soon as the stream is done"


def test_transform_sync_ends_right_after_done_while_the_upstream_stays_open() -> None:
    asked_after_the_answer = False

    def upstream() -> Iterator[bytes]:
        nonlocal asked_after_the_answer
        yield ANSWER
        asked_after_the_answer = True  # a real upstream would block here until it closes
        yield b""

    outputs = pipeline().transform_sync(upstream())
    out = []
    for item in outputs:
        out.append(item)
        if item == DONE:
            break
    assert out == pipeline().convert(ANSWER)
    assert next(outputs, None) is None
    assert not asked_after_the_answer, "the source was read again after [DONE]"


class HeldOpenUpstream:
    """A stand-in for the Anthropic API on 127.0.0.1 that answers every request with ``ANSWER`` as
    a chunked SSE body and then holds the connection open, sending nothing, until it is stopped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.answered = threading.Event()
        self.handlers: set[asyncio.Task[None]] = set()
        self.server = self.loop.run_until_complete(asyncio.start_server(self._answer, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                + f"{len(ANSWER):x}\r\n".encode()
                + ANSWER
                + b"\r\n"
            )
            await writer.drain()
            self.answered.set()
            await asyncio.sleep(3600)  # no last chunk, no close: the connection stays open
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()

    async def _stop(self) -> None:
        self.server.close()
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    def __enter__(self) -> HeldOpenUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_the_server_ends_the_body_at_done_while_the_upstream_stays_open() -> None:
    # openai 1.x reads a body to its end after [DONE] (3.x stops at [DONE]), so the time to the
    # end of the body is measured by reading it whole, as those clients do.
    uvicorn = pytest.importorskip("uvicorn")
    from chunkline.server.app import create_app
    from chunkline.server.settings import Settings

    with HeldOpenUpstream() as upstream, socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        config = uvicorn.Config(create_app(Settings(upstream=upstream.url)), log_config=None)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.01)
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"
            request = {
                "model": "claude-test",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            }
            started = time.monotonic()
            with httpx.stream("POST", url, json=request, headers={"x-api-key": "sk-ant-test"}) as response:
                body = b"".join(response.iter_bytes())
            elapsed = time.monotonic() - started
            # The upstream's thread sets the flag just after its write, so the client may read the
            # whole body before that thread runs again: wait for it rather than race it.
            assert upstream.answered.wait(5)
            assert response.status_code == 200
            assert body.endswith(DONE), body[-80:]
            assert elapsed < 5, f"the body stayed open {elapsed:.1f}s after [DONE]"
            chunks = harness.iter_openai_chunks(body)
            assert [c.choices[0].delta.content for c in chunks if c.choices] == ["", "Hel", "lo", None]
        finally:
            server.should_exit = True
            thread.join(10)
