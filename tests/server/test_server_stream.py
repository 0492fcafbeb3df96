"""Streaming through the server: the bytes are the pipeline's, and the openai SDK reads Claude's answer."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fake_anthropic import FakeAnthropic
from fake_bodies import echo_events
from serverkit import CLIENT_KEY, ServerThread, accumulate, sse_events, user

import harness
from chunkline.server.settings import Settings

RECORDINGS = harness.fixture_paths()
# The one recording the pipeline rejects (a second message_start spliced in): its own tests below.
BROKEN = harness.SPLICED
GOOD = harness.well_formed_paths()


@pytest.mark.parametrize(
    ("piece", "include_usage"),
    [(None, False), (None, True), (61, True)],
    ids=["events", "events-usage", "61-byte-writes-usage"],
)
@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.stem)
def test_the_stream_is_the_default_pipeline_over_the_upstream_body(
    proxy: ServerThread, recording: Any, piece: int | None, include_usage: bool
) -> None:
    model = recording.stem if piece is None else f"{recording.stem}@{piece}"
    payload: dict[str, Any] = {"model": model, "messages": user("hi"), "stream": True}
    if include_usage:
        payload["stream_options"] = {"include_usage": True}
    response = proxy.post_chat(payload)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-request-id"].startswith("req_")  # chunkline's id of the request
    assert response.headers["anthropic-request-id"] == "req_fake_1"
    # The server sends thinking blocks whole in reasoning_details (docs/responses-rules.md, RS14).
    expected = harness.convert(
        harness.load_complete_sse(recording), include_usage=include_usage, reasoning_details=True
    )
    assert sse_events(response.content) == sse_events(expected)
    assert response.content.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("recording", GOOD, ids=lambda p: p.stem)
def test_the_sdk_reads_what_the_anthropic_sdk_reads(proxy: ServerThread, recording: Any) -> None:
    truth = harness.anthropic_truth(harness.load_complete_sse(recording))
    client = proxy.client(_strict_response_validation=True)
    with client.chat.completions.create(model=recording.stem, messages=user("hi"), stream=True) as stream:
        got = accumulate(stream)
    assert got["content"] == truth.text
    assert got["reasoning_content"] == (truth.thinking or "")
    calls = [got["tool_calls"][i] for i in range(len(got["tool_calls"]))]
    assert [(c["id"], c["name"]) for c in calls] == [(t["id"], t["name"]) for t in truth.tool_calls]
    for call, expected in zip(calls, truth.tool_calls, strict=True):
        # Arguments are the streamed JSON byte for byte (cut short where max_tokens cut the call).
        if expected["partial_json"]:
            assert call["arguments"] == expected["partial_json"]
        else:
            assert json.loads(call["arguments"]) == expected["input"]
    assert len(got["finish"]) == 1
    assert got["usage"] is None


@pytest.mark.parametrize(
    ("recording", "finish"),
    [
        ("llm_minimal_text", "stop"),
        ("llm_stop_sequence", "stop"),
        ("otel_text_then_parallel_tool_use_args", "tool_calls"),
        ("sdkpy_incomplete_partial_json_max_tokens", "length"),
        ("pydai_pause_turn_web_search", "length"),
        ("sdkpy_refusal_response", "content_filter"),
    ],
)
def test_finish_reasons(proxy: ServerThread, recording: str, finish: str) -> None:
    with proxy.client().chat.completions.create(model=recording, messages=user("hi"), stream=True) as stream:
        assert accumulate(stream)["finish"] == [finish]


def test_the_stream_helper_gives_tool_calls_parsed(proxy: ServerThread) -> None:
    recording = "otel_text_then_parallel_tool_use_args"
    truth = harness.anthropic_truth(
        harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / f"{recording}.sse")
    )
    events = []
    with proxy.client().chat.completions.stream(model=recording, messages=user("hi")) as stream:
        for event in stream:
            events.append(event.type)
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    assert message.content == truth.text
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []] == [
        (t["id"], t["name"], t["input"]) for t in truth.tool_calls
    ]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert events.count("tool_calls.function.arguments.done") == 2


def test_thinking_arrives_as_reasoning_content(proxy: ServerThread) -> None:
    recording = harness.ANTHROPIC_FIXTURES / "llm_thinking_long.sse"
    truth = harness.anthropic_truth(harness.load_complete_sse(recording))
    assert truth.thinking
    with proxy.client().chat.completions.create(
        model="llm_thinking_long", messages=user("hi"), stream=True, reasoning_effort="low"
    ) as stream:
        got = accumulate(stream)
    assert got["reasoning_content"] == truth.thinking
    assert got["content"] == truth.text
    assert truth.thinking not in got["content"]


@pytest.mark.parametrize("recording", ["otel_prompt_cache_read", "llm_thinking_then_tool_use", "echo"])
def test_usage_with_include_usage(proxy: ServerThread, recording: str) -> None:
    """The usage chunk is the pipeline's, from the recording's cumulative counts, and it is last."""
    if recording == "echo":
        sse = b"".join(echo_events("count these words"))
    else:
        sse = harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / f"{recording}.sse")
    payloads = harness.data_payloads(harness.convert(sse, include_usage=True))
    expected = next(p for p in reversed(payloads) if isinstance(p, dict))["usage"]
    with proxy.client(_strict_response_validation=True).chat.completions.create(
        model=recording,
        messages=user("count these words"),
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == expected
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert expected["total_tokens"] == expected["prompt_tokens"] + expected["completion_tokens"] > 0
    if recording == "otel_prompt_cache_read":
        assert expected["prompt_tokens_details"]["cached_tokens"] > 0
    if recording == "llm_thinking_then_tool_use":
        assert expected["completion_tokens_details"]["reasoning_tokens"] > 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "recording", ["llm_long_text", "llm_thinking_then_tool_use", "sdkpy_tool_use_response"]
)
async def test_the_async_client_reads_the_same(proxy: ServerThread, recording: str) -> None:
    sync_client = proxy.client()
    with sync_client.chat.completions.create(model=recording, messages=user("hi"), stream=True) as stream:
        expected = accumulate(stream)
    async with proxy.async_client() as client:
        stream = await client.chat.completions.create(model=recording, messages=user("hi"), stream=True)
        chunks = [chunk async for chunk in stream]
    assert accumulate(chunks) == expected


def test_the_upstream_gets_a_streaming_messages_request(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    marker = "marker-for-the-upstream-request-test"
    with proxy.client().chat.completions.create(
        model="echo",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": marker}],
        stream=True,
        max_tokens=77,
        extra_headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
    ) as stream:
        assert accumulate(stream)["content"] == marker
    received = upstream.find(marker)
    assert received.method == "POST" and received.path == "/v1/messages"
    assert received.headers["x-api-key"] == CLIENT_KEY
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"
    assert "authorization" not in received.headers
    assert received.body == {
        "model": "echo",
        "messages": [{"role": "user", "content": [{"type": "text", "text": marker}]}],
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 77,
        "stream": True,
    }
    assert received.outcome == "complete"


def test_tools_round_trip(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    """A whole tool loop as a client runs it: the tool call streams back, and the next request
    carries it as tool_use and the result as tool_result."""
    client = proxy.client()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    with client.chat.completions.stream(
        model="sdkpy_tool_use_response", messages=user("weather? tool-loop-1"), tools=tools
    ) as stream:
        first = stream.get_final_completion()
    call = first.choices[0].message.tool_calls[0]
    marker = "tool-loop-2"
    followup = [
        {"role": "user", "content": "weather? " + marker},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    with client.chat.completions.create(model="echo", messages=followup, tools=tools, stream=True) as stream:
        accumulate(stream)
    sent = upstream.find(marker).body
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert [turn["role"] for turn in sent["messages"]] == ["user", "assistant", "user"]
    tool_use = sent["messages"][1]["content"][-1]
    assert tool_use == {
        "type": "tool_use",
        "id": call.id,
        "name": call.function.name,
        "input": json.loads(call.function.arguments),
    }
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    ]


def test_the_broken_recording_ends_in_band(proxy: ServerThread) -> None:
    with (
        proxy.client().chat.completions.create(model=BROKEN, messages=user("hi"), stream=True) as stream,
        pytest.raises(openai.APIError) as caught,
    ):
        accumulate(stream)
    assert "a second 'message_start' arrived before 'message_stop'" in caught.value.message
    assert caught.value.body["type"] == "invalid_upstream_response"


def test_a_finished_stream_leaves_its_upstream_connection_for_the_next(upstream: FakeAnthropic) -> None:
    """After a whole answer the server reads the end of the upstream body, so the connection goes
    back to its pool: requests one after another (streaming or not) all go over the one
    connection the first opened. (A server of its own: the shared one's pool may be handed a
    connection by an earlier test's answer that ends meanwhile.)"""
    server = ServerThread(Settings(upstream=upstream.url)).start()
    try:
        client = server.client()
        count = 12
        for n in range(count):
            marker = f"<reuse {n}>"
            if n % 3:
                with client.chat.completions.create(model="echo", messages=user(marker), stream=True) as s:
                    accumulate(s)
            else:
                client.chat.completions.create(model="echo", messages=user(marker))
    finally:
        server.stop()
    connections = {upstream.find(f"<reuse {n}>").connection for n in range(count)}
    assert len(connections) == 1
