"""The openai-responses encoder stage on hand-built neutral events, read by the real openai SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest

import responses_judge as judge
from chunkline.builtins.responses_encode import ResponsesEncoder
from chunkline.builtins.responses_items import decode_reasoning
from chunkline.events import (
    Done,
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

USAGE = UsageUpdate(
    input_tokens=10, output_tokens=20, cache_read_tokens=3, cache_write_tokens=4, reasoning_tokens=5
)


def encode(events: list[Any], **options: Any) -> bytes:
    settings = {
        "thinking": "native",
        "reasoning_encrypted_content": False,
        "tool_namespaces": None,
        "model": None,
        "response_id": None,
        "created": 1_700_000_000,
        **options,
    }
    stage = ResponsesEncoder(settings)
    out: list[bytes] = []
    stage.emit = out.append
    for event in events:
        stage.feed(event)
    stage.close()
    return b"".join(out)


def answer(finish: str = "tool_calls") -> list[Any]:
    return [
        ResponseStart("msg_01abc", "claude-test"),
        UsageUpdate(input_tokens=10, cache_read_tokens=3, cache_write_tokens=4),
        ReasoningStart(0),
        ReasoningDelta(0, "Let me "),
        ReasoningDelta(0, "think."),
        ReasoningEnd(0, signature="sig=="),
        ReasoningStart(1, redacted="opaque"),
        ReasoningEnd(1),
        Ping(),
        TextStart(2),
        TextDelta(2, "Hello "),
        TextDelta(2, "world"),
        TextEnd(2),
        ToolCallStart(3, "toolu_1", "ns__lookup"),
        ToolCallDelta(3, '{"q":'),
        ToolCallDelta(3, '"x"}'),
        ToolCallEnd(3),
        Finish(finish, usage=USAGE),
        Done(),
    ]


def test_a_whole_answer_reads_back() -> None:
    """RS1, RS2, RS3, RS4, RS5, RS6, RS7, RS8 and RS11 on hand-built events."""
    body = encode(
        answer(), reasoning_encrypted_content=True, tool_namespaces={"ns__lookup": ("ns", "lookup")}
    )
    judge.check_frames(body)
    reading = judge.read(body)
    final = reading.final
    assert reading.terminal == "response.completed" and final.status == "completed"
    assert final.id == "resp_01abc" and final.model == "claude-test" and final.created_at == 1_700_000_000
    types = [item.type for item in final.output]
    assert types == ["reasoning", "reasoning", "message", "function_call"]
    thinking, redacted, message, call = final.output
    assert thinking.summary[0].text == "Let me think."
    assert decode_reasoning(thinking.encrypted_content) == {
        "type": "thinking",
        "thinking": "Let me think.",
        "signature": "sig==",
    }
    assert redacted.summary == []
    assert decode_reasoning(redacted.encrypted_content) == {"type": "redacted_thinking", "data": "opaque"}
    assert message.content[0].text == "Hello world"
    assert (call.call_id, call.namespace, call.name, call.arguments) == (
        "toolu_1",
        "ns",
        "lookup",
        '{"q":"x"}',
    )
    assert call.id != call.call_id
    usage = final.usage
    assert usage.input_tokens == 17 and usage.output_tokens == 20 and usage.total_tokens == 37
    assert usage.input_tokens_details.cached_tokens == 3
    assert usage.input_tokens_details.cache_write_tokens == 4
    assert usage.output_tokens_details.reasoning_tokens == 5
    # The protocol's order: created, in_progress, then each item added ... done.
    kinds = [e.type for e in reading.events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 4
    assert "response.output_text.done" in kinds and "response.function_call_arguments.done" in kinds
    done = next(e for e in reading.events if e.type == "response.output_text.done")
    assert done.text == "Hello world"


def test_without_include_no_encrypted_content() -> None:
    final = judge.read(encode(answer())).final
    assert all(item.encrypted_content is None for item in final.output if item.type == "reasoning")
    assert final.output[3].name == "ns__lookup"


def test_reasoning_text_mode() -> None:
    """RS7: thinking as the reasoning item's content."""
    reading = judge.read(encode(answer(), thinking="reasoning_text"))
    thinking = reading.final.output[0]
    assert thinking.summary == [] and thinking.content[0].text == "Let me think."
    assert "response.reasoning_text.delta" in [e.type for e in reading.events]


@pytest.mark.parametrize(
    ("reason", "why"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_short_answers_are_incomplete(reason: str, why: str) -> None:
    """RS10."""
    reading = judge.read(encode(answer(reason)))
    assert reading.terminal == "response.incomplete"
    assert reading.final.status == "incomplete" and reading.final.incomplete_details.reason == why
    with (
        pytest.raises(RuntimeError),
        judge.client(encode(answer(reason))).responses.stream(model="m", input="hi") as s,
    ):
        s.get_final_response()  # openai-python #3538: only response.completed counts


@pytest.mark.parametrize("cut", [0, 1, 4, 10, 14])
def test_faults_fail_the_response(cut: int) -> None:
    """RS12, wherever the fault comes."""
    events = [*answer()[:cut], ErrorEvent("upstream_error", "Overloaded", code="overloaded_error"), Done()]
    # The encoder closes nothing itself: parts left open by a fault simply never finish.
    body = encode(events)
    judge.check_frames(body)
    reading = judge.read(body)
    assert reading.terminal == "response.failed"
    assert reading.final.status == "failed"
    assert reading.final.error.code == "server_error" and reading.final.error.message == "Overloaded"
    assert b"response.completed" not in body
    with pytest.raises(RuntimeError), judge.client(body).responses.stream(model="m", input="hi") as stream:
        stream.get_final_response()


def test_interleaved_parts_keep_their_own_items() -> None:
    """RS4."""
    events = [
        ResponseStart("msg_1", "m"),
        ToolCallStart(5, "a", "f"),
        ToolCallStart(7, "b", "g"),
        ToolCallDelta(7, "{}"),
        ToolCallDelta(5, '{"x":1}'),
        ToolCallEnd(7),
        ToolCallEnd(5),
        Finish("tool_calls"),
        Done(),
    ]
    final = judge.read(encode(events)).final
    assert [(i.call_id, json.loads(i.arguments)) for i in final.output] == [("a", {"x": 1}), ("b", {})]


@pytest.mark.parametrize("second_opens_after_first_ends", [True, False])
def test_a_repeated_tool_use_id_fails_the_response(second_opens_after_first_ends: bool) -> None:
    """Responses tells function calls apart by call_id alone (the openai SDK refuses two with
    one call_id), and Anthropic never repeats a tool_use id: a repeat is a fault, not a success."""
    first = [ToolCallStart(0, "toolu_same", "f"), ToolCallDelta(0, "{}")]
    second = [ToolCallStart(1, "toolu_same", "f"), ToolCallDelta(1, "{}"), ToolCallEnd(1)]
    middle = (
        [*first, ToolCallEnd(0), *second]
        if second_opens_after_first_ends
        else [*first, *second, ToolCallEnd(0)]
    )
    body = encode([ResponseStart("msg_1", "m"), *middle, Finish("tool_calls"), Done()])
    judge.check_frames(body)
    reading = judge.read(body)
    assert reading.terminal == "response.failed"
    assert (
        reading.final.error.message
        == "invalid upstream stream: tool_use id 'toolu_same' repeats within the message"
    )
    assert b"response.completed" not in body


def test_nothing_after_the_terminal_event() -> None:
    body = encode([*answer("stop")[:-1], ErrorEvent("x", "late"), Done()])
    assert body.count(b"event: response.completed") == 1 and b"response.failed" not in body
