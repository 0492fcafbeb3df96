"""The judge of the openai-responses route: the real openai SDK reads the stream, and what it
accumulates is checked against the anthropic SDK's accumulation of the input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import jiter
import openai

from chunkline.builtins.responses_items import decode_reasoning

#: Where each Anthropic stop reason leaves a Responses response: (status, incomplete reason).
STATUS = {
    "end_turn": ("completed", None),
    "stop_sequence": ("completed", None),
    "tool_use": ("completed", None),
    "compaction": ("completed", None),
    "max_tokens": ("incomplete", "max_output_tokens"),
    "model_context_window_exceeded": ("incomplete", "max_output_tokens"),
    "pause_turn": ("incomplete", "max_output_tokens"),
    "refusal": ("incomplete", "content_filter"),
}


def client(body: bytes) -> openai.OpenAI:
    """A strict openai client whose every request is answered with ``body`` as an event stream."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return openai.OpenAI(
        api_key="test",
        base_url="http://openai.test/v1",
        max_retries=0,
        _strict_response_validation=True,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


@dataclass
class Reading:
    """What the openai SDK made of one stream."""

    events: list[Any]
    #: The final response: ``get_final_response()`` for ``response.completed``; the terminal
    #: event's response for ``response.incomplete`` and ``response.failed`` (openai-python #3538).
    final: Any
    terminal: str


def read(body: bytes) -> Reading:
    """Both ways the SDK reads a Responses stream; either raising fails the caller's test.

    ``responses.create(stream=True)`` validates every event strictly; ``responses.stream()``
    accumulates them and must agree with the terminal event.
    """
    strict = list(client(body).responses.create(model="m", input="hi", stream=True))
    terminals = [
        e.type
        for e in strict
        if e.type in ("response.completed", "response.incomplete", "response.failed", "error")
    ]
    assert len(terminals) == 1, f"expected exactly one terminal event, got {terminals}"
    assert strict[-1].type == terminals[0], "the terminal event is not the last"
    assert [e.sequence_number for e in strict] == list(range(len(strict)))
    with client(body).responses.stream(model="m", input="hi") as stream:
        accumulated = list(stream)
        if terminals[0] == "response.completed":
            final = stream.get_final_response()
        else:
            final = accumulated[-1].response
    assert [e.type for e in accumulated] == [e.type for e in strict]
    return Reading(strict, final, terminals[0])


def check_frames(body: bytes) -> None:
    """Every frame is ``event: TYPE`` then ``data: JSON`` whose ``type`` is TYPE (comments aside)."""
    for frame in body.split(b"\n\n"):
        if not frame or frame.startswith(b":"):
            continue
        event, data = frame.split(b"\n", 1)
        assert event.startswith(b"event: ") and data.startswith(b"data: "), frame[:120]
        assert json.loads(data[6:])["type"] == event[7:].decode(), frame[:120]


def expected_items(
    message: Any, *, reasoning_text: bool = False, encrypted: bool = False
) -> list[dict[str, Any]]:
    """The output items a Responses client should end with, from the anthropic SDK's message:
    one message per text block, one reasoning item per thinking block, one function call per
    tool_use block; server tool blocks have no Responses counterpart and are left out."""
    out: list[dict[str, Any]] = []
    for block in message.content:
        if block.type == "text":
            out.append({"type": "message", "text": block.text})
        elif block.type in ("thinking", "redacted_thinking"):
            text = getattr(block, "thinking", "")
            item: dict[str, Any] = {"type": "reasoning", "text": text}
            if encrypted and (block.type == "redacted_thinking" or block.signature):
                item["block"] = block.to_dict()
            out.append(item)
        elif block.type == "tool_use":
            out.append(
                {"type": "function_call", "call_id": block.id, "name": block.name, "input": block.input}
            )
    return out


def got_items(response: Any, *, reasoning_text: bool = False) -> list[dict[str, Any]]:
    """The final response's output, in the shape of `expected_items`."""
    out: list[dict[str, Any]] = []
    for item in response.output:
        if item.type == "message":
            assert [c.type for c in item.content] == ["output_text"]
            out.append({"type": "message", "text": item.content[0].text})
        elif item.type == "reasoning":
            parts = (item.content or []) if reasoning_text else item.summary
            entry: dict[str, Any] = {"type": "reasoning", "text": "".join(p.text for p in parts)}
            if item.encrypted_content is not None:
                entry["block"] = decode_reasoning(item.encrypted_content)
            out.append(entry)
        elif item.type == "function_call":
            assert item.id != item.call_id
            out.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "input": _input(item.arguments),
                }
            )
        else:
            raise AssertionError(f"unexpected output item {item.type}")
    return out


def _input(arguments: str) -> Any:
    """The arguments as JSON; arguments cut short (Claude stopped at max_tokens mid-call) as the
    anthropic SDK reads its partial JSON."""
    try:
        return json.loads(arguments)
    except ValueError:
        return jiter.from_json(arguments.encode(), partial_mode=True)


def expected_usage(message: Any) -> dict[str, int]:
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    prompt = usage.input_tokens + cache_read + cache_write
    details = getattr(usage, "output_tokens_details", None)
    return {
        "input_tokens": prompt,
        "cached_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": (details.thinking_tokens or 0) if details is not None else 0,
        "total_tokens": prompt + usage.output_tokens,
    }


def got_usage(response: Any) -> dict[str, int]:
    usage = response.usage
    return {
        "input_tokens": usage.input_tokens,
        "cached_tokens": usage.input_tokens_details.cached_tokens,
        "cache_write_tokens": usage.input_tokens_details.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
        "total_tokens": usage.total_tokens,
    }


def assert_same(
    reading: Reading, message: Any, *, reasoning_text: bool = False, encrypted: bool = False
) -> None:
    """The SDK's final response says what the anthropic SDK's message says."""
    final = reading.final
    status, reason = STATUS.get(message.stop_reason, ("completed", None))
    assert final.status == status, (final.status, message.stop_reason)
    assert reading.terminal == f"response.{status}"
    if reason is not None:
        assert final.incomplete_details is not None and final.incomplete_details.reason == reason
    expected = expected_items(message, reasoning_text=reasoning_text, encrypted=encrypted)
    assert got_items(final, reasoning_text=reasoning_text) == expected
    assert got_usage(final) == expected_usage(message)
    assert final.model == message.model


def read_events(events: list[Any]) -> Reading:
    """A `Reading` of events already read strictly (a server's stream): exactly one terminal
    event, last, whose response is the final one."""
    terminals = [
        e for e in events if e.type in ("response.completed", "response.incomplete", "response.failed")
    ]
    assert len(terminals) == 1 and events[-1] is terminals[0], [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    return Reading(events, terminals[0].response, terminals[0].type)
