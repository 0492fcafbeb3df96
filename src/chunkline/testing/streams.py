"""Anthropic streams for tests: built from text, thinking and tool calls, or loaded from a recording."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["AnthropicStream", "anthropic_stream", "load_recording", "recording_events", "sse_from_events"]

ToolCallArg = tuple[str, str | Sequence[str]]
"""A tool call for `anthropic_stream`: its name and its JSON arguments, whole or in fragments."""


def _dumps(value: Any) -> str:
    # Compact, like the API itself; non-ASCII text stays as UTF-8, as Anthropic sends it.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sse_from_events(events: Sequence[dict[str, Any]]) -> bytes:
    """Anthropic event dicts as the SSE bytes the API sends: ``event: TYPE`` and ``data: JSON``
    lines, a blank line after each event."""
    return b"".join(f"event: {event['type']}\ndata: {_dumps(event)}\n\n".encode() for event in events)


class AnthropicStream:
    """Builds a valid Anthropic Messages stream block by block, with the right event names,
    content-block indices, ``message_start``, ``message_delta`` and ``message_stop``::

        stream = (
            AnthropicStream(model="claude-test")
            .thinking("Let me check.")
            .text("The weather ", "in Paris:")
            .tool_use("get_weather", '{"city": ', '"Paris"}')
            .stop()
        )
        data = stream.sse()  # or stream.jsonl(), or stream.events() for the dicts

    Each method adds one content block (or event) and returns the builder. Leave out
    `stop` to get a stream cut off before its end.
    """

    def __init__(
        self,
        *,
        model: str = "claude-test",
        message_id: str = "msg_test",
        input_tokens: int = 10,
        cache_read_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
    ) -> None:
        usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": 1}
        if cache_read_input_tokens is not None:
            usage["cache_read_input_tokens"] = cache_read_input_tokens
        if cache_creation_input_tokens is not None:
            usage["cache_creation_input_tokens"] = cache_creation_input_tokens
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        self._events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
        self._blocks = 0
        self._tool_calls = 0
        self._ended = False

    def _block(self, start: dict[str, Any], deltas: list[dict[str, Any]]) -> AnthropicStream:
        if self._ended:
            raise ValueError("the stream has already ended (stop() or error() was called)")
        index = self._blocks
        self._blocks += 1
        self._events.append({"type": "content_block_start", "index": index, "content_block": start})
        for delta in deltas:
            self._events.append({"type": "content_block_delta", "index": index, "delta": delta})
        self._events.append({"type": "content_block_stop", "index": index})
        return self

    def text(self, *deltas: str) -> AnthropicStream:
        """A text block streamed as these deltas."""
        return self._block(
            {"type": "text", "text": ""}, [{"type": "text_delta", "text": text} for text in deltas]
        )

    def thinking(self, *deltas: str, signature: str = "c2lnbmF0dXJl") -> AnthropicStream:
        """A thinking block streamed as these deltas, then its signature."""
        events = [{"type": "thinking_delta", "thinking": text} for text in deltas]
        events.append({"type": "signature_delta", "signature": signature})
        return self._block({"type": "thinking", "thinking": "", "signature": ""}, events)

    def redacted_thinking(self, data: str = "cmVkYWN0ZWQ=") -> AnthropicStream:
        """A redacted thinking block (its data is opaque and never reaches a client)."""
        return self._block({"type": "redacted_thinking", "data": data}, [])

    def tool_use(
        self,
        name: str,
        *arguments: str,
        id: str | None = None,
        input: dict[str, Any] | None = None,
    ) -> AnthropicStream:
        """A client tool call whose JSON arguments stream as these fragments. With no fragments,
        the arguments are the start block's ``input`` (``{}`` by default)."""
        call_id = id if id is not None else f"toolu_{self._tool_calls:02d}"
        self._tool_calls += 1
        start = {"type": "tool_use", "id": call_id, "name": name, "input": input or {}}
        return self._block(start, [{"type": "input_json_delta", "partial_json": part} for part in arguments])

    def ping(self) -> AnthropicStream:
        """A keep-alive event."""
        if self._ended:
            raise ValueError("the stream has already ended (stop() or error() was called)")
        self._events.append({"type": "ping"})
        return self

    def stop(
        self,
        reason: str | None = None,
        *,
        output_tokens: int | None = None,
        stop_sequence: str | None = None,
    ) -> AnthropicStream:
        """End the message: ``message_delta`` with the stop reason (``tool_use`` when the
        stream has tool calls, else ``end_turn``) and the output token count, then
        ``message_stop``."""
        if self._ended:
            raise ValueError("the stream has already ended (stop() or error() was called)")
        self._ended = True
        if reason is None:
            reason = "tool_use" if self._tool_calls else "end_turn"
        if output_tokens is None:
            output_tokens = max(1, len(self._events) - 1)
        self._events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": output_tokens},
            }
        )
        self._events.append({"type": "message_stop"})
        return self

    def error(self, type: str = "overloaded_error", message: str = "Overloaded") -> AnthropicStream:
        """End the stream with an upstream ``error`` event instead of a normal stop."""
        if self._ended:
            raise ValueError("the stream has already ended (stop() or error() was called)")
        self._ended = True
        self._events.append({"type": "error", "error": {"type": type, "message": message}})
        return self

    def events(self) -> list[dict[str, Any]]:
        """The events as dicts (a copy: change it freely)."""
        return copy.deepcopy(self._events)

    def sse(self) -> bytes:
        """The stream as server-sent events, exactly as the API frames them."""
        return sse_from_events(self._events)

    def jsonl(self) -> bytes:
        """The stream as JSON lines, one event per line (``input_format="jsonl"``)."""
        return b"".join(_dumps(event).encode() + b"\n" for event in self._events)


def anthropic_stream(
    *text: str,
    thinking: Sequence[str] = (),
    tool_calls: Sequence[ToolCallArg] = (),
    stop_reason: str | None = None,
    model: str = "claude-test",
) -> bytes:
    """A complete Anthropic SSE stream in one call: a thinking block (if ``thinking`` is given),
    a text block made of the ``text`` deltas (if any), then one block per tool call, e.g.
    ``anthropic_stream("Hello, ", "world")`` or
    ``anthropic_stream(tool_calls=[("get_weather", ['{"city":', '"Paris"}'])])``."""
    stream = AnthropicStream(model=model)
    if thinking:
        stream.thinking(*thinking)
    if text:
        stream.text(*text)
    for name, arguments in tool_calls:
        fragments = [arguments] if isinstance(arguments, str) else list(arguments)
        stream.tool_use(name, *fragments)
    return stream.stop(stop_reason).sse()


def load_recording(path: str | Path) -> bytes:
    """A recorded Anthropic stream as SSE bytes that a default pipeline takes: an ``.sse``
    file as it is, a ``.jsonl`` file (one event object per line) framed as named SSE events."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix != ".jsonl":
        return data
    events = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON event: {exc}") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError(f"{path}:{number}: an event must be a JSON object with a string 'type'")
        events.append(event)
    return sse_from_events(events)


def recording_events(source: str | Path | bytes) -> list[dict[str, Any]]:
    """The event dicts of a recording (a path to an ``.sse`` or ``.jsonl`` file, or SSE bytes),
    read by chunkline's own ``parse`` stage. Raises ``ValueError`` for input it rejects."""
    from chunkline import Pipeline
    from chunkline.events import ErrorEvent

    data = source if isinstance(source, bytes) else load_recording(source)
    out = Pipeline(["parse"], load_entrypoints=False).convert(data)
    for item in out:
        if isinstance(item, ErrorEvent):
            raise ValueError(f"not a valid Anthropic stream: {item.message}")
    return out
