"""The anthropic-messages -> anthropic-messages route, judged by the anthropic SDK on both sides: every
recording and generated streams, read back strictly (messages.create(stream=True) and messages.stream()),
hold the input's blocks, stop reason and usage; byte splits change nothing; faults end in an error event."""

from __future__ import annotations

import functools
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import chunkline
import harness
from chat_route import anthropic_events, anthropic_message, check_anthropic_order, frames
from chunkline.testing import AnthropicStream, assert_split_invariant
from strategies import anthropic_streams, encode_sse, framed_streams, splits

PATHS = {p.name: p for p in harness.fixture_paths()}
#: Recordings that break the Anthropic protocol (see test_conformance.py): they end in an error.
PROTOCOL_VIOLATIONS = {"vercel_spliced_message_start_thinking_tool.jsonl"}
CONFORMING = sorted(name for name in PATHS if name not in PROTOCOL_VIOLATIONS)
#: The stop reasons the route keeps as they are (those the anthropic SDK knows); any other,
#: the beta compaction included, reads as end_turn.
KEPT = {
    "end_turn",
    "stop_sequence",
    "max_tokens",
    "tool_use",
    "refusal",
    "pause_turn",
    "model_context_window_exceeded",
}
#: The blocks the route carries (server tool blocks and their results have no neutral event).
CARRIED = {"text", "thinking", "redacted_thinking", "tool_use"}
OVERLOADED = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


@functools.cache
def route(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(source="anthropic-messages", target="anthropic-messages", **options)


def convert(data: bytes, **options: Any) -> bytes:
    return b"".join(route(**options).convert(data))


@functools.cache
def sse_of(name: str) -> bytes:
    return harness.first_response(harness.load_complete_sse(PATHS[name]))


def blocks(message: Any) -> list[tuple[Any, ...]]:
    """The carried blocks, each with what a client sends back: texts, signatures, redacted data,
    tool calls with their input."""
    out: list[tuple[Any, ...]] = []
    for block in message.content:
        if block.type == "text":
            out.append(("text", block.text))
        elif block.type == "thinking":
            out.append(("thinking", block.thinking, block.signature or None))
        elif block.type == "redacted_thinking":
            out.append(("redacted_thinking", block.data))
        elif block.type == "tool_use":
            out.append(("tool_use", block.id, block.name, block.input))
    return out


def usage(message: Any) -> dict[str, int]:
    u = message.usage
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens or 0,
        "cache_creation_input_tokens": u.cache_creation_input_tokens or 0,
    }


def expected_stop_reason(truth: Any) -> str:
    """The input's stop reason where the SDK knows it, else end_turn; tool_use only if a tool_use
    block reached the client (the finish stage's rule on every route)."""
    if truth.stop_reason == "tool_use" and not any(b.type == "tool_use" for b in truth.content):
        return "end_turn"
    return truth.stop_reason if truth.stop_reason in KEPT else "end_turn"


def assert_same(out: bytes, truth: Any) -> None:
    """The anthropic SDK reads from the output what it read from the input."""
    frames(out)  # every frame named after its data's type
    check_anthropic_order(anthropic_events(out))
    got = anthropic_message(out)
    assert blocks(got) == blocks(truth)
    assert got.stop_reason == expected_stop_reason(truth)
    assert got.stop_sequence == (truth.stop_sequence if got.stop_reason == "stop_sequence" else None)
    assert usage(got) == usage(truth)
    assert (got.id, got.model) == (truth.id, truth.model)


@pytest.mark.parametrize("name", CONFORMING)
def test_recording_reads_back_as_the_anthropic_sdk_reads_it(name: str) -> None:
    assert_same(convert(sse_of(name)), harness.anthropic_final_message(sse_of(name)))


@pytest.mark.parametrize("name", CONFORMING)
def test_recording_split_anywhere_gives_the_same_stream(name: str) -> None:
    assert_split_invariant(route(), sse_of(name), random_splits=4, two_way=16)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), framed_streams(anthropic_streams()))
def test_generated_streams(data: st.DataObject, stream: tuple[list[dict[str, Any]], bytes]) -> None:
    events, sse = stream
    conversion = route().open()
    out: list[bytes] = []
    for piece in data.draw(splits(sse)):
        out += conversion.feed(piece)
    body = b"".join(out + conversion.close())
    assert body == convert(sse)
    try:
        # The anthropic SDK reads the events in the API's own framing (see test_responses_properties).
        truth = harness.anthropic_final_message(encode_sse(events))
    except AttributeError:
        reject()  # a message_delta whose usage is null: the SDK cannot read the input
    assert_same(body, truth)


def assert_error(out: bytes, words: str = "") -> None:
    """One error event ends the stream, no message_stop; the anthropic SDK raises."""
    named = frames(out)
    assert named[-1][0] == "error" and words in named[-1][1]["error"]["message"], named[-3:]
    assert [name for name, _ in named].count("error") == 1
    assert all(name != "message_stop" for name, _ in named)
    with pytest.raises(anthropic.APIStatusError):
        anthropic_message(out)


@pytest.mark.parametrize("name", sorted(PROTOCOL_VIOLATIONS))
def test_protocol_violation_ends_in_an_error(name: str) -> None:
    assert_error(convert(harness.load_complete_sse(PATHS[name])), "message_start")


@pytest.mark.parametrize("name", CONFORMING)
def test_cut_short_ends_in_an_error(name: str) -> None:
    data = sse_of(name)
    end = harness.message_stop_line_end(data)
    for cut in sorted({1, end // 3, end // 2, end - 1, end}):
        assert_error(convert(data[:cut]))


@pytest.mark.parametrize(
    "name", ["llm_thinking_then_tool_use.sse", "otel_text_then_parallel_tool_use_args.sse"]
)
def test_upstream_error_event_keeps_its_type(name: str) -> None:
    events = harness.parse_anthropic_sse(sse_of(name))
    out = convert(sse_of(name)[: events[len(events) // 2].end] + OVERLOADED)
    assert_error(out, "Overloaded")
    assert frames(out)[-1][1]["error"]["type"] == "overloaded_error"


def test_nothing_at_all_ends_in_an_error() -> None:
    assert_error(convert(b""))


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("model_context_window_exceeded", "model_context_window_exceeded"),  # read max_tokens before
        ("pause_turn", "pause_turn"),
        ("max_tokens", "max_tokens"),
        ("compaction", "end_turn"),  # a beta word the anthropic SDK refuses
        ("something_new", "end_turn"),
    ],
)
def test_claudes_own_stop_reason_is_kept(stop_reason: str, expected: str) -> None:
    sse = AnthropicStream().text("Hi").stop(stop_reason).sse()
    assert anthropic_message(convert(sse)).stop_reason == expected
    # The route's finish_reasons option still decides: a reason it remaps is not Claude's any more.
    remap = chunkline.Pipeline(
        source="anthropic-messages", target="anthropic-messages", finish_reasons={stop_reason: "stop"}
    )
    remapped = b"".join(remap.convert(sse))
    assert anthropic_message(remapped).stop_reason == "end_turn"
