"""SDK conformance: each recording converted, read by the openai SDK, checked against the anthropic SDK."""

from __future__ import annotations

import functools
import json
from typing import Any

import openai
import pytest

import harness
from chunkline.builtins.finish import DEFAULT_FINISH_REASONS

PATHS = {p.name: p for p in harness.fixture_paths()}

# Recordings that break the Anthropic protocol. chunkline must end them with one in-band error event
# (R41 shape, type per R54) and [DONE], never with a finish; the openai SDK then raises APIError.
PROTOCOL_VIOLATIONS = {
    # vercel/ai's hand-made edge case: a second message_start arrives mid-stream, before the first
    # response's message_stop (R52: a protocol violation, reported in-band).
    "vercel_spliced_message_start_thinking_tool.jsonl": "invalid_upstream_response",
}

# Recordings holding several responses back to back (vercel/ai records a multi-step run in one file).
# A converter reports the first response and ignores everything after its message_stop (R52), so the
# ground truth is the anthropic SDK's reading of that first response (harness.first_response).
MULTI_RESPONSE = {"vercel_programmatic_tool_calling.jsonl"}

# Recordings stored without a line break after their last line (message_stop). Verbatim, that line
# is cut, so by R51 the converter must report a truncation; the conformance tests read them as the API
# sent them, with the line break and blank line back (harness.load_complete_sse).
UNTERMINATED = {
    "sdkpy_basic_response.sse",
    "sdkpy_incomplete_partial_json_max_tokens.sse",
    "sdkpy_tool_use_response.sse",
}

CONFORMING = sorted(name for name in PATHS if name not in PROTOCOL_VIOLATIONS)
CONSUMERS = sorted(harness.CONSUMERS)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "pause_turn": "length",
    "compaction": "stop",
}
FINISH_ERRORS = {
    "length": openai.LengthFinishReasonError,
    "content_filter": openai.ContentFilterFinishReasonError,
}
DELTA_FIELDS = {"role", "content", "reasoning_content", "reasoning", "tool_calls", "refusal"}

OVERLOADED = (
    b"event: error\n"
    b'data: {"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"},'
    b'"request_id":"req_011CTestOverloaded"}\n\n'
)


@functools.cache
def sse_of(name: str) -> bytes:
    return harness.load_complete_sse(PATHS[name])


@functools.cache
def truth_of(name: str) -> harness.AnthropicTruth:
    return harness.anthropic_truth(sse_of(name))


@functools.cache
def output_of(name: str, **options: Any) -> bytes:
    return harness.convert(sse_of(name), **options)


def blocks_of(name: str) -> set[str]:
    """The content block types a recording's first response opens (read without the SDKs)."""
    events = harness.parse_anthropic_sse(harness.first_response(sse_of(name)))
    return {e.data["content_block"]["type"] for e in events if e.data.get("type") == "content_block_start"}


THINKING = [name for name in CONFORMING if "thinking" in blocks_of(name)]
SECRETS = [name for name in CONFORMING if blocks_of(name) & {"thinking", "redacted_thinking"}]


def expected_finish(truth: harness.AnthropicTruth) -> str:
    reason = FINISH_REASONS.get(truth.stop_reason or "", "stop")
    if reason == "tool_calls" and not truth.tool_calls:
        return "stop"  # R24: tool_calls only when a client tool call was streamed
    return reason


def expected_usage(truth: harness.AnthropicTruth) -> dict[str, Any]:
    usage = truth.message.usage
    cache_read = usage.cache_read_input_tokens or 0
    cache_creation = usage.cache_creation_input_tokens or 0
    prompt = usage.input_tokens + cache_read + cache_creation
    expected: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }
    if usage.output_tokens_details is not None:
        expected["completion_tokens_details"] = {
            "reasoning_tokens": usage.output_tokens_details.thinking_tokens
        }
    return expected


def chunks_and_errors(payloads: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    objects = [p for p in payloads if p != "[DONE]"]
    return [p for p in objects if "error" not in p], [p for p in objects if "error" in p]


# --------------------------------------------------------------------------------------------
# The fixture lists above describe the recordings
# --------------------------------------------------------------------------------------------


def test_fixture_lists_match_the_recordings() -> None:
    assert len(PATHS) >= 38
    assert set(PROTOCOL_VIOLATIONS) | MULTI_RESPONSE | UNTERMINATED <= set(PATHS)
    unterminated = {name for name, p in PATHS.items() if harness.is_unterminated(harness.load_sse(p))}
    assert unterminated == UNTERMINATED
    multi = {name for name in PATHS if harness.first_response(sse_of(name)) != sse_of(name)}
    assert multi == MULTI_RESPONSE
    assert THINKING and "pydai_redacted_thinking.sse" in SECRETS


# --------------------------------------------------------------------------------------------
# R21-R38: the message the client accumulates equals the anthropic SDK's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "usage"])
@pytest.mark.parametrize("name", CONFORMING)
def test_accumulated_message_matches_anthropic_sdk(name: str, include_usage: bool, consumer: str) -> None:
    truth = truth_of(name)
    output = output_of(name, include_usage=include_usage)
    got = harness.CONSUMERS[consumer](output, include_usage=include_usage)

    assert got.role == "assistant"
    assert got.content == truth.text  # R25/R26 (the role chunk's "" makes content a str always)
    assert got.reasoning_content == truth.thinking  # R29: absent when there is no thinking
    assert got.reasoning is None

    # R27/R28: client tool_use blocks only, in order; never server_tool_use / mcp_tool_use.
    assert len(got.tool_calls) == len(truth.tool_calls), [c.name for c in got.tool_calls]
    for call, want in zip(got.tool_calls, truth.tool_calls, strict=True):
        assert (call.id, call.type, call.name) == (want["id"], "function", want["name"])
        if want["closed"]:
            assert json.loads(call.arguments) == want["input"]  # R17/R27
        else:
            # the block was cut by max_tokens: its arguments are the fragments as streamed (R48)
            assert call.arguments == want["partial_json"]

    finish = expected_finish(truth)
    assert got.finish_reason == finish  # R22/R24
    if consumer == "create":
        assert got.raised is None
    else:
        assert got.raised is FINISH_ERRORS.get(finish)  # R23: length/content_filter not disguised
    if consumer == "helper":
        assert got.events.count("tool_calls.function.arguments.done") == len(truth.tool_calls)  # R14

    if include_usage:
        usage = dict(got.usage or {})
        details = dict(usage.get("prompt_tokens_details") or {})
        cache_write = details.pop("cache_write_tokens", None)  # R38 MAY
        if cache_write is not None:
            assert cache_write == (truth.message.usage.cache_creation_input_tokens or 0)
            usage["prompt_tokens_details"] = details
        assert usage == expected_usage(truth)  # R33-R38
    else:
        assert got.usage is None  # R36


# --------------------------------------------------------------------------------------------
# R1-R20, R33-R36, R40: the bytes on the wire
# --------------------------------------------------------------------------------------------


def check_wire(output: bytes, *, include_usage: bool, truth: harness.AnthropicTruth) -> None:
    assert b"\r" not in output  # R2: \n line endings
    events = harness.split_events(output)
    for event in events:
        assert b"\n" not in event, f"an event with more than one line: {event[:120]!r}"  # R3/R4
        assert event.startswith(b"data: ") or event == b": ping", event[:80]  # R4/R40: no event: lines
    assert events.count(b": ping") == truth.ping_count  # R40: each upstream ping is a comment

    data = [event[6:] for event in events if event.startswith(b"data: ")]
    assert data[-1] == b"[DONE]" and data.count(b"[DONE]") == 1  # R5
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(type(c) is dict for c in chunks)  # R3
    assert not any("error" in c for c in chunks)  # R41: normal chunks carry no error key

    first = chunks[0]
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"  # R1
        assert type(chunk["id"]) is str and type(chunk["model"]) is str
        assert type(chunk["created"]) is int  # R6
        assert type(chunk["choices"]) is list
        assert (chunk["id"], chunk["created"], chunk["model"]) == (
            first["id"],
            first["created"],
            first["model"],
        )  # R7
        assert "obfuscation" not in chunk and chunk.get("system_fingerprint") is None  # R20
        assert chunk.get("service_tier") in (None, "default", "priority")
    assert first["id"] == f"chatcmpl-{truth.message.id}" and first["model"] == truth.message.model  # R32

    if include_usage:
        *body, last = chunks
        assert last["choices"] == [] and type(last["usage"]) is dict  # R33/R34: usage chunk last
        for chunk in body:
            assert "usage" in chunk and chunk["usage"] is None  # R33
        usage = last["usage"]
        assert all(type(usage[k]) is int for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]  # R35
    else:
        body = chunks
        assert not any("usage" in chunk for chunk in chunks)  # R36: no usage key at all

    for chunk in body:
        assert len(chunk["choices"]) == 1  # R8
        choice = chunk["choices"][0]
        assert choice["index"] == 0 and type(choice["delta"]) is dict  # R8/R9
        assert "logprobs" in choice and choice["logprobs"] is None  # R9 SHOULD
        assert "finish_reason" in choice
        delta = choice["delta"]
        assert set(delta) <= DELTA_FIELDS, f"unexpected delta fields {set(delta) - DELTA_FIELDS}"  # R18
        for key in ("content", "reasoning_content", "reasoning", "refusal"):
            assert type(delta.get(key, "")) is str  # R11

    assert body[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # R10
    assert sum("role" in c["choices"][0]["delta"] for c in body) == 1  # R10: role exactly once

    finishing = [i for i, c in enumerate(body) if c["choices"][0]["finish_reason"] is not None]
    assert finishing == [len(body) - 1]  # R19: exactly one finish, after every delta
    assert body[-1]["choices"][0]["delta"] == {}
    assert body[-1]["choices"][0]["finish_reason"] in {"stop", "length", "tool_calls", "content_filter"}

    started: list[int] = []
    for chunk in body:
        calls = chunk["choices"][0]["delta"].get("tool_calls")
        if calls is None:
            continue
        assert type(calls) is list and calls  # R12: omitted rather than []
        indices = [call["index"] for call in calls]
        assert len(set(indices)) == len(indices)  # R13: one entry per index per chunk
        for call in calls:
            index = call["index"]
            assert type(index) is int  # R13
            if index not in started:
                assert index == len(started)  # R13: 0-based, contiguous, in order
                started.append(index)
                assert call["type"] == "function" and type(call["id"]) is str  # R14
                assert call["function"]["arguments"] == ""
                assert type(call["function"]["name"]) is str and call["function"]["name"]
                assert set(call) == {"index", "id", "type", "function"}
                assert set(call["function"]) == {"name", "arguments"}
            else:
                assert set(call) == {"index", "function"}  # R16: no repeated id/name
                assert set(call["function"]) == {"arguments"}  # R15
                assert type(call["function"]["arguments"]) is str  # R17
    assert len(started) == len(truth.tool_calls)


@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "usage"])
@pytest.mark.parametrize("name", CONFORMING)
def test_wire_rules(name: str, include_usage: bool) -> None:
    check_wire(
        output_of(name, include_usage=include_usage), include_usage=include_usage, truth=truth_of(name)
    )


def test_finish_reason_map_covers_conformance_r22() -> None:
    assert dict(DEFAULT_FINISH_REASONS) == FINISH_REASONS


# --------------------------------------------------------------------------------------------
# Recordings with special handling (see the lists at the top)
# --------------------------------------------------------------------------------------------


def assert_ends_in_error(output: bytes, error_type: str) -> dict[str, Any]:
    """R41/R43/R54: one in-band error event, then [DONE], and no finish chunk."""
    payloads = harness.data_payloads(output)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    chunks, errors = chunks_and_errors(payloads)
    assert len(errors) == 1 and payloads[-2] is errors[0], payloads[-3:]
    for chunk in chunks:
        for choice in chunk["choices"]:
            assert choice["finish_reason"] is None, "a finish was reported for a failed stream"
    error = errors[0]["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] is None
    assert error["type"] == error_type, error
    assert type(error["message"]) is str and error["message"]
    return error


def assert_sdk_raises(output: bytes, message: str | None = None) -> None:
    for consumer in CONSUMERS:
        with pytest.raises(openai.APIError) as caught:
            harness.CONSUMERS[consumer](output)
        assert type(caught.value) is openai.APIError, consumer
        if message is not None:
            assert caught.value.message == message, consumer


@pytest.mark.parametrize("name", sorted(PROTOCOL_VIOLATIONS))
def test_protocol_violation_ends_with_inband_error(name: str) -> None:
    output = output_of(name)
    assert_ends_in_error(output, PROTOCOL_VIOLATIONS[name])
    assert_sdk_raises(output)


@pytest.mark.parametrize("name", sorted(MULTI_RESPONSE))
def test_input_after_message_stop_is_ignored(name: str) -> None:
    whole = harness.convert(sse_of(name), created=harness.CREATED)
    first = harness.convert(harness.first_response(sse_of(name)), created=harness.CREATED)
    assert whole == first  # R52


@pytest.mark.parametrize("name", sorted(UNTERMINATED))
def test_unterminated_recording_is_a_truncation(name: str) -> None:
    verbatim = harness.load_sse(PATHS[name])
    output = harness.convert(verbatim)
    assert_ends_in_error(output, "upstream_truncated")  # R51: a line cut at EOF is never dispatched
    assert_sdk_raises(output)
    # Lines complete, only the closing blank line missing: R51 MAY dispatch, and chunkline does.
    assert harness.convert(verbatim + b"\n", created=harness.CREATED) == harness.convert(
        sse_of(name), created=harness.CREATED
    )


# --------------------------------------------------------------------------------------------
# R41/R54: an upstream error event mid-stream
# --------------------------------------------------------------------------------------------


def error_insert_points(name: str) -> dict[str, int]:
    events = harness.parse_anthropic_sse(harness.first_response(sse_of(name)))
    kinds = [e.data["type"] for e in events]
    stop = kinds.index("message_stop")
    return {"first": 0, "middle": events[stop // 2].end, "before_stop": events[stop].start}


@pytest.mark.parametrize("where", ["first", "middle", "before_stop"])
@pytest.mark.parametrize("name", CONFORMING)
def test_midstream_error_event(name: str, where: str) -> None:
    sse = sse_of(name)
    at = error_insert_points(name)[where]
    output = harness.convert(sse[:at] + OVERLOADED + sse[at:])
    error = assert_ends_in_error(output, "upstream_error")
    assert error == {
        "message": "Overloaded",
        "type": "upstream_error",
        "param": None,
        "code": "overloaded_error",
    }
    assert_sdk_raises(output, "Overloaded")


# --------------------------------------------------------------------------------------------
# R43/R51: input that ends before message_stop
# --------------------------------------------------------------------------------------------

CUTS = 10


@pytest.mark.parametrize("cut", range(CUTS))
@pytest.mark.parametrize("name", sorted(PATHS))
def test_truncated_stream_is_an_error(name: str, cut: int) -> None:
    sse = sse_of(name)
    end = harness.message_stop_line_end(sse)
    at = round(cut * end / (CUTS - 1))  # 0 .. end: up to the message_stop line without its line break
    output = harness.convert(sse[:at])
    allowed = {"upstream_truncated"} | ({PROTOCOL_VIOLATIONS[name]} if name in PROTOCOL_VIOLATIONS else set())
    payloads = harness.data_payloads(output)
    error_type = payloads[-2]["error"]["type"] if len(payloads) > 1 and "error" in payloads[-2] else None
    assert error_type in allowed, f"cut at byte {at} of {len(sse)}: {payloads[-2:]}"
    assert_ends_in_error(output, error_type)
    assert_sdk_raises(output)


# --------------------------------------------------------------------------------------------
# R29/R30: the thinking option
# --------------------------------------------------------------------------------------------


def tagged_content(truth: harness.AnthropicTruth) -> str:
    parts = []
    for block in truth.message.content:
        if block.type == "text":
            parts.append(block.text)
        elif block.type == "thinking" and block.thinking:
            parts.append(f"<think>{block.thinking}</think>")
    return "".join(parts)


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("name", THINKING)
def test_thinking_reasoning_field(name: str, consumer: str) -> None:
    truth = truth_of(name)
    got = harness.CONSUMERS[consumer](output_of(name, thinking="reasoning"))
    assert (got.content, got.reasoning, got.reasoning_content) == (truth.text, truth.thinking, None)


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("name", THINKING)
def test_thinking_tags(name: str, consumer: str) -> None:
    truth = truth_of(name)
    got = harness.CONSUMERS[consumer](output_of(name, thinking="tags"))
    assert got.content == tagged_content(truth)
    assert got.content.count("<think>") >= 1
    assert (got.reasoning, got.reasoning_content) == (None, None)


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("name", THINKING)
def test_thinking_drop(name: str, consumer: str) -> None:
    truth = truth_of(name)
    output = output_of(name, thinking="drop")
    got = harness.CONSUMERS[consumer](output)
    assert (got.content, got.reasoning, got.reasoning_content) == (truth.text, None, None)
    assert b'"reasoning' not in output


@pytest.mark.parametrize("mode", ["reasoning_content", "reasoning", "tags", "drop"])
@pytest.mark.parametrize("name", SECRETS)
def test_signatures_and_redacted_thinking_never_reach_the_client(name: str, mode: str) -> None:
    truth = truth_of(name)
    secrets = truth.signatures + truth.redacted
    assert secrets, "the recording has neither signatures nor redacted thinking"
    output = output_of(name, thinking=mode).decode()
    for secret in secrets:
        assert secret not in output  # R30 (nothing of them: no extension field by default either)
        assert secret[:40] not in output


# --------------------------------------------------------------------------------------------
# input_format="jsonl": the vercel/ai recordings read as they are stored
# --------------------------------------------------------------------------------------------

JSONL = sorted(name for name, path in PATHS.items() if path.suffix == ".jsonl")


@pytest.mark.parametrize("name", JSONL)
def test_jsonl_input_reads_like_sse(name: str) -> None:
    raw = PATHS[name].read_bytes()
    want = harness.convert(sse_of(name), created=harness.CREATED, include_usage=True)
    assert harness.convert(raw, input_format="jsonl", created=harness.CREATED, include_usage=True) == want


@pytest.mark.parametrize("cut", range(CUTS))
@pytest.mark.parametrize("name", JSONL)
def test_truncated_jsonl_is_an_error(name: str, cut: int) -> None:
    raw = PATHS[name].read_bytes()
    line = raw.index(b'"message_stop"')
    end = raw.index(b"}", line)  # a cut before the closing brace leaves message_stop incomplete
    at = round(cut * end / (CUTS - 1))
    output = harness.convert(raw[:at], input_format="jsonl")
    allowed = {"upstream_truncated"} | ({PROTOCOL_VIOLATIONS[name]} if name in PROTOCOL_VIOLATIONS else set())
    payloads = harness.data_payloads(output)
    assert "error" in payloads[-2], f"cut at byte {at} of {len(raw)}: {payloads[-2:]}"
    assert payloads[-2]["error"]["type"] in allowed
    assert_ends_in_error(output, payloads[-2]["error"]["type"])
    assert_sdk_raises(output)


# --------------------------------------------------------------------------------------------
# The harness itself, on real OpenAI streams: its three readings agree, and it sees the failure
# modes the rules are about
# --------------------------------------------------------------------------------------------


def openai_recording(path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".jsonl":  # vercel/ai records the data payloads only
        data = b"".join(b"data: " + line + b"\n\n" for line in data.splitlines() if line.strip())
        data += b"data: [DONE]\n\n"
    return data


OPENAI_RECORDINGS = {p.name: p for p in sorted(harness.OPENAI_FIXTURES.iterdir())}
# Recordings the single-choice harness cannot or must not read the same three ways:
OPENAI_SPECIAL = {
    "oaipy_n3_choices.sse",  # n=3: three choices; a converter only ever sends one (R8)
    "pydai_gpt5_reasoning_text_usage.sse",  # a chunk after the usage chunk wipes usage (R34)
    "vercel_anthropic_openai_compat_tool_call.sse",  # tool call index 1 with no index 0 (R13)
    "vercel_azure_model_router.jsonl",  # a filter-results chunk with object "" (R1)
}


def reading(acc: harness.Accumulated) -> tuple[Any, ...]:
    calls = [(c.id, c.type, c.name, c.arguments) for c in acc.tool_calls]
    return (acc.role, acc.content, acc.refusal, calls, acc.finish_reason, acc.usage)


@pytest.mark.parametrize("name", sorted(set(OPENAI_RECORDINGS) - OPENAI_SPECIAL))
def test_harness_readings_agree_on_real_openai_streams(name: str) -> None:
    data = openai_recording(OPENAI_RECORDINGS[name])
    readings = {c: reading(harness.CONSUMERS[c](data, include_usage=True)) for c in CONSUMERS}
    assert readings["create"] == readings["state"] == readings["helper"]
    assert readings["create"][0] == "assistant"


def test_harness_sees_usage_overwritten_by_a_later_chunk() -> None:
    data = openai_recording(OPENAI_RECORDINGS["pydai_gpt5_reasoning_text_usage.sse"])
    assert harness.openai_stream_create(data, include_usage=True).usage is not None
    assert harness.openai_stream_state(data, include_usage=True).usage is None  # R34
    assert harness.openai_stream_helper(data, include_usage=True).usage is None


def test_harness_sees_block_indices_used_as_tool_call_indices() -> None:
    # Anthropic's own OpenAI-compatible endpoint numbers the tool call after the text block (R13).
    data = openai_recording(OPENAI_RECORDINGS["vercel_anthropic_openai_compat_tool_call.sse"])
    for consumer in CONSUMERS:
        with pytest.raises((AssertionError, IndexError)):
            harness.CONSUMERS[consumer](data)


def test_harness_validates_strictly() -> None:
    # Azure's prompt-filter chunk has object "": strict validation rejects it (R1).
    data = openai_recording(OPENAI_RECORDINGS["vercel_azure_model_router.jsonl"])
    for consumer in CONSUMERS:
        with pytest.raises(openai.APIResponseValidationError):
            harness.CONSUMERS[consumer](data)
