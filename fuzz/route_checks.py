"""The fuzz harness's checks of the openai-responses and openai-chat -> anthropic-messages outputs.

Each checker reads a conversion's outputs (a list of bytes, each one whole SSE frame), asserts the
route's wire rules (any AssertionError is a finding) and returns the in-band fault it ended with,
as ``(type, message)``, or ``None`` for a stream that finished. They read the outputs with nothing
but the standard library, so thousands of inputs a second stay affordable; the SDK-level judges
(tests/responses_judge.py, tests/chat_route.py) run in the tests.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chunkline.builtins.anthropic_encode import ANTHROPIC_ERROR_TYPES

__all__ = ["anthropic_fault", "finished_chat", "frames", "responses_fault", "saw_message_stop"]

# A JSON escape can spell any key or value the upstream sends (orjson decodes "message\u005fstop"
# to "message_stop"), so the raw input is searched with its \uXXXX escapes decoded first: what the
# checks ask of the input must over-approximate what the decoder can see, never miss it.
_ESCAPE = re.compile(rb"\\u([0-9a-fA-F]{4})")
# A finish_reason with a string value, its key and value possibly on separate SSE data lines.
_FINISH = re.compile(rb'finish_reason"(?:\s|data:)*:(?:\s|data:)*"')


def _unescaped(body: bytes) -> bytes:
    if b"\\u" not in body:
        return body
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)).encode("utf-8", "surrogatepass"), body)


def saw_message_stop(body: bytes) -> bool:
    """Whether an Anthropic input can hold a ``message_stop`` (a finish needs one, R43)."""
    return b"message_stop" in _unescaped(body)


def finished_chat(body: bytes) -> bool:
    """Whether a chat input can hold a ``finish_reason`` with a string value."""
    return _FINISH.search(_unescaped(body)) is not None


def frames(outputs: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, data)`` of each output, each one whole ``event: NAME\\ndata: JSON\\n\\n`` frame whose
    data is an object of type NAME; a keep-alive is the comment ``: ping`` and is skipped."""
    out = []
    for item in outputs:
        assert isinstance(item, bytes), item
        assert item.endswith(b"\n\n") and item.count(b"\n\n") == 1 and b"\r" not in item, item[:200]
        if item == b": ping\n\n":
            continue
        head, data = item[:-2].split(b"\n", 1)
        assert head.startswith(b"event: ") and data.startswith(b"data: "), item[:200]
        assert b"\n" not in data, item[:200]
        name = head[7:].decode()
        payload = json.loads(data[6:])
        assert isinstance(payload, dict) and payload.get("type") == name, item[:200]
        out.append((name, payload))
    return out


# -- openai-responses ----------------------------------------------------------------------------

_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
# Each event that streams into an item, and the item type it belongs to.
_ITEM_EVENTS = {
    "response.content_part.added": ("message", "reasoning"),
    "response.content_part.done": ("message", "reasoning"),
    "response.output_text.delta": ("message",),
    "response.output_text.done": ("message",),
    "response.function_call_arguments.delta": ("function_call",),
    "response.function_call_arguments.done": ("function_call",),
    "response.reasoning_summary_part.added": ("reasoning",),
    "response.reasoning_summary_part.done": ("reasoning",),
    "response.reasoning_summary_text.delta": ("reasoning",),
    "response.reasoning_summary_text.done": ("reasoning",),
    "response.reasoning_text.delta": ("reasoning",),
    "response.reasoning_text.done": ("reasoning",),
}
# The .done event that repeats what an item's deltas streamed, and the field it repeats it in.
_DONE_OF = {
    "response.output_text.delta": ("response.output_text.done", "text"),
    "response.function_call_arguments.delta": ("response.function_call_arguments.done", "arguments"),
    "response.reasoning_summary_text.delta": ("response.reasoning_summary_text.done", "text"),
    "response.reasoning_text.delta": ("response.reasoning_text.done", "text"),
}
_DONE_EVENTS = {done: delta for delta, (done, _) in _DONE_OF.items()}


def responses_fault(outputs: list[bytes], body: bytes) -> tuple[str, str] | None:
    """Check an openai-responses output (RS1-RS4, RS10, RS12) of the Anthropic input ``body``
    (`frames` refuses a ``data: [DONE]``: it has no ``event:`` line)."""
    events = frames(outputs)
    names = [name for name, _ in events]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events))), "RS2"
    assert names[:2] == ["response.created", "response.in_progress"], names[:3]
    terminals = [name for name in names if name in _TERMINAL]
    assert len(terminals) == 1 and names[-1] == terminals[0], f"one terminal event, last: {terminals}"
    response_id = events[0][1]["response"]["id"]
    for _, data in events[:2]:
        response = data["response"]
        assert response["status"] == "in_progress" and response["output"] == [], response
        assert response["id"] == response_id
    items: dict[str, dict[str, Any]] = {}  # item id -> what the stream said of it
    done: dict[int, dict[str, Any]] = {}  # output index -> the item as output_item.done gave it
    for name, data in events[2:-1]:
        if name == "response.output_item.added":
            item = data["item"]
            assert item["id"] not in items, f"item {item['id']} announced twice"
            assert data["output_index"] == len(items), "output_index counts items as announced (RS4)"
            if item["type"] == "function_call":
                assert item["call_id"] and item["name"], f"a call no client can answer or make: {item}"
            items[item["id"]] = {"index": data["output_index"], "type": item["type"], "streamed": {}}
            continue
        item_id = data["item"]["id"] if name == "response.output_item.done" else data.get("item_id")
        assert item_id in items, f"{name} for item {item_id!r}, never announced (RS4)"
        entry = items[item_id]
        assert data["output_index"] == entry["index"], (name, data["output_index"], entry)
        assert "done" not in entry, f"{name} for item {item_id} after its output_item.done"
        if name == "response.output_item.done":
            assert data["item"]["type"] == entry["type"] and data["item"]["status"] == "completed"
            entry["done"] = True
            done[entry["index"]] = data["item"]
            continue
        assert name in _ITEM_EVENTS, f"an unexpected event {name}"
        assert entry["type"] in _ITEM_EVENTS[name], f"{name} on a {entry['type']} item"
        if name in _DONE_OF:
            entry["streamed"][name] = entry["streamed"].get(name, "") + data["delta"]
        elif name in _DONE_EVENTS:
            field = _DONE_OF[_DONE_EVENTS[name]][1]
            assert data[field] == entry["streamed"].get(_DONE_EVENTS[name], ""), f"{name} != its deltas"
    name, data = events[-1]
    response = data["response"]
    assert response["id"] == response_id and response["status"] == name.removeprefix("response.")
    output = [done[i] for i in sorted(done)]
    assert response["output"] == output, "the final output is the items that were done"
    if name == "response.failed":
        error = response["error"]
        assert isinstance(error["message"], str) and error["message"] and isinstance(error["code"], str)
        return error["type"], error["message"]
    assert saw_message_stop(body), f"{name} for input without message_stop (RS12)"
    assert len(done) == len(items), "a finished response left an announced item unfinished"
    if name == "response.incomplete":
        reason = response["incomplete_details"]["reason"]
        assert reason in ("max_output_tokens", "content_filter"), reason
    return None


# -- openai-chat -> anthropic-messages -----------------------------------------------------------

_STOP_REASONS = {
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
}
_DELTAS = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "redacted_thinking": set(),
    "tool_use": {"input_json_delta"},
}


def anthropic_fault(outputs: list[bytes], body: bytes) -> tuple[str, str] | None:
    """Check an anthropic-messages output of the chat input ``body``: message_start first, blocks
    0, 1, 2... each started before its deltas and stopped before the next and before
    message_delta, and exactly one of message_stop (only for a finished input) or error, last."""
    events = frames(outputs)
    names = [name for name, _ in events]
    assert names, "no event at all"
    ends = [name for name in names if name in ("message_stop", "error")]
    assert len(ends) == 1 and names[-1] == ends[0], f"one message_stop or error, last: {ends}"
    if names == ["error"]:
        return _error(events[-1][1])  # a fault before the upstream said anything
    assert names[0] == "message_start", names[:2]
    message = events[0][1]["message"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["content"] == []
    assert all(type(v) is int and v >= 0 for v in message["usage"].values()), message["usage"]
    expected = 0
    open_block: tuple[int, str] | None = None
    for position, (name, data) in enumerate(events[1:-1], start=1):
        if name == "content_block_start":
            assert open_block is None, "a block started while another was open"
            assert data["index"] == expected, f"block {data['index']} where {expected} was due"
            kind = data["content_block"]["type"]
            assert kind in _DELTAS, kind
            if kind == "tool_use":
                block = data["content_block"]
                assert isinstance(block["id"], str) and block["id"], block  # answerable, and
                assert isinstance(block["name"], str) and block["name"], block  # callable
            open_block, expected = (data["index"], kind), expected + 1
        elif name == "content_block_delta":
            assert open_block is not None and data["index"] == open_block[0], "a delta outside its block"
            assert data["delta"]["type"] in _DELTAS[open_block[1]], (open_block, data["delta"])
        elif name == "content_block_stop":
            assert open_block is not None and data["index"] == open_block[0], "a stop of no open block"
            open_block = None
        elif name == "message_delta":
            assert position == len(events) - 2 and names[-1] == "message_stop", "message_delta not last"
            assert open_block is None, "message_delta with a block open"
            assert data["delta"]["stop_reason"] in _STOP_REASONS, data["delta"]
            assert all(type(v) is int and v >= 0 for v in data["usage"].values()), data["usage"]
        else:
            assert name == "ping", f"an unexpected event {name}"
    if names[-1] == "error":
        return _error(events[-1][1])
    assert names[-2] == "message_delta", "message_stop without message_delta"
    assert finished_chat(body), "message_stop for input without a finish_reason"
    return None


def _error(data: dict[str, Any]) -> tuple[str, str]:
    error = data["error"]
    assert error["type"] in ANTHROPIC_ERROR_TYPES and isinstance(error["message"], str) and error["message"]
    return error["type"], error["message"]
