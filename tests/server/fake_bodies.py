"""What the fake Anthropic upstream says: recordings split into events, echo answers, error types, models."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from harness import ANTHROPIC_FIXTURES, load_complete_sse  # noqa: E402

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

MODELS = [
    {
        "type": "model",
        "id": "claude-sonnet-4-5",
        "display_name": "Sonnet",
        "created_at": "2025-09-29T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-haiku-4-5",
        "display_name": "Haiku",
        "created_at": "2025-10-15T00:00:00Z",
    },
]


def sse_event(data: dict[str, Any]) -> bytes:
    return b"event: " + data["type"].encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"


def echo_events(text: str, *, message_id: str = "msg_echo", model: str = "claude-echo") -> list[bytes]:
    """A complete Anthropic stream whose answer is ``text``, one word (with its space) per delta."""
    words = [w + " " for w in text.split(" ")]
    words[-1] = words[-1][:-1]
    usage = {"input_tokens": len(words), "output_tokens": 1}
    message = {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": []}
    events = [
        {"type": "message_start", "message": {**message, "stop_reason": None, "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}
            for w in words
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(words)},
        },
        {"type": "message_stop"},
    ]
    return [sse_event(e) for e in events]


@functools.cache
def recording_events(stem: str) -> tuple[bytes, ...]:
    """A recording as the API sent it, split into its events (each with its blank line)."""
    path = next(p for p in ANTHROPIC_FIXTURES.iterdir() if p.stem == stem)
    data = load_complete_sse(path)
    return tuple(part + b"\n\n" for part in data.split(b"\n\n") if part.strip())


def last_user_text(body: Any) -> str:
    for message in reversed(body.get("messages", [])):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            texts = [b["text"] for b in content if b.get("type") == "text"]
            if texts:
                return texts[-1]
    return "nothing"


#: The thinking block the ``agent`` scenario signs, as a client must give it back.
AGENT_THINKING = {"type": "thinking", "thinking": "I will run the command.", "signature": "EqQBsig-agent=="}


def agent_events(body: Any, arg: str) -> list[bytes]:
    """A scripted agent turn. Until the conversation holds a tool result: thinking (signed), then
    a call of the tool ``NAME`` with ``{"cmd": COMMAND}`` (``arg`` is ``NAME:COMMAND``). After
    one: a text answer that quotes the last tool result's last non-empty line."""
    name, _, command = arg.partition(":")
    results = [
        block
        for message in body.get("messages", [])
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    usage = {"input_tokens": 12, "output_tokens": 1}
    message = {
        "id": "msg_agent",
        "type": "message",
        "role": "assistant",
        "model": "claude-agent",
        "content": [],
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message, "stop_reason": None, "usage": usage}}
    ]
    if results:
        content = results[-1].get("content", "")
        if isinstance(content, list):
            content = "\n".join(b.get("text", "") for b in content)
        lines = [line.strip() for line in content.splitlines() if line.strip()]
        text = f"The tool said: {lines[-1] if lines else 'nothing'}"
        blocks = [({"type": "text", "text": ""}, [{"type": "text_delta", "text": text}])]
        stop = "end_turn"
    else:
        thinking = [
            {"type": "thinking_delta", "thinking": AGENT_THINKING["thinking"]},
            {"type": "signature_delta", "signature": AGENT_THINKING["signature"]},
        ]
        call = {"type": "tool_use", "id": "toolu_agent_1", "name": name, "input": {}}
        arguments = json.dumps({"cmd": command})
        blocks = [
            ({"type": "thinking", "thinking": "", "signature": ""}, thinking),
            (call, [{"type": "input_json_delta", "partial_json": arguments[:5]},
                    {"type": "input_json_delta", "partial_json": arguments[5:]}]),
        ]  # fmt: skip
        stop = "tool_use"
    for index, (start, deltas) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 9},
        }
    )
    events.append({"type": "message_stop"})
    return [sse_event(e) for e in events]
