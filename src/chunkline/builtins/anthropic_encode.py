"""The anthropic_encode stage: neutral events in, the Anthropic Messages stream's events out."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import orjson

from ..events import (
    Chunk,
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
from ..hookspecs import hookimpl
from ..stage import EncoderSpec, Option, Options, Stage, StageSpec
from .decode import STOP_REASONS as _UPSTREAM_STOP_REASONS

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "STOP_REASONS",
    "AnthropicEncoder",
    "error_type",
    "register_formats",
    "register_stages",
]

STOP_REASONS = MappingProxyType(
    {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
        "pause": "pause_turn",
    }
)
"""Neutral finish reasons -> Anthropic stop reasons (``stop`` with a known stop sequence is
``stop_sequence``)."""

_KEPT_STOP_REASONS = frozenset({*STOP_REASONS.values(), "stop_sequence", "model_context_window_exceeded"})

ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    }
)
"""The error types an Anthropic client knows."""

# Upstream (OpenAI-compatible) error codes -> the Anthropic error type that means the same.
_UPSTREAM_CODES = {
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "invalid_api_key": "authentication_error",
    "context_length_exceeded": "invalid_request_error",
    "server_error": "api_error",
}

_dumps = orjson.dumps
_TEXT, _THINKING, _TOOL = "text", "thinking", "tool_use"
_CONTENT = (
    TextStart,
    TextDelta,
    TextEnd,
    ReasoningStart,
    ReasoningDelta,
    ReasoningEnd,
    ToolCallStart,
    ToolCallDelta,
    ToolCallEnd,
)


def error_type(error: ErrorEvent) -> str:
    """The Anthropic error type for a fault: the upstream's own, where an Anthropic client knows
    it, else ``api_error``."""
    code = error.code or ""
    if code in ANTHROPIC_ERROR_TYPES:
        return code
    return _UPSTREAM_CODES.get(code, "api_error")


def error_payload(error: ErrorEvent) -> bytes:
    """The data of an ``event: error`` frame (the anthropic SDK raises on it)."""
    return _dumps({"type": "error", "error": {"type": error_type(error), "message": error.message}})


class AnthropicEncoder(Stage):
    """Writes the stream as Anthropic sends it: ``message_start``, content blocks numbered from 0
    (each started before its deltas and stopped before the next opens), ``message_delta`` with
    the stop reason and usage, ``message_stop``; a fault is one ``error`` event instead.

    Anthropic blocks never interleave, so when parts do: a text or reasoning part that resumes
    after another part opens a new block, and while a tool call's block is open everything for
    other parts waits (in order) until that call ends, so each call's argument fragments stay
    one block of valid JSON."""

    __slots__ = (
        "_held",
        "_id",
        "_kinds",
        "_live",
        "_live_index",
        "_live_kind",
        "_model",
        "_next_index",
        "_out",
        "_pending",
        "_ping",
        "_queue",
        "_send",
        "_signatures",
        "_started",
        "_text_frame",
        "_text_head",
        "_text_live",
        "_usage",
    )

    handles = (*_CONTENT, ResponseStart, UsageUpdate, Finish, ErrorEvent, Ping, Done)
    emits = (Chunk, Ping)

    def __init__(self, options: Options) -> None:
        self._id: str | None = options.get("response_id")
        self._model: str | None = options.get("model")
        self._ping = options.get("ping", "comment") != "drop"
        self._pending: ResponseStart | None = None
        self._started = False
        self._next_index = 0
        self._live: int | None = None
        self._live_kind = _TEXT
        self._live_index = -1
        self._held = False  # a tool call's block is open and the call has not ended
        self._queue: list[Any] = []
        self._kinds: dict[int, str] = {}
        self._signatures: dict[int, str] = {}
        self._usage = UsageUpdate()
        self._text_head = b""
        self._text_frame = b""
        self._text_live: int | None = None  # the live block's part, when it is a text block
        self._out: Callable[[bytes], None] | None = None
        self._send: Callable[[bytes, str], None] = self._chunk

    def _chunk(self, payload: bytes, event: str) -> None:
        self.emit(Chunk(payload, event))

    def connected(self) -> None:
        # Compile-time fusion, as the chat envelope does: when the next stage is the SSE
        # serializer (all it does with a named Chunk is frame it), frame here and skip a hop and
        # an object per event. Replace the serializer and this simply doesn't apply.
        target = getattr(self.emit, "__self__", None)
        if target is not None and getattr(target, "chunk_frame", None) is not None:
            out = target.emit
            self._out = out
            self._send = lambda payload, event: out(
                b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
            )

    def feed_text(self, part: int, text: str) -> None:
        """``feed(TextDelta(part, text))`` without the event (see Stage.text_route)."""
        if part == self._text_live:
            out = self._out
            if out is not None:
                out(self._text_frame + _dumps(text) + b"}}\n\n")
            else:
                self._send(self._text_head + _dumps(text) + b"}}", "content_block_delta")
        else:
            self._content(TextDelta(part, text))

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is TextDelta:
            self.feed_text(item.part, item.text)
        elif cls in _CONTENT:
            self._content(item)
        elif cls is UsageUpdate:
            self._merge(item)
        elif cls is ResponseStart:
            self._pending = item
        elif cls is Finish:
            self._finish(item)
        elif cls is ErrorEvent:
            self._queue.clear()
            self._send(error_payload(item), "error")
        elif cls is Ping and self._ping:
            self._start()
            if self._started:
                self._send(b'{"type":"ping"}', "ping")
            else:
                self.emit(item)  # before anything is known: the serializer's comment keeps the line open
        # Done: nothing follows message_stop (or an error) on the wire.

    def _merge(self, usage: UsageUpdate) -> None:
        old = self._usage
        self._usage = UsageUpdate(
            usage.input_tokens if usage.input_tokens is not None else old.input_tokens,
            usage.output_tokens if usage.output_tokens is not None else old.output_tokens,
            usage.cache_read_tokens if usage.cache_read_tokens is not None else old.cache_read_tokens,
            usage.cache_write_tokens if usage.cache_write_tokens is not None else old.cache_write_tokens,
            usage.reasoning_tokens if usage.reasoning_tokens is not None else old.reasoning_tokens,
        )

    def _start(self) -> None:
        """Send ``message_start`` if it is due (late, so usage known early goes in it)."""
        start = self._pending
        if self._started or start is None:
            return
        self._started = True
        message_id = self._id or (start.id if start.id.startswith("msg_") else f"msg_{start.id}")
        usage = self._usage
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model or start.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.input_tokens or 0,
                "cache_creation_input_tokens": usage.cache_write_tokens or 0,
                "cache_read_input_tokens": usage.cache_read_tokens or 0,
                "output_tokens": usage.output_tokens or 0,
            },
        }
        self._send(_dumps({"type": "message_start", "message": message}), "message_start")

    def _content(self, item: Any) -> None:
        part = item.part
        if self._held and part != self._live:
            self._queue.append(item)
            return
        if not self._started:
            self._start()
        cls = item.__class__
        if cls is TextDelta or cls is ReasoningDelta:
            if not item.text:
                return
            kind = _TEXT if cls is TextDelta else _THINKING
            if part != self._live:
                self._open(part, kind, None)
            if kind == _TEXT:
                self.feed_text(part, item.text)
            else:
                delta = {"type": "thinking_delta", "thinking": item.text}
                self._delta(delta)
        elif cls is ToolCallDelta:
            if part == self._live and item.arguments:
                self._delta({"type": "input_json_delta", "partial_json": item.arguments})
        elif cls is TextStart:
            self._kinds[part] = _TEXT
            self._open(part, _TEXT, None)
        elif cls is ReasoningStart:
            self._kinds[part] = _THINKING
            if item.redacted is not None:
                self._open(part, "redacted_thinking", {"type": "redacted_thinking", "data": item.redacted})
                self._close()
            else:
                self._open(part, _THINKING, None)
        elif cls is ToolCallStart:
            self._kinds[part] = _TOOL
            block = {"type": "tool_use", "id": item.id, "name": item.name, "input": {}}
            self._open(part, _TOOL, block)
            self._held = True
        elif cls is ReasoningEnd:
            if item.signature:
                if part != self._live:
                    # The part's block was closed when another part cut in: the signature
                    # proves the whole reasoning, so it goes on the part's last block.
                    return
                self._delta({"type": "signature_delta", "signature": item.signature})
            if part == self._live:
                self._close()
            self._kinds.pop(part, None)
        else:  # TextEnd, ToolCallEnd
            if part == self._live:
                self._close()
            self._kinds.pop(part, None)

    def _open(self, part: int, kind: str, block: dict[str, Any] | None) -> None:
        self._close()
        index = self._next_index
        self._next_index += 1
        if block is None:
            block = (
                {"type": "text", "text": ""}
                if kind == _TEXT
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
        self._send(
            _dumps({"type": "content_block_start", "index": index, "content_block": block}),
            "content_block_start",
        )
        self._live, self._live_kind, self._live_index = part, kind, index
        self._text_live = part if kind == _TEXT else None
        self._text_head = (
            b'{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":' % index
        )
        self._text_frame = b"event: content_block_delta\ndata: " + self._text_head

    def _delta(self, delta: dict[str, Any]) -> None:
        self._send(
            _dumps({"type": "content_block_delta", "index": self._live_index, "delta": delta}),
            "content_block_delta",
        )

    def _close(self) -> None:
        if self._live is None:
            return
        self._send(b'{"type":"content_block_stop","index":%d}' % self._live_index, "content_block_stop")
        self._live = None
        self._text_live = None
        self._live_kind = _TEXT
        if self._held:
            self._held = False
            queued, self._queue = self._queue, []
            for item in queued:
                self._content(item)

    def _finish(self, finish: Finish) -> None:
        self._start()
        while self._live is not None:
            self._close()  # parts the decoder left open (it should not): end them in order
        if finish.usage is not None:
            self._merge(finish.usage)
        usage = self._usage
        reason = STOP_REASONS.get(finish.reason, "end_turn")
        raw = finish.raw_reason
        if raw in _KEPT_STOP_REASONS and _UPSTREAM_STOP_REASONS.get(raw) == finish.reason:
            reason = raw  # Claude's own word still means it (a full context is not max_tokens)
        elif finish.reason == "stop" and finish.stop_sequence:
            reason = "stop_sequence"
        counts: dict[str, int] = {"output_tokens": usage.output_tokens or 0}
        if usage.input_tokens is not None:
            counts["input_tokens"] = usage.input_tokens
        if usage.cache_read_tokens is not None:
            counts["cache_read_input_tokens"] = usage.cache_read_tokens
        if usage.cache_write_tokens is not None:
            counts["cache_creation_input_tokens"] = usage.cache_write_tokens
        delta = {
            "stop_reason": reason,
            "stop_sequence": finish.stop_sequence if reason == "stop_sequence" else None,
        }
        self._send(_dumps({"type": "message_delta", "delta": delta, "usage": counts}), "message_delta")
        self._send(b'{"type":"message_stop"}', "message_stop")


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "anthropic_encode",
            AnthropicEncoder,
            options=(
                Option.optional_string(
                    "model",
                    "The model name clients see; by default the upstream's model.",
                    per_conversion=True,
                ),
                Option.optional_string(
                    "response_id",
                    "The message id Anthropic clients see; by default 'msg_' + the upstream response id.",
                    per_conversion=True,
                ),
            ),
            description="Neutral events to Anthropic Messages stream events (message_start to message_stop).",
        )
    )


@hookimpl
def register_formats(register: Any) -> None:
    register(
        EncoderSpec(
            "anthropic-messages",
            ("anthropic_encode", "serialize"),
            description="The Anthropic Messages stream (message_start ... message_stop, named events).",
        )
    )
