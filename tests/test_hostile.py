"""Hostile and malformed upstream input, end to end: bytes in, SSE out, and what the openai SDK then sees."""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import pytest

import chunkline
import harness
from chunkline.errors import describe, stream_error_for
from chunkline.events import TextDelta
from chunkline.stage import Stage, StageSpec
from faults import (
    DONE,
    PING_OUT,
    assert_client_error,
    error_body,
    events,
    orjson_error,
    split_output,
    sse,
)
from strategies import CREATED, block_events, message_delta, message_start, read_openai_stream

STOP = {"type": "message_stop"}
TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
BOM = b"\xef\xbb\xbf"

MSG = events(message_start())
OPEN = MSG + events(TEXT_START)  # role chunk sent, text block 0 open


def text_delta(text: str, index: int = 0) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


HI = OPEN + events(text_delta("Hi"))  # ... and "Hi" sent
CLOSE = events({"type": "content_block_stop", "index": 0}, message_delta(), STOP)
TRUNCATED = error_body(
    "the upstream stream ended before 'message_stop': the response is incomplete", "upstream_truncated"
)


def text_json(value: bytes) -> bytes:
    """The data of a text delta for block 0 whose ``text`` is the raw JSON ``value``."""
    return b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":' + value + b"}}"


def raw_text(value: bytes) -> bytes:
    return sse("content_block_delta", text_json(value))


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@dataclass(frozen=True)
class Case:
    """Input, and the outcome: ``error`` (the in-band error object) or else a normal ``finish``;
    ``content`` is the text the client holds when the stream ends either way."""

    data: bytes
    error: dict[str, Any] | None = None
    content: str = ""
    finish: str | None = None
    arguments: dict[int, str] | None = None


def malformed(payload: bytes, what: str = "malformed JSON", name: bytes = b"content_block_delta") -> Case:
    """``payload`` as one event after "Hi": the parse stage's error, quoting orjson and the data."""
    message = f"the upstream sent {what} in an event: {orjson_error(payload)}; data starts {payload[:80]!r}"
    return Case(HI + sse(name, payload) + CLOSE, error_body(message, "invalid_upstream_response"), "Hi")


def protocol(data: bytes, message: str, content: str = "Hi") -> Case:
    return Case(data, error_body(f"invalid upstream stream: {message}", "invalid_upstream_response"), content)


def harmless(data: bytes, content: str = "Hi", finish: str = "stop", **kw: Any) -> Case:
    return Case(data, None, content, finish, **kw)


def upstream(error: Any, message: str, code: str = "upstream_error", before: bytes = HI) -> Case:
    data = before + sse("error", json.dumps({"type": "error", "error": error})) + CLOSE
    return Case(data, error_body(message, "upstream_error", code), "Hi" if before == HI else "")


def undescribed(error: Any, code: str = "upstream_error") -> Case:
    event = {"type": "error", "error": error}
    return upstream(
        error, f"the upstream reported an error it did not describe: {describe(event, 300)}", code
    )


def named(name: bytes, kind: Any, payload: bytes, content: str = "Hi") -> Case:
    message = (
        f"an SSE event named {name.decode('utf-8', 'replace')!r} carries data of type {kind!r}; "
        "the event name and the data's type must agree"
    )
    return Case(
        HI + b"event: " + name + b"\ndata: " + payload + b"\n\n" + CLOSE,
        error_body(message, "invalid_upstream_response"),
        content,
    )


def nameless(before: bytes, payload: bytes, content: str) -> Case:
    message = (
        "an SSE event has data but no 'event:' line; the Anthropic stream names every event "
        f"(use input_format='jsonl' for bare JSON): {payload[:80]!r}"
    )
    return Case(before, error_body(message, "invalid_upstream_response"), content)


def tool_events(block: dict[str, Any], fragments: tuple[str, ...] | list[str] = ()) -> bytes:
    deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
    return events(message_start(), *block_events(0, block, deltas), message_delta("tool_use"), STOP)


PING = b'{"type":"ping"}'
START_JSON = json.dumps(message_start(), ensure_ascii=False).encode()
TEXT_START_JSON = json.dumps(TEXT_START, ensure_ascii=False).encode()
U64 = 2**64 - 1
DEEP_INPUT = json.loads(deep(300))

CASES: dict[str, Case] = {
    # -- UTF-8 (R53: an in-band error, never silently replaced) -----------------------------------
    "utf8-invalid-byte": malformed(text_json(b'"ok \xff ok"'), "invalid UTF-8"),
    "utf8-cut-sequence": malformed(text_json(b'"\xe6\x97"'), "invalid UTF-8"),
    "utf8-overlong": malformed(text_json(b'"\xc0\xaf"'), "invalid UTF-8"),
    "utf8-encoded-surrogate": malformed(text_json(b'"\xed\xa0\x80"'), "invalid UTF-8"),
    "utf8-above-u10ffff": malformed(text_json(b'"\xf4\x90\x80\x80"'), "invalid UTF-8"),
    "utf8-in-event-name": named(b"ping\xff", "ping", PING),
    "utf8-in-comment": harmless(HI + b": \xff\xfe not text\n" + CLOSE),
    "utf8-in-id-field": harmless(HI + b"event: ping\nid: \xff\ndata: " + PING + b"\n\n" + CLOSE),
    # -- BOM ---------------------------------------------------------------------------------------
    "bom-at-start": harmless(BOM + HI + CLOSE),
    "bom-twice-at-start": nameless(BOM + BOM + HI + CLOSE, START_JSON, ""),
    "bom-before-second-event": nameless(MSG + BOM + events(TEXT_START) + CLOSE, TEXT_START_JSON, ""),
    "bom-inside-text": harmless(HI + events(text_delta("a\ufeffb")) + CLOSE, "Hia\ufeffb"),
    "bom-before-json": malformed(BOM + PING, "invalid UTF-8", b"ping"),
    # -- NUL ---------------------------------------------------------------------------------------
    "nul-raw-in-string": malformed(text_json(b'"a\x00b"')),
    "nul-after-json": malformed(PING + b"\x00", name=b"ping"),
    "nul-escaped-in-text": harmless(HI + raw_text(b'"a\\u0000b"') + CLOSE, "Hia\x00b"),
    "nul-in-event-name": named(b"ping\x00", "ping", PING),
    "nul-in-comment": harmless(HI + b":\x00\x00\n" + CLOSE),
    "nul-only": Case(b"\x00" * 4096, TRUNCATED),
    # -- lone surrogate escapes: orjson rejects them, so none reaches the client --------------------
    "surrogate-lone-high": malformed(text_json(b'"\\ud800"')),
    "surrogate-lone-low": malformed(text_json(b'"\\udc00"')),
    "surrogate-high-then-letter": malformed(text_json(b'"\\ud800\\u0041"')),
    "surrogate-in-unknown-field": malformed(b'{"type":"ping","x":"\\udfff"}', name=b"ping"),
    "surrogate-pair": harmless(HI + raw_text(b'"\\ud83d\\ude00"') + CLOSE, "Hi\U0001f600"),
    "surrogate-text-in-arguments": harmless(
        tool_events({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}, ['{"a":"\\ud800"}']),
        "",
        "tool_calls",
        arguments={0: '{"a":"\\ud800"}'},
    ),
    # -- nesting (orjson accepts 1,024 levels) -----------------------------------------------------
    "deep-5000-unknown-field": malformed(b'{"type":"ping","x":' + deep(5000) + b"}", name=b"ping"),
    "deep-1024-unknown-field": malformed(b'{"type":"ping","x":' + deep(1024) + b"}", name=b"ping"),
    "deep-1023-unknown-field": harmless(HI + sse("ping", b'{"type":"ping","x":' + deep(1023) + b"}") + CLOSE),
    "deep-tool-input-200": harmless(
        tool_events(
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": json.loads(deep(200))}}
        ),
        "",
        "tool_calls",
        arguments={0: '{"a":' + deep(200).decode() + "}"},
    ),
    # 300 levels parse (orjson reads 1,024) but orjson.dumps stops at 254: see test_deep_values_*.
    "deep-arguments-text": harmless(
        tool_events({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}, ["[" * 5000]),
        "",
        "tool_calls",
        arguments={0: "[" * 5000},
    ),
    # -- huge numbers ------------------------------------------------------------------------------
    "index-1e400": malformed(
        b'{"type":"content_block_delta","index":1e400,"delta":{"type":"text_delta","text":"x"}}'
    ),
    "index-10**400": malformed(
        b'{"type":"content_block_delta","index":1'
        + b"0" * 400
        + b',"delta":{"type":"text_delta","text":"x"}}'
    ),
    "index-2**64": protocol(
        HI + events(text_delta("x", 2**64)) + CLOSE, "'index' must be an integer, not 1.8446744073709552e+19"
    ),
    "index-2**64-1": protocol(
        HI + events(text_delta("x", U64)) + CLOSE,
        "a delta for content block 18446744073709551615, which was never started",
    ),
    "index-negative": protocol(
        HI + events(text_delta("x", -1)) + CLOSE, "a delta for content block -1, which was never started"
    ),
    "usage-1e400": malformed(
        b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1e400}}',
        name=b"message_delta",
    ),
    "usage-2**64": protocol(
        HI + events(message_delta(usage={"output_tokens": 2**64})) + CLOSE,
        "usage 'output_tokens' must be a whole number from 0 to 2**53, not 1.8446744073709552e+19",
    ),
    # Counts past JSON's safe integers are not counts; they are refused even when usage is not
    # reported (it would overflow the sums the moment it was).
    "usage-2**64-1": protocol(
        HI + events(message_delta(usage={"output_tokens": U64, "input_tokens": U64})) + CLOSE,
        f"usage 'input_tokens' must be a whole number from 0 to 2**53, not {U64}",
    ),
    "unknown-field-1e400": malformed(b'{"type":"ping","x":1e400}', name=b"ping"),
    "unknown-field-10**400": malformed(b'{"type":"ping","x":-1' + b"0" * 400 + b"}", name=b"ping"),
    "unknown-field-1e308-and-2**70": harmless(
        HI + sse("ping", b'{"type":"ping","x":1e308,"y":' + str(2**70).encode() + b"}") + CLOSE
    ),
    # -- wrong JSON types for known fields ---------------------------------------------------------
    "index-string": protocol(
        HI + events(text_delta("x") | {"index": "0"}) + CLOSE, "'index' must be an integer, not '0'"
    ),
    "index-bool": protocol(
        HI + events(text_delta("x") | {"index": True}) + CLOSE, "'index' must be an integer, not True"
    ),
    "delta-list": protocol(
        HI + events({"type": "content_block_delta", "index": 0, "delta": []}) + CLOSE,
        "'delta' must be an object, not []",
    ),
    "text-int": protocol(
        HI
        + events({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}})
        + CLOSE,
        "'text' must be a string, not 5",
    ),
    "usage-list": protocol(
        HI + events({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": []}) + CLOSE,
        "'usage' must be an object, not []",
    ),
    "message-null": protocol(
        events({"type": "message_start", "message": None}), "'message' must be an object, not None", ""
    ),
    "content-block-string": protocol(
        MSG + events({"type": "content_block_start", "index": 0, "content_block": "text"}),
        "'content_block' must be an object, not 'text'",
        "",
    ),
    "stop-reason-int": protocol(
        HI + events({"type": "message_delta", "delta": {"stop_reason": 5}}) + CLOSE,
        "stop_reason must be a string, not 5",
    ),
    "partial-json-object": protocol(
        MSG
        + events(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "f"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": {}},
            },
        ),
        "'partial_json' must be a string, not {}",
        "",
    ),
    "type-int": named(b"ping", 5, b'{"type":5}'),
    # -- events out of order -----------------------------------------------------------------------
    "delta-before-message-start": protocol(
        events(text_delta("x")), "received 'content_block_delta' before 'message_start'", ""
    ),
    "block-before-message-start": protocol(
        events(TEXT_START), "received 'content_block_start' before 'message_start'", ""
    ),
    "message-delta-before-start": protocol(
        events(message_delta()), "received 'message_delta' before 'message_start'", ""
    ),
    "message-stop-before-start": protocol(events(STOP), "received 'message_stop' before 'message_start'", ""),
    "second-message-start": protocol(
        HI + MSG + CLOSE, "a second 'message_start' arrived before 'message_stop'"
    ),
    "block-started-twice": protocol(HI + events(TEXT_START) + CLOSE, "content block 0 was started twice"),
    "block-stopped-twice": protocol(
        HI + events({"type": "content_block_stop", "index": 0}) + CLOSE,
        "a stop for content block 0, which was already stopped",
    ),
    "stop-never-started": protocol(
        HI + events({"type": "content_block_stop", "index": 3}) + CLOSE,
        "a stop for content block 3, which was never started",
    ),
    "delta-after-block-stop": protocol(
        HI + events({"type": "content_block_stop", "index": 0}, text_delta("x")),
        "a delta for content block 0, which was already stopped",
    ),
    "delta-on-wrong-block": protocol(
        HI
        + events(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{"},
            }
        ),
        "a 'input_json_delta' for content block 0, a 'text' block",
    ),
    "message-stop-with-block-open": harmless(HI + events(message_delta(), STOP)),
    "block-after-message-delta": harmless(
        HI
        + events({"type": "content_block_stop", "index": 0}, message_delta())
        + events(*block_events(1, {"type": "text", "text": ""}, [{"type": "text_delta", "text": "!"}]), STOP),
        "Hi!",
    ),
    "after-message-stop": harmless(
        HI + CLOSE + b"\xff garbage" + events(text_delta("late")) + b"data: x\n\n"
    ),
    # -- deltas for blocks that do not exist -------------------------------------------------------
    "delta-unknown-index": protocol(
        HI + events(text_delta("x", 5)) + CLOSE, "a delta for content block 5, which was never started"
    ),
    # -- error events of unexpected shapes ---------------------------------------------------------
    "error-well-formed": upstream(
        {"type": "overloaded_error", "message": "Overloaded"}, "Overloaded", "overloaded_error"
    ),
    "error-before-message-start": upstream(
        {"type": "api_error", "message": "Internal server error"}, "Internal server error", "api_error", b""
    ),
    "error-as-string": upstream("boom", "boom"),
    "error-as-list": undescribed([1, 2]),
    "error-null": undescribed(None),
    "error-empty-object": undescribed({}),
    "error-missing-message": undescribed({"type": "overloaded_error"}, "overloaded_error"),
    "error-message-int": undescribed({"type": "overloaded_error", "message": 5}, "overloaded_error"),
    "error-message-empty": undescribed({"type": "overloaded_error", "message": ""}, "overloaded_error"),
    "error-type-int-message-list": undescribed({"type": 5, "message": ["x"]}),
    "error-long-description": undescribed({"type": "api_error", "details": "d" * 1000}, "api_error"),
    "error-long-message": upstream(
        {"type": "api_error", "message": "m" * 100_000}, "m" * 100_000, "api_error"
    ),
    # -- SSE framing and names ---------------------------------------------------------------------
    "data-without-event-line": nameless(HI + b"data: " + PING + b"\n\n" + CLOSE, PING, "Hi"),
    "name-not-data-type": named(b"message_start", "ping", PING),
    "name-case-differs": named(b"PING", "ping", PING),
    "unknown-type-named-alike": harmless(HI + sse("hologram", b'{"type":"hologram"}') + CLOSE),
    "event-line-after-data": harmless(HI + b"data: " + PING + b"\nevent: ping\n\n" + CLOSE),
    "data-over-two-lines": harmless(HI + b'event: ping\ndata: {"type":\ndata: "ping"}\n\n' + CLOSE),
    "data-empty": malformed(b"", name=b"ping"),
    "data-json-list": Case(
        HI + b'event: ping\ndata: [{"type":"ping"}]\n\n' + CLOSE,
        error_body(
            'event data must be a JSON object, not list: b\'[{"type":"ping"}]\'', "invalid_upstream_response"
        ),
        "Hi",
    ),
    "data-json-string": Case(
        HI + b'event: ping\ndata: "ping"\n\n' + CLOSE,
        error_body("event data must be a JSON object, not str: b'\"ping\"'", "invalid_upstream_response"),
        "Hi",
    ),
    "cr-line-endings": harmless((HI + CLOSE).replace(b"\n", b"\r")),
    "lines-without-colons-only": Case(b"hello world\n\nnothing here\n\n", TRUNCATED),
    "junk-then-eof": Case(HI + b'event: content_block_delta\ndata: {"type":', TRUNCATED, "Hi"),
}


def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options)


DEFAULT = pipeline()


def in_pieces(data: bytes, size: int) -> list[bytes]:
    conversion = DEFAULT.open()
    out: list[bytes] = []
    for start in range(0, len(data), size):
        out += conversion.feed(data[start : start + size])
    return out + conversion.close()


def content_of(outputs: list[bytes]) -> str:
    return read_openai_stream([*outputs, DONE], check=False).text


@pytest.mark.parametrize("name", CASES)
def test_hostile_input_end_to_end(name: str) -> None:
    case = CASES[name]
    out = DEFAULT.convert(case.data)
    assert in_pieces(case.data, 7) == out, "the outcome depends on how the input is split"
    wire = b"".join(out)
    if case.error is None:
        stream = read_openai_stream(out)
        assert stream.error is None, stream.error
        assert stream.finish_reason == case.finish and stream.text == case.content
        for consumer in ("create", "helper"):
            seen = harness.CONSUMERS[consumer](wire)
            assert seen.finish_reason == case.finish and (seen.content or "") == case.content, consumer
            if case.arguments is not None:
                assert {i: c.arguments for i, c in enumerate(seen.tool_calls)} == case.arguments
        return
    read_openai_stream(out)  # one valid OpenAI stream: chunks, then exactly one error, then [DONE]
    body, error = split_output(out)
    assert error == case.error
    assert content_of(body) == case.content
    assert_client_error(wire, error, content=case.content)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.error is not None])
def test_hostile_input_with_on_error_raise(name: str) -> None:
    case = CASES[name]
    assert case.error is not None
    body, _ = split_output(DEFAULT.convert(case.data))
    with pytest.raises(chunkline.StreamError) as caught:
        pipeline(on_error="raise").convert(case.data)
    raised = caught.value
    assert type(raised) is type(stream_error_for(case.error["type"], ""))
    # The in-band event's code is the exception's code, or its type when it has none.
    assert (raised.type, raised.message, raised.code or raised.type) == (
        case.error["type"],
        case.error["message"],
        case.error["code"],
    )
    assert raised.output == body


def test_a_bom_at_the_start_changes_nothing_however_it_arrives() -> None:
    plain = DEFAULT.convert(HI + CLOSE)
    assert DEFAULT.convert(BOM + HI + CLOSE) == plain
    assert in_pieces(BOM + HI + CLOSE, 1) == plain


def test_the_table_covers_every_group() -> None:
    groups = {name.split("-")[0] for name in CASES}
    for group in ("utf8", "bom", "nul", "surrogate", "deep", "index", "usage", "error", "data", "delta"):
        assert group in groups, group
    assert sum(c.error is None for c in CASES.values()) >= 19 and len(CASES) >= 80


# -- bugs found here: faults that are not the upstream's, and values too deep or too big to echo ----


def test_deep_values_in_known_fields_are_reported_as_the_upstreams_fault() -> None:
    # orjson reads 1,024 levels; Python's repr stops near 1,000. Quoting such a value in the error
    # message must not turn the upstream's fault into an internal_error (RecursionError).
    # The three levels around the value (event, delta, field) keep the whole event within 1,024.
    for depth in (1000, 1019):
        for data, type_, prefix in (
            (
                HI + raw_text(deep(depth)) + CLOSE,
                "invalid_upstream_response",
                "invalid upstream stream: 'text'",
            ),
            (
                HI
                + sse(
                    "content_block_delta",
                    b'{"type":"content_block_delta","index":' + deep(depth) + b',"delta":{}}',
                ),
                "invalid_upstream_response",
                "invalid upstream stream: 'index'",
            ),
            (
                HI + sse("error", b'{"type":"error","error":{"type":"x","details":' + deep(depth) + b"}}"),
                "upstream_error",
                "the upstream reported an error it did not describe",
            ),
        ):
            body, error = split_output(DEFAULT.convert(data))
            assert (error["type"], error["message"][: len(prefix)]) == (type_, prefix), (depth, error)
            assert len(error["message"]) <= 400
            assert content_of(body) == "Hi"


def test_a_huge_wrong_value_is_not_echoed_whole() -> None:
    # Other messages quote 80 characters of a wrong value; 'index' (and usage counts) quote it all.
    big = [0] * 100_000
    for event in (
        text_delta("x") | {"index": big},
        message_delta(usage={"output_tokens": big}),  # type: ignore[dict-item]
    ):
        _, error = split_output(DEFAULT.convert(HI + events(event) + CLOSE))
        assert error["type"] == "invalid_upstream_response"
        assert len(error["message"]) <= 400, len(error["message"])


def test_deep_tool_input_in_the_start_block_is_sent_as_arguments() -> None:
    # 300 levels are valid JSON the API may send as a complete tool input; the anthropic SDK reads
    # it. It must reach the client as the call's arguments, not fail re-serialisation as a
    # "malformed 'content_block_stop' event".
    data = tool_events({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": DEEP_INPUT}})
    stream = read_openai_stream(DEFAULT.convert(data))
    assert stream.error is None, stream.error
    assert stream.finish_reason == "tool_calls"
    assert json.loads(stream.tool_calls[0]["arguments"]) == {"a": DEEP_INPUT}


@pytest.mark.parametrize("usage", ["chunk", "final"])
def test_usage_counts_past_64_bits_never_give_a_finish_and_an_error(usage: str) -> None:
    # 2**64-1 is an integer orjson reads; the sums (prompt + completion) do not fit 64 bits.
    data = HI + events(message_delta(usage={"output_tokens": U64, "input_tokens": U64})) + CLOSE
    out = pipeline(include_usage=True, usage=usage).convert(data)
    stream = read_openai_stream(out)  # exactly one finish or one error, then [DONE]
    if stream.error is None:
        reported = stream.usage_chunks[0]["usage"] if usage == "chunk" else stream.finish_chunks[0]["usage"]
        assert (reported["prompt_tokens"], reported["completion_tokens"], reported["total_tokens"]) == (
            U64,
            U64,
            2 * U64,
        )
    else:
        assert stream.finish_chunks == [] and stream.error["type"] == "invalid_upstream_response"
        assert "usage" in stream.error["message"]


class Failing(Stage):
    """A stage with a bug: it passes each text delta on, then raises ``error``."""

    handles = (TextDelta,)
    error: type[Exception] = ValueError

    def __init__(self, options: Any) -> None:
        pass

    def feed(self, item: Any) -> None:
        self.emit(item)
        raise self.error("stage bug")


@pytest.mark.parametrize(
    "data",
    [
        HI + CLOSE,  # text delta event: the decoder's fast path
        MSG + events({**TEXT_START, "content_block": {"type": "text", "text": "Hi"}}) + CLOSE,  # start text
        MSG
        + events(
            TEXT_START,
            {"type": "content_block_delta", "index": 0, "delta": {"text": "Hi", "type": "text_delta"}},
        ),
    ],
    ids=["delta-fast-path", "start-block-text", "delta-keys-reordered"],
)
@pytest.mark.parametrize("exception", [ValueError, TypeError, KeyError, RuntimeError])
def test_a_failing_stage_is_an_internal_error_not_the_upstreams_fault(
    data: bytes, exception: type[Exception]
) -> None:
    # The decoder must not take a later stage's exception for a malformed upstream event (nor
    # retry the event, sending its text twice).
    failing = type("Failing", (Failing,), {"error": exception})
    stages = list(chunkline.DEFAULT_STAGES)
    stages.insert(stages.index("decode") + 1, StageSpec("failing", failing))  # type: ignore[arg-type]
    out = chunkline.Pipeline(stages=stages, created=CREATED).convert(data)
    body, error = split_output(out)
    shown = "'stage bug'" if exception is KeyError else "stage bug"
    assert error == error_body(f"stage 'failing' failed: {exception.__name__}: {shown}", "internal_error")
    assert content_of(body) == "Hi"


def test_a_stage_failing_at_close_is_an_internal_error() -> None:
    class FailsAtClose(Failing):
        handles = ()

        def close(self) -> None:
            raise RuntimeError("close bug")

    stages = [
        *chunkline.DEFAULT_STAGES[:1],
        StageSpec("closing", FailsAtClose),
        *chunkline.DEFAULT_STAGES[1:],
    ]
    out = chunkline.Pipeline(stages=stages, created=CREATED).convert(HI)
    body, error = split_output(out)
    assert error == error_body("stage 'closing' failed: RuntimeError: close bug", "internal_error")
    assert content_of(body) == "Hi"
    assert_client_error(b"".join(out), error, content="Hi")


# -- endless input ---------------------------------------------------------------------------------

PING_EVENT = b'event: ping\ndata: {"type": "ping"}\n\n'
READ = 64 * 1024


def _feed_pings(conversion: Any, count: int, traced: bool) -> tuple[int, int]:
    """Feed ``count`` pings in 64 KiB reads, checking each gives one ``: ping``; with ``traced``,
    return the traced memory kept afterwards and the peak while feeding (bytes over the start)."""
    per_read = READ // len(PING_EVENT)
    read = PING_EVENT * per_read
    if traced:
        tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        while count:
            n = min(per_read, count)
            assert conversion.feed(read if n == per_read else PING_EVENT * n) == [PING_OUT] * n
            count -= n
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - baseline, peak - baseline


def test_a_million_pings_keep_memory_constant() -> None:
    conversion = DEFAULT.open()
    out = conversion.feed(MSG)
    started = time.perf_counter()
    first = _feed_pings(conversion, 50_000, traced=True)
    _feed_pings(conversion, 900_000, traced=False)
    last = _feed_pings(conversion, 50_000, traced=True)
    elapsed = time.perf_counter() - started
    tail = conversion.close()
    for kept, peak in (first, last):
        assert kept < 4 * 1024, kept  # nothing accumulates per ping
        assert peak < 512 * 1024, peak  # one read's outputs at a time
    assert len(out) == 1
    assert tail == [
        b"data: " + json.dumps({"error": TRUNCATED}, separators=(",", ":")).encode() + b"\n\n",
        DONE,
    ]
    assert_client_error(b"".join([*out, PING_OUT * 3, *tail]), TRUNCATED)
    print(f"1,000,000 pings in {elapsed:.1f}s; (kept, peak) first {first}, last {last}", file=sys.stderr)


def test_endless_blank_lines_buffer_nothing() -> None:
    conversion = DEFAULT.open()
    out = conversion.feed(HI)
    reads = (b"\n" * READ, b"\r\n" * (READ // 2), b"\r" * READ) * 40  # 7.5 MiB
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for read in reads:
            assert conversion.feed(read) == []
        kept = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert kept < 4 * 1024
    body, error = split_output(out + conversion.close())
    assert error == TRUNCATED and content_of(body) == "Hi"


# -- the fuzz harness ------------------------------------------------------------------------------


def test_the_fuzz_harness_passes_its_own_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    # fuzz/fuzz_pipeline.py's checks hold for every seed it starts from (the recordings under each
    # variant of each route that reads them), so a finding there is a finding in chunkline, not in
    # the harness.
    monkeypatch.syspath_prepend(str(harness.FIXTURES.parents[1] / "fuzz"))
    import fuzz_pipeline

    seeds = fuzz_pipeline.seeds()
    # 39 Anthropic recordings (14 of them JSON lines) and 1 hand-written; 17 chat recordings (5 of
    # them JSON lines) and 4 hand-written.
    assert len(seeds) == (39 + 1) * (6 + 4) + 14 * 2 + (17 + 4) * 4 + 5
    for data in seeds.values():
        fuzz_pipeline.check(data[: 64 * 1024])  # make fuzz passes -max_len=65536
