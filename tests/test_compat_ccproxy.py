"""The ccproxy-api drop-in (chunkline.compat.ccproxy): formatter output, every recording, the options."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.types.chat import ChatCompletionChunk

import chunkline
from chunkline.compat.ccproxy import OpenAISSEFormatter, OpenAIStreamProcessor

RECORDINGS_DIR = Path(__file__).parent / "fixtures" / "anthropic"
RECORDINGS = sorted(p.name for p in RECORDINGS_DIR.iterdir() if p.suffix in {".sse", ".jsonl"})

# These three anthropic-sdk-python recordings are stored without the line break (and blank line)
# that end their last event, so the final `message_stop` line would count as cut off (CONFORMANCE
# R51) and the stream would be a truncation. The API always ends an event with them: add them back.
UNTERMINATED = {
    "sdkpy_basic_response.sse",
    "sdkpy_tool_use_response.sse",
    "sdkpy_incomplete_partial_json_max_tokens.sse",
}

# The one recording with a second message_start before message_stop (R52: a protocol violation).
SPLICED = "vercel_spliced_message_start_thinking_tool.jsonl"

# CONFORMANCE R22.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "length",
    "model_context_window_exceeded": "length",
    "compaction": "stop",
}

ID, MODEL, CREATED = "chatcmpl-abc123", "claude-sonnet-4-5", 1_700_000_000
# How every chunk the formatter makes for ID, MODEL, CREATED begins.
HEAD = (
    'data: {"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1700000000,'
    '"model":"claude-sonnet-4-5","choices":[{'
)
MESSAGES = [{"role": "user", "content": "hi"}]
FINISH_ERRORS = (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)
RAW_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def load_events(name: str) -> list[dict[str, Any]]:
    """A recording's Anthropic events as dicts, parsed by chunkline's own parse stage."""
    path = RECORDINGS_DIR / name
    data = path.read_bytes()
    if name in UNTERMINATED:
        assert not data.endswith(b"\n"), f"{name} now ends with a line break; update UNTERMINATED"
        data += b"\n\n"  # see UNTERMINATED
    fmt = "jsonl" if path.suffix == ".jsonl" else "sse"
    events = chunkline.Pipeline(stages=["parse"], input_format=fmt).convert(data)
    assert events, name
    assert all(isinstance(e, dict) for e in events), [e for e in events if not isinstance(e, dict)]
    return events


async def aiter_of(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def process(events: Iterable[Any], **kwargs: Any) -> list[str]:
    """All the SSE strings OpenAIStreamProcessor(**kwargs) yields for ``events``."""
    processor = OpenAIStreamProcessor(**kwargs)
    out = [s async for s in processor.process_stream(aiter_of(events))]
    assert all(isinstance(s, str) for s in out)
    return out


def payloads(out: list[str]) -> list[Any]:
    """The JSON value of every data event (``"[DONE]"`` for the end); checks the SSE framing."""
    values: list[Any] = []
    for event in out:
        assert event.endswith("\n\n") and event.count("\n") == 2, repr(event)  # one line each (R2)
        if event == ": ping\n\n":
            continue
        assert event.startswith("data: "), repr(event)  # no event: lines (R4)
        body = event[6:-2]
        values.append("[DONE]" if body == "[DONE]" else json.loads(body))
    return values


def chunks_of(out: list[str]) -> list[dict[str, Any]]:
    return [p for p in payloads(out) if isinstance(p, dict) and "error" not in p]


def content_pieces(out: list[str]) -> list[str]:
    return [
        c["choices"][0]["delta"]["content"]
        for c in chunks_of(out)
        if c["choices"] and c["choices"][0]["delta"].get("content")
    ]


def openai_client(body: str) -> openai.OpenAI:
    """A strict openai client every request of which is answered with ``body`` as an SSE stream."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=body.encode("utf-8")
        )

    return openai.OpenAI(
        api_key="test",
        base_url="http://test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        _strict_response_validation=True,
    )


@dataclass
class Read:
    """What the openai SDK's raw ``create(stream=True)`` gives, accumulated by hand."""

    content: str = ""
    reasoning_content: str = ""
    role: str | None = None
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    finish_usage: Any = None
    usage_chunks: int = 0


def read_with_create(body: str) -> Read:
    read = Read()
    client = openai_client(body)
    with client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as stream:
        for chunk in stream:
            assert chunk.object == "chat.completion.chunk"
            if chunk.usage is not None:
                read.usage_chunks += 1
            assert len(chunk.choices) == 1 and chunk.choices[0].index == 0  # R8
            choice = chunk.choices[0]
            delta = choice.delta
            if delta.role is not None:
                assert read.role is None, "role sent twice"  # R10
                read.role = delta.role
            read.content += delta.content or ""
            read.reasoning_content += (delta.model_extra or {}).get("reasoning_content") or ""
            for tc in delta.tool_calls or []:
                call = read.tool_calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += tc.id or ""
                assert tc.function is not None  # R15
                call["name"] += tc.function.name or ""
                call["arguments"] += tc.function.arguments or ""
            if choice.finish_reason is not None:
                assert read.finish_reason is None, "a second finish_reason"  # R19
                read.finish_reason = choice.finish_reason
                read.finish_usage = chunk.usage
    return read


def read_with_stream_helper(body: str) -> tuple[Any, type[Exception] | None]:
    """``client.chat.completions.stream(...).get_final_completion()``; for finish reasons the
    helper refuses (length, content_filter: R23) the snapshot, and the exception it raised."""
    client = openai_client(body)
    with client.chat.completions.stream(model="gpt-test", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        try:
            return stream.get_final_completion(), None
        except FINISH_ERRORS as exc:
            return stream.current_completion_snapshot, type(exc)


@dataclass
class Truth:
    """The anthropic SDK's reading of a stream's first response (what the converter reports)."""

    message: Any
    text: str
    thinking: str
    tool_uses: list[Any]
    partial_json: dict[int, str]
    tool_use_positions: list[int]
    signatures: list[str]
    pings: int


def anthropic_truth(events: list[dict[str, Any]]) -> Truth:
    snapshot: Any = None
    bufs: dict[int, bytes] = {}
    partial: dict[int, str] = {}
    pings = 0
    for event in events:
        if event["type"] == "ping":
            pings += 1
            continue
        delta = event.get("delta") or {}
        if event["type"] == "content_block_delta" and delta.get("type") == "input_json_delta":
            partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
        if event["type"] == "message_stop":
            break  # R52: what follows the first message_stop is ignored
    blocks = snapshot.content
    positions = [i for i, b in enumerate(blocks) if b.type == "tool_use"]
    return Truth(
        message=snapshot,
        text="".join(b.text for b in blocks if b.type == "text"),
        thinking="".join(b.thinking for b in blocks if b.type == "thinking"),
        tool_uses=[blocks[i] for i in positions],
        partial_json=partial,
        tool_use_positions=positions,
        signatures=[b.signature for b in blocks if b.type == "thinking" and b.signature],
        pings=pings,
    )


def expected_finish(truth: Truth) -> str:
    reason = truth.message.stop_reason
    if reason == "tool_use" and not truth.tool_uses:
        return "stop"  # R24: tool_calls only when a tool call was streamed
    return FINISH_REASONS.get(reason, "stop")


def assert_in_band_error(out: list[str], type_: str, code: str | None = None) -> dict[str, Any]:
    """The stream ends with exactly one R41 error event then [DONE], and has no finish chunk."""
    values = payloads(out)
    assert values[-1] == "[DONE]"
    errors = [v for v in values if isinstance(v, dict) and "error" in v]
    assert len(errors) == 1 and values[-2] is errors[0], values[-3:]
    error = errors[0]
    assert set(error) == {"error"}
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["type"] == type_
    assert error["error"]["param"] is None
    assert error["error"]["code"] == (code or type_)
    assert error["error"]["message"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks_of(out) if c["choices"])
    return error["error"]


def assert_sdk_raises_api_error(out: list[str], message: str) -> None:
    body = "".join(out)
    with pytest.raises(openai.APIError) as raised:
        read_with_create(body)
    assert raised.value.message == message
    with pytest.raises(openai.APIError) as raised:
        read_with_stream_helper(body)
    assert raised.value.message == message


# --------------------------------------------------------------------------------------------
# (1) OpenAISSEFormatter
# --------------------------------------------------------------------------------------------


def test_formatter_has_ccproxys_static_methods_and_signatures() -> None:
    req = inspect.Parameter.empty  # a parameter without a default
    ids = [("message_id", req), ("model", req), ("created", req)]
    expected = {
        "format_data_event": [("data", req)],
        "format_first_chunk": [*ids, ("role", "assistant")],
        "format_content_chunk": [*ids, ("content", req), ("choice_index", 0)],
        "format_tool_call_chunk": [
            *ids,
            ("tool_call_id", req),
            ("function_name", None),
            ("function_arguments", None),
            ("tool_call_index", 0),
            ("choice_index", 0),
        ],
        "format_final_chunk": [*ids, ("finish_reason", "stop"), ("choice_index", 0), ("usage", None)],
        "format_error_chunk": [*ids, ("error_type", req), ("error_message", req)],
        "format_done": [],
    }
    for name, params in expected.items():
        assert isinstance(inspect.getattr_static(OpenAISSEFormatter, name), staticmethod), name
        signature = inspect.signature(getattr(OpenAISSEFormatter, name))
        assert [(p.name, p.default) for p in signature.parameters.values()] == params, name


def test_processor_has_ccproxys_constructor() -> None:
    signature = inspect.signature(OpenAIStreamProcessor.__init__)
    got = [(p.name, p.default) for p in signature.parameters.values()][1:]
    assert got == [
        ("message_id", None),
        ("model", None),  # ccproxy: "claude-3-5-sonnet-20241022"; now the stream's own model
        ("created", None),
        ("enable_usage", True),
        ("enable_tool_calls", True),
        ("enable_text_chunking", True),
        ("chunk_size_words", 3),
    ]
    assert inspect.isasyncgenfunction(OpenAIStreamProcessor.process_stream)
    assert isinstance(OpenAIStreamProcessor().formatter, OpenAISSEFormatter)


FORMATTED: list[tuple[str, Callable[[], str], str]] = [
    (
        "data_event",
        lambda: OpenAISSEFormatter.format_data_event({"a": 1, "b": [True, None], "t": "héllo ☃"}),
        'data: {"a":1,"b":[true,null],"t":"héllo ☃"}\n\n',
    ),
    (
        "first",
        lambda: OpenAISSEFormatter.format_first_chunk(ID, MODEL, CREATED),
        HEAD + '"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "first_role",
        lambda: OpenAISSEFormatter.format_first_chunk(ID, MODEL, CREATED, role="user"),
        HEAD + '"index":0,"delta":{"role":"user"},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "content",
        lambda: OpenAISSEFormatter.format_content_chunk(ID, MODEL, CREATED, "Hello"),
        HEAD + '"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "content_non_ascii",
        lambda: OpenAISSEFormatter.format_content_chunk(ID, MODEL, CREATED, 'Grüße, 世界 🎉\n"q"\t\\'),
        HEAD + '"index":0,"delta":{"content":"Grüße, 世界 🎉\\n\\"q\\"\\t\\\\"},'
        '"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "content_choice_index",
        lambda: OpenAISSEFormatter.format_content_chunk(ID, MODEL, CREATED, " ", choice_index=2),
        HEAD + '"index":2,"delta":{"content":" "},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "tool_call_name_and_arguments",
        lambda: OpenAISSEFormatter.format_tool_call_chunk(
            ID,
            MODEL,
            CREATED,
            "toolu_01A",
            function_name="get_weather",
            function_arguments='{"city":"Zürich"}',
        ),
        HEAD + '"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_01A","type":"function",'
        '"function":{"name":"get_weather","arguments":"{\\"city\\":\\"Zürich\\"}"}}]},'
        '"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "tool_call_bare",
        lambda: OpenAISSEFormatter.format_tool_call_chunk(ID, MODEL, CREATED, "toolu_01A"),
        HEAD + '"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_01A","type":"function",'
        '"function":{}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "tool_call_name_only",
        lambda: OpenAISSEFormatter.format_tool_call_chunk(
            ID, MODEL, CREATED, "toolu_01B", function_name="f", tool_call_index=1
        ),
        HEAD + '"index":0,"delta":{"tool_calls":[{"index":1,"id":"toolu_01B","type":"function",'
        '"function":{"name":"f"}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "tool_call_arguments_only",
        lambda: OpenAISSEFormatter.format_tool_call_chunk(
            ID, MODEL, CREATED, "toolu_01B", function_arguments="", tool_call_index=3, choice_index=1
        ),
        HEAD + '"index":1,"delta":{"tool_calls":[{"index":3,"id":"toolu_01B","type":"function",'
        '"function":{"arguments":""}}]},"logprobs":null,"finish_reason":null}]}\n\n',
    ),
    (
        "final",
        lambda: OpenAISSEFormatter.format_final_chunk(ID, MODEL, CREATED),
        HEAD + '"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n',
    ),
    (
        "final_usage",
        lambda: OpenAISSEFormatter.format_final_chunk(
            ID,
            MODEL,
            CREATED,
            finish_reason="tool_calls",
            usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        ),
        HEAD + '"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],'
        '"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}\n\n',
    ),
    (
        "final_empty_usage",  # as in ccproxy: an empty usage dict is left out
        lambda: OpenAISSEFormatter.format_final_chunk(ID, MODEL, CREATED, "length", 0, {}),
        HEAD + '"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}\n\n',
    ),
    (
        "error",
        lambda: OpenAISSEFormatter.format_error_chunk(ID, MODEL, CREATED, "overloaded_error", "Overloaded"),
        'data: {"error":{"message":"Overloaded","type":"overloaded_error","param":null,'
        '"code":"overloaded_error"}}\n\n',
    ),
    (
        "error_non_ascii",
        lambda: OpenAISSEFormatter.format_error_chunk(ID, MODEL, CREATED, "error", "Überlastet ☁"),
        'data: {"error":{"message":"Überlastet ☁","type":"error","param":null,"code":"error"}}\n\n',
    ),
    ("done", OpenAISSEFormatter.format_done, "data: [DONE]\n\n"),
]


@pytest.mark.parametrize(("make", "expected"), [f[1:] for f in FORMATTED], ids=[f[0] for f in FORMATTED])
def test_formatter_output_is_pinned(make: Callable[[], str], expected: str) -> None:
    out = make()
    assert out == expected
    assert "\\u" not in out  # compact UTF-8, no ASCII escapes


CHUNK_METHODS = [
    name for name, *_ in FORMATTED if name not in {"data_event", "error", "error_non_ascii", "done"}
]


@pytest.mark.parametrize("name", CHUNK_METHODS)
def test_formatter_chunks_have_the_documented_shape(name: str) -> None:
    make = next(m for n, m, _ in FORMATTED if n == name)
    out = make()
    value = json.loads(out.removeprefix("data: ").removesuffix("\n\n"))
    keys = {"id", "object", "created", "model", "choices"} | ({"usage"} if "usage" in value else set())
    assert set(value) == keys
    assert value["object"] == "chat.completion.chunk"
    assert (value["id"], value["model"], value["created"]) == (ID, MODEL, CREATED)
    [choice] = value["choices"]
    assert set(choice) == {"index", "delta", "logprobs", "finish_reason"}
    assert choice["logprobs"] is None
    ChatCompletionChunk.model_validate(value)  # the openai SDK's own type


def test_formatter_instance_methods_match_static_calls() -> None:
    formatter = OpenAIStreamProcessor().formatter
    assert formatter.format_content_chunk(ID, MODEL, CREATED, "x") == OpenAISSEFormatter.format_content_chunk(
        ID, MODEL, CREATED, "x"
    )
    assert formatter.format_done() == "data: [DONE]\n\n"


def test_formatter_stream_reads_back_through_the_openai_sdk() -> None:
    f = OpenAISSEFormatter
    body = "".join(
        [
            f.format_first_chunk(ID, MODEL, CREATED),
            f.format_content_chunk(ID, MODEL, CREATED, "Grüße "),
            f.format_content_chunk(ID, MODEL, CREATED, "🎉"),
            f.format_tool_call_chunk(ID, MODEL, CREATED, "toolu_01A", "get_weather", '{"city":"Zürich"}'),
            f.format_tool_call_chunk(ID, MODEL, CREATED, "toolu_01B", "now", "{}", tool_call_index=1),
            f.format_final_chunk(
                ID,
                MODEL,
                CREATED,
                "tool_calls",
                usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
            ),
            f.format_done(),
        ]
    )
    read = read_with_create(body)
    assert (read.role, read.content, read.finish_reason) == ("assistant", "Grüße 🎉", "tool_calls")
    assert read.tool_calls == {
        0: {"id": "toolu_01A", "name": "get_weather", "arguments": '{"city":"Zürich"}'},
        1: {"id": "toolu_01B", "name": "now", "arguments": "{}"},
    }
    assert read.finish_usage.total_tokens == 17
    completion, raised = read_with_stream_helper(body)
    assert raised is None
    message = completion.choices[0].message
    assert message.content == "Grüße 🎉"
    assert [(t.id, t.function.name, t.function.arguments) for t in message.tool_calls] == [
        ("toolu_01A", "get_weather", '{"city":"Zürich"}'),
        ("toolu_01B", "now", "{}"),
    ]
    assert completion.usage.prompt_tokens == 12


def test_formatter_error_chunk_makes_the_openai_sdk_raise() -> None:
    f = OpenAISSEFormatter
    out = [
        f.format_first_chunk(ID, MODEL, CREATED),
        f.format_content_chunk(ID, MODEL, CREATED, "partial"),
        f.format_error_chunk(ID, MODEL, CREATED, "overloaded_error", "Überlastet, bitte später erneut"),
        f.format_done(),
    ]
    assert_sdk_raises_api_error(out, "Überlastet, bitte später erneut")
    client = openai_client("".join(out))
    with pytest.raises(openai.APIError) as raised:
        list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))
    assert raised.value.type == "overloaded_error"
    assert raised.value.code == "overloaded_error"


# --------------------------------------------------------------------------------------------
# (2) Every recording, through the real SDKs
# --------------------------------------------------------------------------------------------


def test_all_recordings_are_found() -> None:
    assert len(RECORDINGS) >= 30
    assert set(RECORDINGS) >= UNTERMINATED
    assert SPLICED in RECORDINGS


@pytest.mark.asyncio
@pytest.mark.parametrize("name", [n for n in RECORDINGS if n != SPLICED])
async def test_recording_meets_the_conformance_rules(name: str) -> None:
    events = load_events(name)
    truth = anthropic_truth(events)
    started = int(time.time())
    out = await process(events)
    values = payloads(out)

    # framing: [DONE] last and once; pings are SSE comments; no in-band error
    assert values[-1] == "[DONE]" and values.count("[DONE]") == 1
    assert out.count(": ping\n\n") == truth.pings  # R40
    assert not any(isinstance(v, dict) and "error" in v for v in values)  # R41
    chunks = chunks_of(out)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)

    # id from the Anthropic message id, the stream's model, one integer created (R7, R32)
    message_id = events[0]["message"]["id"]
    assert {c["id"] for c in chunks} == {f"chatcmpl-{message_id}"}
    assert {c["model"] for c in chunks} == {truth.message.model}
    [created] = {c["created"] for c in chunks}
    assert isinstance(created, int) and started <= created <= int(time.time()) + 1

    # the finish chunk is the last chunk and carries the usage (enable_usage=True)
    assert chunks[-1]["choices"][0]["finish_reason"] is not None
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert [c for c in chunks if c.get("usage") is not None] == [chunks[-1]]

    read = read_with_create("".join(out))
    completion, raised = read_with_stream_helper("".join(out))
    message = completion.choices[0].message

    # content, reasoning, signatures (R26, R29, R30)
    assert read.role == "assistant"
    assert read.content == truth.text
    assert (message.content or "") == truth.text
    assert read.reasoning_content == truth.thinking
    assert ((message.model_extra or {}).get("reasoning_content") or "") == truth.thinking
    for signature in truth.signatures:
        assert signature not in "".join(out)
    assert "<thinking" not in read.content

    # finish reason (R22, R23, R24)
    finish = expected_finish(truth)
    assert read.finish_reason == finish
    assert completion.choices[0].finish_reason == finish
    expected_raise = {
        "length": openai.LengthFinishReasonError,
        "content_filter": openai.ContentFilterFinishReasonError,
    }.get(finish)
    assert raised is expected_raise

    # tool calls: client tool_use blocks only, in order, indices 0.. (R13, R14, R17, R27, R28)
    assert sorted(read.tool_calls) == list(range(len(truth.tool_uses)))
    helper_calls = message.tool_calls or []
    assert len(helper_calls) == len(truth.tool_uses)
    for i, (block, position) in enumerate(zip(truth.tool_uses, truth.tool_use_positions, strict=True)):
        call = read.tool_calls[i]
        assert (call["id"], call["name"]) == (block.id, block.name)
        assert (helper_calls[i].id, helper_calls[i].function.name) == (block.id, block.name)
        assert helper_calls[i].type == "function"
        assert helper_calls[i].function.arguments == call["arguments"]
        if truth.partial_json.get(position):
            assert call["arguments"] == truth.partial_json[position]  # R48: passed through as sent
        if finish != "length":
            assert json.loads(call["arguments"]) == block.input

    # usage on the finish chunk (R35, R37, R38)
    usage = truth.message.usage
    prompt = (
        usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    )
    assert read.usage_chunks == 1
    got = read.finish_usage
    assert (got.prompt_tokens, got.completion_tokens) == (prompt, usage.output_tokens)
    assert got.total_tokens == prompt + usage.output_tokens
    assert got.prompt_tokens_details.cached_tokens == (usage.cache_read_input_tokens or 0)
    assert completion.usage.model_dump() == got.model_dump()


@pytest.mark.asyncio
@pytest.mark.parametrize("name", [n for n in RECORDINGS if n != SPLICED])
async def test_recording_without_usage(name: str) -> None:
    events = load_events(name)
    out = await process(events, enable_usage=False)
    assert all(c.get("usage") is None for c in chunks_of(out))
    assert read_with_create("".join(out)).usage_chunks == 0
    completion, _ = read_with_stream_helper("".join(out))
    assert completion.usage is None
    # everything else is as with usage
    with_usage = await process(events, created=CREATED)
    without = await process(events, created=CREATED, enable_usage=False)
    strip = [{k: v for k, v in c.items() if k != "usage"} for c in chunks_of(with_usage)]
    assert strip == chunks_of(without)


@pytest.mark.asyncio
async def test_spliced_second_message_start_ends_with_an_in_band_error() -> None:
    out = await process(load_events(SPLICED))
    error = assert_in_band_error(out, "invalid_upstream_response")
    assert "message_start" in error["message"]
    assert_sdk_raises_api_error(out, error["message"])


# --------------------------------------------------------------------------------------------
# (3) Options and inputs
# --------------------------------------------------------------------------------------------

TEXT_RECORDINGS = [n for n in RECORDINGS if n != SPLICED and anthropic_truth(load_events(n)).text]
TOOL_RECORDINGS = [n for n in RECORDINGS if n != SPLICED and anthropic_truth(load_events(n)).tool_uses]


def test_option_recordings_exist() -> None:
    assert len(TEXT_RECORDINGS) >= 20
    assert len(TOOL_RECORDINGS) >= 5


@pytest.mark.asyncio
@pytest.mark.parametrize("words", [1, 3, 7])
@pytest.mark.parametrize("name", TEXT_RECORDINGS)
async def test_word_chunking_keeps_text_byte_identical(name: str, words: int) -> None:
    events = load_events(name)
    truth = anthropic_truth(events)
    out = await process(events, created=CREATED, chunk_size_words=words)
    pieces = content_pieces(out)
    assert "".join(pieces) == truth.text
    assert read_with_create("".join(out)).content == truth.text
    # each piece ends at the end of a word (or of the text), and holds at most `words` words
    for piece in pieces:
        assert len(re.findall(r"\S+", piece)) <= words, (words, piece)
    # the default is 3 words
    if words == 3:
        assert out == await process(events, created=CREATED)


@pytest.mark.asyncio
@pytest.mark.parametrize("name", TEXT_RECORDINGS)
async def test_no_text_chunking_sends_one_content_delta_per_text_delta(name: str) -> None:
    events = load_events(name)
    truth = anthropic_truth(events)
    out = await process(events, enable_text_chunking=False, chunk_size_words=1)
    text_blocks = {
        e["index"]
        for e in events[: next(i for i, e in enumerate(events) if e["type"] == "message_stop")]
        if e["type"] == "content_block_start" and e["content_block"]["type"] == "text"
    }
    deltas = []
    for e in events:
        if e["type"] == "message_stop":
            break
        if (
            e["type"] == "content_block_delta"
            and e["index"] in text_blocks
            and e["delta"]["type"] == "text_delta"
        ):
            deltas.append(e["delta"]["text"])
    assert content_pieces(out) == [d for d in deltas if d]
    assert "".join(content_pieces(out)) == truth.text


@pytest.mark.asyncio
@pytest.mark.parametrize("name", TOOL_RECORDINGS)
async def test_disabled_tool_calls_are_left_out(name: str) -> None:
    events = load_events(name)
    truth = anthropic_truth(events)
    out = await process(events, enable_tool_calls=False)
    for chunk in chunks_of(out):
        for choice in chunk["choices"]:
            assert "tool_calls" not in choice["delta"]
    read = read_with_create("".join(out))
    assert read.tool_calls == {}
    assert read.content == truth.text
    expected = "stop" if truth.message.stop_reason == "tool_use" else expected_finish(truth)
    assert read.finish_reason == expected
    completion, _ = read_with_stream_helper("".join(out))
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["sdkpy_tool_use_response.sse", "vercel_thinking_signature.jsonl", SPLICED])
async def test_overrides_appear_on_every_chunk(name: str) -> None:
    out = await process(load_events(name), message_id="chatcmpl-custom-1", model="gpt-4o", created=1234567890)
    chunks = chunks_of(out)
    assert chunks
    for chunk in chunks:
        assert (chunk["id"], chunk["model"], chunk["created"]) == ("chatcmpl-custom-1", "gpt-4o", 1234567890)
    if name != SPLICED:
        completion, _ = read_with_stream_helper("".join(out))
        assert (completion.id, completion.model, completion.created) == (
            "chatcmpl-custom-1",
            "gpt-4o",
            1234567890,
        )


@pytest.mark.asyncio
async def test_default_created_is_now() -> None:
    before = int(time.time())
    out = await process(load_events("vercel_text.jsonl"))
    assert before <= chunks_of(out)[0]["created"] <= int(time.time()) + 1


def as_sdk_event(event: dict[str, Any]) -> Any:
    """The anthropic SDK's event object for ``event``; events it has no type for stay dicts."""
    try:
        if event["type"] == "message_start":
            return anthropic.types.RawMessageStartEvent.model_validate(event)
        return RAW_EVENT.validate_python(event)
    except pydantic.ValidationError:
        return event


@pytest.mark.asyncio
@pytest.mark.parametrize("name", RECORDINGS)
async def test_anthropic_sdk_event_objects_are_accepted(name: str) -> None:
    events = load_events(name)
    objects = [as_sdk_event(e) for e in events]
    assert isinstance(objects[0], pydantic.BaseModel)
    assert await process(objects, created=CREATED) == await process(events, created=CREATED)


ERROR_EVENT = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def cut_after_first_text_delta(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    at = next(i for i, e in enumerate(events) if e["type"] == "content_block_delta")
    return events[: at + 1]


@pytest.mark.asyncio
@pytest.mark.parametrize("as_objects", [False, True])
async def test_anthropic_error_event_mid_stream(as_objects: bool) -> None:
    events = [*cut_after_first_text_delta(load_events("vercel_text.jsonl")), ERROR_EVENT]
    rest = load_events("vercel_text.jsonl")[len(events) - 1 :]  # what follows is ignored
    source: list[Any] = events + rest
    if as_objects:
        source = [anthropic.types.RawMessageStartEvent.model_validate(source[0]), *source[1:]]
    out = await process(source)
    error = assert_in_band_error(out, "upstream_error", "overloaded_error")
    assert error["message"] == "Overloaded"
    assert content_pieces(out)  # what came before the error was sent
    assert_sdk_raises_api_error(out, "Overloaded")


@pytest.mark.asyncio
async def test_source_that_raises_mid_stream() -> None:
    events = cut_after_first_text_delta(load_events("sdkpy_tool_use_response.sse"))
    closed = []

    async def failing() -> AsyncIterator[dict[str, Any]]:
        try:
            for event in events:
                yield event
            raise ConnectionResetError("peer went away")
        finally:
            closed.append(True)

    out = [s async for s in OpenAIStreamProcessor().process_stream(failing())]
    error = assert_in_band_error(out, "upstream_error")
    assert error["message"] == "reading the upstream failed: ConnectionResetError: peer went away"
    assert closed == [True]
    assert_sdk_raises_api_error(out, error["message"])


@pytest.mark.asyncio
async def test_source_that_ends_before_message_stop_is_a_truncation() -> None:
    events = load_events("otel_text_then_parallel_tool_use_args.sse")
    at = next(i for i, e in enumerate(events) if e["type"] == "message_delta")
    out = await process(events[:at])
    error = assert_in_band_error(out, "upstream_truncated")
    assert_sdk_raises_api_error(out, error["message"])


@pytest.mark.asyncio
async def test_processors_run_concurrently_without_sharing_state() -> None:
    a, b = (
        load_events("otel_text_then_parallel_tool_use_args.sse"),
        load_events("vercel_thinking_signature.jsonl"),
    )
    alone = [await process(a, created=CREATED), await process(b, created=CREATED)]

    async def slow(events: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        for event in events:
            await asyncio.sleep(0)
            yield event

    async def run(events: list[dict[str, Any]]) -> list[str]:
        return [s async for s in OpenAIStreamProcessor(created=CREATED).process_stream(slow(events))]

    assert list(await asyncio.gather(run(a), run(b))) == alone


@pytest.mark.parametrize(
    ("words", "error"), [(0, ValueError), (-1, ValueError), (True, TypeError), (2.5, TypeError)]
)
def test_bad_chunk_size_words(words: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        OpenAIStreamProcessor(chunk_size_words=words)


def test_bad_override_fails_at_construction() -> None:
    with pytest.raises(chunkline.OptionError):
        OpenAIStreamProcessor(created=1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The differences from ccproxy-api listed in docs/migrating-from-ccproxy.md, on small streams
# --------------------------------------------------------------------------------------------


def stream(
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]], stop_reason: str, **usage: Any
) -> list[Any]:
    """A hand-written Anthropic stream: ``blocks`` are (content_block, deltas); ``usage`` holds the
    message_start usage (``start``) and the message_delta usage (``delta``)."""
    start_usage = {"input_tokens": 10, "output_tokens": 1, **usage.get("start", {})}
    events: list[Any] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01Synthetic",
                "type": "message",
                "role": "assistant",
                "model": "claude-test-1",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
        {"type": "ping"},
    ]
    for index, (block, deltas) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    delta_usage = {"output_tokens": 42, **usage.get("delta", {})}
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": delta_usage,
        }
    )
    events.append({"type": "message_stop"})
    return events


def text(*pieces: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return {"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]


def tool(id_: str, name: str, *pieces: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    block = {"type": "tool_use", "id": id_, "name": name, "input": {}}
    return block, [{"type": "input_json_delta", "partial_json": p} for p in pieces]


@pytest.mark.asyncio
async def test_prompt_tokens_include_cached_tokens() -> None:
    events = stream(
        [text("Hi")],
        "end_turn",
        start={"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20},
    )
    read = read_with_create("".join(await process(events)))
    usage = read.finish_usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (130, 42, 172)
    assert usage.prompt_tokens_details.cached_tokens == 100
    # input counts on message_delta replace those of message_start (they are cumulative)
    events = stream([text("Hi")], "end_turn", delta={"input_tokens": 15, "cache_read_input_tokens": 5})
    usage = read_with_create("".join(await process(events))).finish_usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (20, 42)


@pytest.mark.asyncio
@pytest.mark.parametrize("words", [1, 2, 3])
async def test_word_chunking_keeps_whitespace_across_deltas(words: int) -> None:
    pieces = ["Hello", " wor", "ld,\n\nhow  are", " you?\t", "\n"]
    out = await process(stream([text(*pieces)], "end_turn"), chunk_size_words=words)
    assert "".join(content_pieces(out)) == "".join(pieces)  # ccproxy-api: "Helloworld,howareyou?"


@pytest.mark.asyncio
async def test_thinking_goes_to_reasoning_content_without_its_signature() -> None:
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [
        {"type": "thinking_delta", "thinking": "Let me "},
        {"type": "thinking_delta", "thinking": "think."},
        {"type": "signature_delta", "signature": "EqQBCkgIARABGAIiQL2sig=="},
    ]
    out = await process(stream([(thinking, deltas), text("Answer.")], "end_turn"))
    read = read_with_create("".join(out))
    assert (read.reasoning_content, read.content) == ("Let me think.", "Answer.")
    assert "EqQBCkgIARABGAIiQL2sig==" not in "".join(out)
    assert "<thinking" not in "".join(out)


@pytest.mark.asyncio
async def test_tool_calls_stream_once_each_with_their_own_index() -> None:
    server = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    events = stream(
        [
            text("Checking."),
            tool("toolu_A", "get_weather", '{"city":', ' "Paris"}'),
            (server, [{"type": "input_json_delta", "partial_json": '{"query": "x"}'}]),
            tool("toolu_B", "get_time"),
        ],
        "tool_use",
    )
    out = await process(events)
    tool_deltas = [
        tc for c in chunks_of(out) if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    # each id and name once (R16), arguments as they arrive, "{}" for a call without arguments
    assert tool_deltas == [
        {
            "index": 0,
            "id": "toolu_A",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 0, "function": {"arguments": ' "Paris"}'}},
        {"index": 1, "id": "toolu_B", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        {"index": 1, "function": {"arguments": "{}"}},
    ]
    read = read_with_create("".join(out))
    assert read.finish_reason == "tool_calls"
    assert read.tool_calls == {
        0: {"id": "toolu_A", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "toolu_B", "name": "get_time", "arguments": "{}"},
    }


@pytest.mark.asyncio
async def test_stream_model_and_id_are_used_by_default() -> None:
    chunks = chunks_of(await process(stream([text("x")], "end_turn")))
    assert {(c["id"], c["model"]) for c in chunks} == {("chatcmpl-msg_01Synthetic", "claude-test-1")}
    # the first chunk is OpenAI's: the role and an empty content
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


@pytest.mark.asyncio
async def test_pings_become_sse_comments() -> None:
    out = await process(stream([text("x")], "end_turn"))
    assert out.count(": ping\n\n") == 1
    assert not any('"ping"' in s for s in out)


@pytest.mark.asyncio
async def test_a_processor_can_be_reused() -> None:
    processor = OpenAIStreamProcessor(created=CREATED)
    events = stream([text("Hello there")], "end_turn")
    first = [s async for s in processor.process_stream(aiter_of(events))]
    second = [s async for s in processor.process_stream(aiter_of(events))]
    assert first == second


@pytest.mark.asyncio
async def test_tool_use_stop_without_a_tool_call_finishes_stop() -> None:
    read = read_with_create("".join(await process(stream([text("Let me check.")], "tool_use"))))
    assert (read.content, read.tool_calls, read.finish_reason) == ("Let me check.", {}, "stop")
