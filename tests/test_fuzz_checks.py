"""The fuzz harness's route checks (fuzz/route_checks.py) pass good streams and catch planted faults."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import chat_route
import chunkline
import harness

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
import route_checks

ANTHROPIC_SSE = harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / "llm_thinking_then_tool_use.sse")
CHAT_SSE = chat_route.load_chat_sse(chat_route.OPENAI_FIXTURES / "oaipy_parallel_tool_calls.sse")


def responses(data: bytes) -> list[bytes]:
    return chunkline.Pipeline(target="openai-responses", created=1).convert(data)


def anthropic(data: bytes) -> list[bytes]:
    return chat_route.route().convert(data)


def test_good_streams_pass() -> None:
    assert route_checks.responses_fault(responses(ANTHROPIC_SSE), ANTHROPIC_SSE) is None
    assert route_checks.anthropic_fault(anthropic(CHAT_SSE), CHAT_SSE) is None
    cut = CHAT_SSE[: CHAT_SSE.index(b"finish_reason") - 200]
    fault = route_checks.anthropic_fault(anthropic(cut), cut)
    assert fault is not None and fault[0] == "api_error"


def test_a_finish_needs_what_ends_the_input_even_escaped() -> None:
    # A success for input that never finished is the finding the checks exist for; the input
    # may spell the word with JSON escapes, which the decoders read as the word itself.
    with pytest.raises(AssertionError, match="without message_stop"):
        route_checks.responses_fault(responses(ANTHROPIC_SSE), ANTHROPIC_SSE.replace(b"message_stop", b"x"))
    assert route_checks.saw_message_stop(b'{"type":"message\\u005fstop"}')
    with pytest.raises(AssertionError, match="without a finish_reason"):
        route_checks.anthropic_fault(anthropic(CHAT_SSE), CHAT_SSE.replace(b'"finish_reason":"', b'"x":"'))
    assert route_checks.finished_chat(b'"finish\\u005freason":\ndata: "stop"')
    assert not route_checks.finished_chat(b'"finish_reason":null')


def renumbered(out: list[bytes]) -> list[bytes]:
    """The Responses frames with their sequence numbers counted again (only the edit is wrong)."""
    frames = [o for o in out if o != b": ping\n\n"]
    result = []
    for seq, frame in enumerate(frames):
        head, data = frame[:-2].split(b"\n", 1)
        payload = {**json.loads(data[6:]), "sequence_number": seq}
        result.append(head + b"\ndata: " + json.dumps(payload).encode() + b"\n\n")
    return result


def without_first(out: list[bytes], marker: bytes) -> list[bytes]:
    at = next(i for i, o in enumerate(out) if marker in o)
    return out[:at] + out[at + 1 :]


def emptied_output(frame: bytes) -> bytes:
    head, data = frame[:-2].split(b"\n", 1)
    payload = json.loads(data[6:])
    payload["response"]["output"] = payload["response"]["output"][1:]
    return head + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


RESPONSES_FAULTS = {
    "never announced": lambda out: renumbered(without_first(out, b"event: response.output_item.added")),
    "RS2": lambda out: without_first(out, b"event: response.output_item.added"),
    "one terminal event": lambda out: renumbered([*out, out[-1]]),
    "the final output": lambda out: [*out[:-1], emptied_output(out[-1])],
}
ANTHROPIC_FAULTS = {
    "another was open": lambda out: [o for o in out if b"event: content_block_stop" not in o],
    "one message_stop or error": lambda out: out[:-1],
    "unexpected event": lambda out: [out[0], b'event: x\ndata: {"type":"x"}\n\n', *out[1:]],
    "content_block_start": lambda out: out[1:],  # no message_start
}


@pytest.mark.parametrize("message", RESPONSES_FAULTS)
def test_planted_responses_faults_are_caught(message: str) -> None:
    out = responses(ANTHROPIC_SSE)
    with pytest.raises(AssertionError, match=message):
        route_checks.responses_fault(RESPONSES_FAULTS[message](out), ANTHROPIC_SSE)


@pytest.mark.parametrize("message", ANTHROPIC_FAULTS)
def test_planted_anthropic_faults_are_caught(message: str) -> None:
    out = anthropic(CHAT_SSE)
    with pytest.raises(AssertionError, match=message):
        route_checks.anthropic_fault(ANTHROPIC_FAULTS[message](out), CHAT_SSE)
