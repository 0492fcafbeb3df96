"""The Anthropic decoder: the protocol, its violations, unknown types, errors, model_dump() dicts."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)

import chunkline
from chunkline.events import (
    ErrorEvent,
    Finish,
    Ping,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseStart,
    TextDelta,
    TextEnd,
    TextStart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)
from chunkline.stage import Stage, StageSpec
from strategies import CREATED, block_events, encode_sse, message_delta, message_start, read_openai_stream

STOP = {"type": "message_stop"}
START = message_start()
TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}


@cache
def _pipeline(decode_only: bool) -> chunkline.Pipeline:
    if decode_only:
        return chunkline.Pipeline(stages=["decode"])
    stages = [name for name in chunkline.DEFAULT_STAGES if name != "parse"]
    return chunkline.Pipeline(stages=stages, created=CREATED, include_usage=True)


def decode(*events: dict[str, Any]) -> list[Any]:
    """The typed events a decode-only pipeline makes of ``events``."""
    conversion = _pipeline(True).open()
    out: list[Any] = []
    for event in events:
        out += conversion.feed(event)
    return out + conversion.close()


def convert(*events: dict[str, Any]) -> list[bytes]:
    """The default stages after parse, fed event dicts."""
    conversion = _pipeline(False).open()
    out: list[bytes] = []
    for event in events:
        out += conversion.feed(event)
    return out + conversion.close()


def protocol_error(*events: dict[str, Any]) -> ErrorEvent:
    """Assert ``events`` end in exactly one invalid_upstream_response error, in-band."""
    out = decode(*events)
    found = [item for item in out if isinstance(item, ErrorEvent)]
    assert len(found) == 1, out
    (error,) = found
    assert out[-1] is error, "nothing is decoded after a protocol error"
    assert error.type == "invalid_upstream_response" and error.message
    stream = read_openai_stream(convert(*events))
    assert stream.error is not None and stream.error["type"] == "invalid_upstream_response"
    assert stream.finish_chunks == []
    return error


def text_stream(*texts: str) -> list[dict[str, Any]]:
    deltas = [{"type": "text_delta", "text": t} for t in texts]
    return [START, *block_events(0, {"type": "text", "text": ""}, deltas), message_delta(), STOP]


# -- a normal stream -------------------------------------------------------------------------------


def test_a_normal_stream_decodes_to_neutral_events() -> None:
    out = decode(*text_stream("Hel", "", "lo"))
    assert out == [
        ResponseStart("msg_01", "claude-test-1"),
        UsageUpdate(input_tokens=10, output_tokens=1),
        TextStart(0),
        TextDelta(0, "Hel"),
        TextDelta(0, "lo"),
        TextEnd(0),
        UsageUpdate(output_tokens=5),
        Finish("stop", "end_turn", None),
    ]


def test_all_block_kinds() -> None:
    events = [
        START,
        *block_events(
            0,
            {"type": "thinking", "thinking": "", "signature": ""},
            [{"type": "thinking_delta", "thinking": "hmm"}, {"type": "signature_delta", "signature": "SIG"}],
        ),
        *block_events(1, {"type": "redacted_thinking", "data": "REDACTED"}),
        *block_events(
            2,
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
            [{"type": "input_json_delta", "partial_json": '{"a": 1}'}],
        ),
        message_delta("tool_use", {"output_tokens": 9}),
        STOP,
    ]
    out = decode(*events)
    assert out[2:-2] == [
        ReasoningStart(0),
        ReasoningDelta(0, "hmm"),
        ReasoningEnd(0, "SIG"),
        ReasoningStart(1, "REDACTED"),
        ReasoningEnd(1),
        ToolCallStart(2, "toolu_1", "f"),
        ToolCallDelta(2, '{"a": 1}'),
        ToolCallEnd(2),
    ]
    assert out[-1] == Finish("tool_calls", "tool_use", None)


def test_a_tool_call_that_streams_nothing_takes_its_start_input() -> None:
    events = [
        START,
        *block_events(0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}}),
        *block_events(1, {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}}),
        message_delta("tool_use"),
        STOP,
    ]
    out = decode(*events)
    assert out[2:6] == [
        ToolCallStart(0, "toolu_1", "f"),
        ToolCallDelta(0, '{"a":[1,2]}'),
        ToolCallEnd(0),
        ToolCallStart(1, "toolu_2", "g"),
    ]
    assert out[6] == ToolCallEnd(1), "an empty input is left to the tool-call stage ('{}')"


def test_text_in_the_start_block_is_text() -> None:
    events = [
        START,
        *block_events(0, {"type": "text", "text": "pre-"}, [{"type": "text_delta", "text": "x"}]),
    ]
    assert decode(*events)[3:5] == [TextDelta(0, "pre-"), TextDelta(0, "x")]


def test_pings_anywhere() -> None:
    ping = {"type": "ping"}
    out = decode(
        ping, START, ping, TEXT_START, ping, {"type": "content_block_stop", "index": 0}, ping, STOP, ping
    )
    assert out.count(Ping()) == 4  # the ping after message_stop is ignored


# -- order violations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        TEXT_START,
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
        {"type": "content_block_stop", "index": 0},
        message_delta(),
        STOP,
    ],
    ids=lambda e: e["type"],
)
def test_events_before_message_start_are_protocol_errors(event: dict[str, Any]) -> None:
    error = protocol_error(event, START, STOP)
    assert "message_start" in error.message


def test_unknown_events_and_pings_before_message_start_are_fine() -> None:
    out = decode({"type": "ping"}, {"type": "future_event", "x": 1}, *text_stream("ok"))
    assert not any(isinstance(item, ErrorEvent) for item in out)


def test_a_second_message_start_is_a_protocol_error() -> None:
    error = protocol_error(START, TEXT_START, START)
    assert "second" in error.message


def test_a_second_message_start_after_message_stop_is_ignored() -> None:
    out = decode(*text_stream("one"), *text_stream("two"))
    assert TextDelta(0, "two") not in out and isinstance(out[-1], Finish)


def test_a_delta_for_a_block_never_started() -> None:
    error = protocol_error(
        START, {"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "x"}}
    )
    assert "never started" in error.message


def test_a_delta_for_a_block_already_stopped() -> None:
    error = protocol_error(
        START,
        TEXT_START,
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
    )
    assert "already stopped" in error.message


def test_a_stop_for_a_block_never_started_or_stopped_twice() -> None:
    protocol_error(START, {"type": "content_block_stop", "index": 0})
    protocol_error(
        START,
        TEXT_START,
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_stop", "index": 0},
    )


def test_a_block_started_twice() -> None:
    error = protocol_error(START, TEXT_START, TEXT_START)
    assert "twice" in error.message
    protocol_error(START, TEXT_START, {"type": "content_block_stop", "index": 0}, TEXT_START)


@pytest.mark.parametrize(
    ("block", "delta"),
    [
        ({"type": "text", "text": ""}, {"type": "input_json_delta", "partial_json": "{}"}),
        ({"type": "text", "text": ""}, {"type": "thinking_delta", "thinking": "x"}),
        ({"type": "text", "text": ""}, {"type": "signature_delta", "signature": "x"}),
        ({"type": "tool_use", "id": "t", "name": "f", "input": {}}, {"type": "text_delta", "text": "x"}),
        ({"type": "thinking", "thinking": ""}, {"type": "text_delta", "text": "x"}),
        ({"type": "thinking", "thinking": ""}, {"type": "citations_delta", "citation": {}}),
        ({"type": "redacted_thinking", "data": "x"}, {"type": "thinking_delta", "thinking": "x"}),
    ],
    ids=lambda v: v["type"],
)
def test_a_delta_on_the_wrong_kind_of_block(block: dict[str, Any], delta: dict[str, Any]) -> None:
    protocol_error(
        START,
        {"type": "content_block_start", "index": 0, "content_block": block},
        {"type": "content_block_delta", "index": 0, "delta": delta},
    )


def test_server_tool_input_json_is_fine_and_dropped() -> None:
    events = [
        START,
        *block_events(
            0,
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            [{"type": "input_json_delta", "partial_json": '{"query": "x"}'}],
        ),
    ]
    out = decode(*events)
    assert out[2:-1] == [], "a block that means nothing to a client leaves nothing behind"
    assert out[-1].type == "upstream_truncated"


# -- wrong JSON types ------------------------------------------------------------------------------


def _delta(index: Any = 0, delta: Any = None) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": "x"} if delta is None else delta,
    }


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([TEXT_START, _delta(index="0")], id="index-string"),
        pytest.param([TEXT_START, _delta(index=0.0)], id="index-float"),
        pytest.param([TEXT_START, _delta(index=True)], id="index-bool"),
        pytest.param([TEXT_START, _delta(index=None)], id="index-null"),
        pytest.param([TEXT_START, {"type": "content_block_delta", "index": 0}], id="delta-missing"),
        pytest.param([TEXT_START, _delta(delta=[])], id="delta-list"),
        pytest.param([TEXT_START, _delta(delta="text_delta")], id="delta-string"),
        pytest.param([TEXT_START, _delta(delta={"type": "text_delta", "text": 5})], id="text-int"),
        pytest.param([TEXT_START, _delta(delta={"type": "text_delta", "text": None})], id="text-null"),
        pytest.param([TEXT_START, _delta(delta={"type": "text_delta"})], id="text-missing"),
        pytest.param([TEXT_START, _delta(delta={"type": "text_delta", "text": ["a"]})], id="text-list"),
        pytest.param(
            [{"type": "content_block_start", "index": "0", "content_block": {"type": "text"}}],
            id="start-index",
        ),
        pytest.param([{"type": "content_block_start", "index": 0, "content_block": []}], id="block-list"),
        pytest.param([{"type": "content_block_start", "index": 0}], id="block-missing"),
        pytest.param(
            [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": 5}}],
            id="start-text-int",
        ),
        pytest.param(
            [{"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "name": "f"}}],
            id="tool-id-missing",
        ),
        pytest.param(
            [
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "t", "name": 1},
                }
            ],
            id="tool-name-int",
        ),
        pytest.param(
            [
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": "{}"},
                }
            ],
            id="tool-input-string",
        ),
        pytest.param(
            [
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "t", "name": "f"},
                },
                _delta(delta={"type": "input_json_delta", "partial_json": {"a": 1}}),
            ],
            id="partial-json-object",
        ),
        pytest.param(
            [
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": ""},
                },
                _delta(delta={"type": "thinking_delta", "thinking": 1}),
            ],
            id="thinking-int",
        ),
        pytest.param([{"type": "content_block_stop", "index": "0"}], id="stop-index-string"),
        pytest.param([message_delta(usage={"output_tokens": "5"})], id="output-tokens-string"),
        pytest.param([message_delta(usage={"output_tokens": 1.5})], id="output-tokens-float"),
        pytest.param([message_delta(usage={"output_tokens": -1})], id="output-tokens-negative"),
        pytest.param(
            [message_delta(usage={"output_tokens": 1, "input_tokens": "9"})], id="input-tokens-string"
        ),
        pytest.param([message_delta(usage={"output_tokens": True})], id="output-tokens-bool"),
        pytest.param(
            [{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": [5]}], id="usage-list"
        ),
        pytest.param([{"type": "message_delta", "delta": {"stop_reason": 5}}], id="stop-reason-int"),
        pytest.param([{"type": "message_delta", "delta": None}], id="message-delta-null"),
        pytest.param([{"type": "message_delta"}], id="message-delta-missing"),
    ],
)
def test_wrong_json_types_are_protocol_errors(events: list[dict[str, Any]]) -> None:
    protocol_error(START, *events)


@pytest.mark.parametrize("key", ["id", "name"])
def test_a_tool_use_block_with_an_empty_id_or_name_is_a_protocol_error(key: str) -> None:
    # Found by make fuzz: an empty name went out as a tool call no client can call (R14 wants it
    # complete), and an empty id as one no tool result can answer, on every route.
    block = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}, key: ""}
    events = [*block_events(0, block), message_delta("tool_use"), {"type": "message_stop"}]
    error = protocol_error(START, *events)
    assert error.message == f"invalid upstream stream: {key!r} must be a non-empty string, not ''"
    responses = chunkline.Pipeline(target="openai-responses").convert(encode_sse([START, *events]))
    assert responses[-1].startswith(b"event: response.failed\n")


@pytest.mark.parametrize(
    "start",
    [
        {"type": "message_start"},
        {"type": "message_start", "message": []},
        {"type": "message_start", "message": {"model": "m"}},
        {"type": "message_start", "message": {"id": 1, "model": "m"}},
        {"type": "message_start", "message": {"id": "msg", "model": None}},
        message_start(usage={"input_tokens": "10", "output_tokens": 1}),
        message_start(usage="lots"),  # type: ignore[arg-type]
    ],
    ids=["no-message", "message-list", "no-id", "id-int", "model-null", "usage-string-count", "usage-string"],
)
def test_a_malformed_message_start(start: dict[str, Any]) -> None:
    protocol_error(start)


@pytest.mark.parametrize("kind", [None, 5, ["ping"]], ids=["null", "int", "list"])
def test_an_event_without_a_string_type(kind: Any) -> None:
    protocol_error(START, {"type": kind})
    protocol_error(START, {"no_type": True})


# -- unknown types ---------------------------------------------------------------------------------


def test_unknown_event_types_are_skipped() -> None:
    events = text_stream("a", "b")
    events[3:3] = [
        {"type": "message_annotation", "what": [1, 2]},
        {"type": "content_block_pause", "index": 0},
    ]
    out = decode(*events)
    assert [e for e in out if isinstance(e, TextDelta)] == [TextDelta(0, "a"), TextDelta(0, "b")]
    assert not any(isinstance(e, ErrorEvent) for e in out)


def test_unknown_block_types_are_other_and_their_deltas_dropped() -> None:
    events = [
        START,
        *block_events(
            0,
            {"type": "hologram", "text": "not text"},
            [
                {"type": "hologram_delta", "beam": 1},
                {"type": "text_delta", "text": "must not leak"},
                {"type": "input_json_delta", "partial_json": "{"},
            ],
        ),
        message_delta(),
        STOP,
    ]
    out = decode(*events)
    assert [type(e) for e in out[2:]] == [UsageUpdate, Finish], "the block leaves nothing behind"
    stream = read_openai_stream(convert(*events))
    assert stream.text == "" and stream.tool_calls == {} and stream.finish_reason == "stop"


def test_unknown_delta_types_on_known_blocks_are_skipped() -> None:
    events = text_stream("a")
    events.insert(3, _delta(delta={"type": "sparkle_delta", "sparkle": "*"}))
    events.insert(3, _delta(delta={"no_type": "x"}))
    events.insert(3, _delta(delta={"type": "citations_delta", "citation": {"type": "char_location"}}))
    out = decode(*events)
    assert [e for e in out if isinstance(e, TextDelta)] == [TextDelta(0, "a")]
    assert not any(isinstance(e, ErrorEvent) for e in out)


def test_empty_text_and_input_deltas_are_not_sent() -> None:
    events = [
        START,
        *block_events(0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": ""}]),
        *block_events(
            1,
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            [{"type": "input_json_delta", "partial_json": ""}],
        ),
        *block_events(2, {"type": "thinking", "thinking": ""}, [{"type": "thinking_delta", "thinking": ""}]),
    ]
    out = decode(*events)
    assert not any(isinstance(e, TextDelta | ToolCallDelta | ReasoningDelta) for e in out)


class EndsFirst(Stage):
    """A stage before the decoder that marks the conversion finished and then passes on an event
    tagged ``last`` (as a stage that holds events back and releases them late might)."""

    __slots__ = ()

    handles = (dict,)

    def feed(self, item: Any) -> None:
        if item.pop("last", False):
            self.conversion.finished = True
        self.emit(item)


@pytest.mark.parametrize(
    "block, delta",
    [
        ({"type": "thinking", "thinking": ""}, {"type": "thinking_delta", "thinking": "Hm"}),
        (
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            {"type": "input_json_delta", "partial_json": "{"},
        ),
    ],
    ids=["thinking (the fast path)", "tool call (the full path)"],
)
def test_a_delta_that_arrives_once_the_conversion_finished_is_not_sent(
    block: dict[str, Any], delta: dict[str, Any]
) -> None:
    stages = [StageSpec("ends_first", lambda options: EndsFirst()), "decode"]
    conversion = chunkline.Pipeline(stages=stages).open()
    out: list[Any] = []
    for event in [START, *block_events(0, block, [delta])[:1]]:
        out += conversion.feed(event)
    assert out[-1].__class__ in (ReasoningStart, ToolCallStart)
    assert conversion.feed({**_delta(delta=delta), "last": True}) == []


# -- error events ----------------------------------------------------------------------------------


def test_an_upstream_error_event() -> None:
    error_event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    out = decode(START, TEXT_START, _delta(), error_event, STOP)
    assert out[-1] == ErrorEvent("upstream_error", "Overloaded", "overloaded_error")
    wire = convert(START, TEXT_START, _delta(), error_event, STOP)
    stream = read_openai_stream(wire)
    assert stream.error == {
        "message": "Overloaded",
        "type": "upstream_error",
        "param": None,
        "code": "overloaded_error",
    }
    assert stream.text == "x" and stream.finish_chunks == [] and stream.usage_chunks == []


def test_an_upstream_error_before_message_start() -> None:
    error_event = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    stream = read_openai_stream(convert(error_event))
    assert stream.error is not None
    assert (stream.error["type"], stream.error["code"]) == ("upstream_error", "api_error")
    assert stream.chunks == []


@pytest.mark.parametrize(
    "event",
    [
        {"type": "error"},
        {"type": "error", "error": None},
        {"type": "error", "error": "boom"},
        {"type": "error", "error": {}},
        {"type": "error", "error": {"type": 5, "message": ["x"]}},
        {"type": "error", "error": {"message": "no type"}},
        {"type": "error", "error": {"type": "rate_limit_error"}},
        {"type": "error", "error": [1, 2]},
    ],
    ids=["bare", "null", "string", "empty", "wrong-types", "no-type", "no-message", "list"],
)
def test_upstream_errors_of_unexpected_shapes_still_end_the_stream(event: dict[str, Any]) -> None:
    out = decode(START, event)
    error = out[-1]
    assert isinstance(error, ErrorEvent) and error.type == "upstream_error"
    assert isinstance(error.message, str) and error.message
    assert isinstance(error.code, str) and error.code
    stream = read_openai_stream(convert(START, event))
    assert stream.error is not None and stream.error["type"] == "upstream_error"
    if isinstance(event.get("error"), dict) and isinstance(event["error"].get("type"), str):
        assert stream.error["code"] == event["error"]["type"]
    if event.get("error") == "boom":
        assert stream.error["message"] == "boom"


# -- model_dump() dicts (R47) ----------------------------------------------------------------------


def _dumped(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_validate(data).model_dump()
    return dumped


def test_model_dump_dicts_with_none_fields() -> None:
    events = [
        _dumped(
            RawMessageStartEvent,
            message_start(usage={"input_tokens": 20, "output_tokens": 1, "cache_read_input_tokens": 4}),
        ),
        _dumped(RawContentBlockStartEvent, TEXT_START),
        _dumped(RawContentBlockDeltaEvent, _delta(delta={"type": "text_delta", "text": "hi"})),
        _dumped(RawContentBlockStopEvent, {"type": "content_block_stop", "index": 0}),
        _dumped(
            RawContentBlockStartEvent,
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}},
            },
        ),
        _dumped(
            RawContentBlockDeltaEvent, _delta(1, {"type": "input_json_delta", "partial_json": '{"q": 1}'})
        ),
        _dumped(RawContentBlockStopEvent, {"type": "content_block_stop", "index": 1}),
        _dumped(RawMessageDeltaEvent, message_delta("tool_use", {"output_tokens": 30})),
        _dumped(RawMessageStopEvent, STOP),
    ]
    assert events[7]["usage"]["input_tokens"] is None  # the point of the test
    assert events[0]["message"]["usage"]["cache_creation_input_tokens"] is None
    stream = read_openai_stream(convert(*events))
    assert stream.error is None and stream.text == "hi" and stream.finish_reason == "tool_calls"
    assert stream.tool_calls[0] == {"id": "toolu_9", "name": "f", "arguments": '{"q": 1}', "type": "function"}
    # None in message_delta keeps message_start's value (R47).
    assert stream.usage_chunks[0]["usage"]["prompt_tokens"] == 24
    assert stream.usage_chunks[0]["usage"]["completion_tokens"] == 30


def test_usage_fields_may_be_absent_or_null() -> None:
    out = decode(
        message_start(usage={"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": None}),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": None},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": None}},
        STOP,
    )
    assert not any(isinstance(e, ErrorEvent) for e in out)
    assert UsageUpdate(input_tokens=3, output_tokens=1) in out
    assert out.count(Finish("stop", "end_turn", None)) == 1


def test_thinking_tokens_are_read_from_output_tokens_details() -> None:
    out = decode(
        START, message_delta(usage={"output_tokens": 50, "output_tokens_details": {"thinking_tokens": 20}})
    )
    assert UsageUpdate(output_tokens=50, reasoning_tokens=20) in out


# -- server tools and MCP (R28) --------------------------------------------------------------------

SERVER_BLOCKS = [
    ("server_tool_use", True),
    ("mcp_tool_use", True),
    ("web_search_tool_result", False),
    ("web_fetch_tool_result", False),
    ("code_execution_tool_result", False),
    ("bash_code_execution_tool_result", False),
    ("text_editor_code_execution_tool_result", False),
    ("tool_search_tool_result", False),
    ("mcp_tool_result", False),
    ("mcp_tool_listing", False),
    ("container_upload", False),
    ("advisor_tool_result", False),
    ("compaction", False),
    ("fallback", False),
]


@pytest.mark.parametrize(("block_type", "has_input"), SERVER_BLOCKS, ids=[b for b, _ in SERVER_BLOCKS])
def test_server_and_mcp_blocks_never_become_tool_calls_or_content(block_type: str, has_input: bool) -> None:
    block: dict[str, Any] = {"type": block_type, "id": "srvtoolu_1", "name": "web_search", "input": {}}
    if not has_input:
        block = {
            "type": block_type,
            "tool_use_id": "srvtoolu_1",
            "content": [{"type": "text", "text": "leak?"}],
        }
    deltas = [
        {"type": "input_json_delta", "partial_json": '{"query": "leak?"}'},
        {"type": "text_delta", "text": "leak?"},
        {"type": "compaction_delta", "content": "leak?"},
    ]
    events = [START, *block_events(0, block, deltas), message_delta("tool_use"), STOP]
    out = decode(*events)
    assert [type(e) for e in out[2:]] == [UsageUpdate, Finish], "the block leaves nothing behind"
    wire = convert(*events)
    stream = read_openai_stream(wire)
    assert stream.tool_calls == {} and stream.text == ""
    assert stream.finish_reason == "stop"  # tool_use without a client tool call (R24)
    assert b"leak?" not in b"".join(wire)
