"""The OpenAI Chat Completions encoder: neutral events into chat.completion.chunk objects."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from ..events import (
    Chunk,
    ErrorEvent,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import EncoderSpec, Option, Options, Stage, StageSpec

__all__ = [
    "FINISH_REASONS",
    "THINKING_FIELDS",
    "Envelope",
    "error_object",
    "reasoning_detail",
    "register_formats",
    "register_stages",
    "usage_object",
]

_dumps = orjson.dumps

#: Neutral finish reasons -> OpenAI finish reasons. An unfinished turn ("pause") reads as
#: "length" rather than a clean "stop" (R22).
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "pause": "length",
}

#: The ``format`` of a ``reasoning_details`` entry holding an Anthropic thinking block, in
#: OpenRouter's convention.
DETAIL_FORMAT = "anthropic-claude-v1"


def reasoning_detail(
    index: int, text: str, signature: str | None, redacted: str | None
) -> dict[str, Any] | None:
    """One ``reasoning_details`` entry (OpenRouter's convention) for a whole thinking block: its
    text and signature, or a redacted block's data; ``None`` for thinking that carries no
    signature (there is nothing a client could give back for Claude to verify)."""
    if redacted is not None:
        return {"type": "reasoning.encrypted", "data": redacted, "format": DETAIL_FORMAT, "index": index}
    if signature is None:
        return None
    return {
        "type": "reasoning.text",
        "text": text,
        "signature": signature,
        "format": DETAIL_FORMAT,
        "index": index,
    }


#: ``thinking`` option value -> the delta field reasoning goes to ("native" is DeepSeek's).
THINKING_FIELDS = {
    "native": "reasoning_content",
    "reasoning_content": "reasoning_content",
    "reasoning": "reasoning",
}


def usage_object(usage: UsageUpdate) -> dict[str, Any]:
    """The OpenAI ``usage`` object for usage totals (prompt = input + cache read + cache write)."""
    prompt = usage.prompt_tokens
    completion = usage.output_tokens or 0
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens or 0},
    }
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def error_object(error: ErrorEvent) -> dict[str, Any]:
    """The OpenAI error body for an in-band error (the openai SDK raises APIError on it)."""
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": None,
            "code": error.code or error.type,
        }
    }


class Envelope(Stage):
    """Wraps each delta in the chunk envelope (``id``, ``object``, ``created``, ``model``, one
    choice with index 0). The bytes around the delta are serialized once, at the response's
    start; per event only the delta's own text is encoded. Tool calls are numbered 0, 1, 2... in
    the order they start. Errors and the end pass on to the serializer, which writes OpenAI's
    error body and ``[DONE]``."""

    __slots__ = (
        "_calls",
        "_content_head",
        "_created",
        "_details",
        "_envelope",
        "_field",
        "_head",
        "_id",
        "_model",
        "_post",
        "_pre",
        "_send",
        "_tail",
        "_tail_usage_null",
        "_thinking",
        "_usage",
    )

    handles = (
        ResponseStart,
        TextDelta,
        ReasoningDelta,
        ReasoningStart,
        ReasoningEnd,
        ToolCallStart,
        ToolCallDelta,
        Finish,
    )
    emits = (Chunk,)

    def __init__(self, options: Options) -> None:
        self._id: str | None = options["response_id"]
        self._model: str | None = options["model"]
        self._created: int | None = options["created"]
        self._field = THINKING_FIELDS.get(options.get("thinking", "native"), "reasoning_content")
        self._usage: str | None = options["usage"] if options["include_usage"] else None
        self._calls: dict[int, int] | None = None  # part -> the client's tool-call index
        # Each thinking block's text, held until its end, when it goes out whole with its
        # signature in delta.reasoning_details (the client gives it back for the next turn);
        # None when reasoning_details is off (an idle conversion then holds no dict for it).
        self._thinking: dict[int, list[str]] | None = {} if options["reasoning_details"] else None
        self._details = 0
        usage_null = b',"usage":null' if self._usage else b""
        self._tail_usage_null = usage_null + b"}"
        self._envelope = b""
        self._head = b""
        self._content_head = b""
        self._tail = b""
        self._pre = self._post = b""
        self._send: Any = None

    def connected(self) -> None:
        # Compile-time fusion: when the next stage declares that all it does with a Chunk is
        # frame it (the SSE serializer does), build the framed bytes here and skip a hop per
        # event. Replace the serializer with one that does more and this simply doesn't apply.
        target = getattr(self.emit, "__self__", None)
        frame = getattr(target, "chunk_frame", None)
        if target is not None and frame is not None:
            self._pre, self._post = frame
            self._send = target.emit
        else:
            emit = self.emit
            self._send = lambda payload: emit(Chunk(payload))

    def feed_text(self, part: int, text: str) -> None:
        """``feed(TextDelta(part, text))`` without the event (see Stage.text_route)."""
        self._send(self._content_head + _dumps(text) + self._tail)

    def text_frame(self) -> tuple[bytes, bytes, Callable[[bytes], None]]:
        """``(head, tail, send)``: until this stage is next fed, ``feed_text(part, text)`` is
        ``send(head + orjson.dumps(text) + tail)`` (for stage fusion, see builtins/fusion.py)."""
        return self._content_head, self._tail, self._send

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is TextDelta:
            self._send(self._content_head + _dumps(item.text) + self._tail)
        elif cls is ToolCallDelta:
            calls = self._calls or {}
            call = {"index": calls[item.part], "function": {"arguments": item.arguments}}
            self._delta({"tool_calls": [call]})
        elif cls is ToolCallStart:
            if self._calls is None:
                self._calls = {}
            index = self._calls[item.part] = len(self._calls)
            function = {"name": item.name, "arguments": ""}
            self._delta(
                {"tool_calls": [{"index": index, "id": item.id, "type": "function", "function": function}]}
            )
        elif cls is ReasoningDelta:
            self._delta({self._field: item.text})
            if self._thinking is not None:
                held = self._thinking.get(item.part)
                if held is not None:
                    held.append(item.text)
        elif cls is ReasoningStart:
            if self._thinking is not None:
                if item.redacted is None:
                    self._thinking[item.part] = []
                else:
                    self._detail("", None, item.redacted)
        elif cls is ReasoningEnd:
            if self._thinking is not None:
                held = self._thinking.pop(item.part, None)
                if held is not None:
                    self._detail("".join(held), item.signature, None)
        elif cls is ResponseStart:
            self._start(item)
        else:
            self._finish(item)

    def _finish(self, item: Finish) -> None:
        usage = None
        if self._usage == "final" and item.usage is not None:
            usage = b',"usage":' + _dumps(usage_object(item.usage)) + b"}"
        reason = FINISH_REASONS.get(item.reason, "stop")
        self._send(
            self._head
            + b'{},"logprobs":null,"finish_reason":'
            + _dumps(reason)
            + b"}]"
            + (usage or self._tail_usage_null)
            + self._post
        )
        if self._usage == "chunk" and item.usage is not None:
            body = _dumps(usage_object(item.usage))
            self._send(self._pre + self._envelope + b',"choices":[],"usage":' + body + b"}" + self._post)

    def _start(self, item: ResponseStart) -> None:
        envelope = _dumps(
            {
                # A chat upstream's id is kept as it is, not prefixed twice.
                "id": self._id or (item.id if item.id.startswith("chatcmpl-") else f"chatcmpl-{item.id}"),
                "object": "chat.completion.chunk",
                "created": self._created if self._created is not None else int(time.time()),
                "model": self._model or item.model,
            }
        )[:-1]
        self._envelope = envelope
        self._head = self._pre + envelope + b',"choices":[{"index":0,"delta":'
        self._content_head = self._head + b'{"content":'
        self._tail = b'},"logprobs":null,"finish_reason":null}]' + self._tail_usage_null + self._post
        self._send(self._head + b'{"role":"assistant","content":""' + self._tail)

    def _detail(self, text: str, signature: str | None, redacted: str | None) -> None:
        detail = reasoning_detail(self._details, text, signature, redacted)
        if detail is not None:
            self._details += 1
            self._delta({"reasoning_details": [detail]})

    def _delta(self, delta: dict[str, Any]) -> None:
        self._send(self._head + _dumps(delta)[:-1] + self._tail)


def _created(value: Any, registry: Registry) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"must be a Unix time in whole seconds (an int) or None, not {value!r}")
    return value


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "envelope",
            Envelope,
            options=(
                Option.optional_string(
                    "model",
                    "The model name clients see; by default the upstream's model.",
                    per_conversion=True,
                ),
                Option.optional_string(
                    "response_id",
                    "The chunk id clients see; by default 'chatcmpl-' + the upstream id (kept if it has it).",
                    per_conversion=True,
                ),
                Option(
                    "created",
                    None,
                    "The chunks' 'created' time (Unix seconds); by default the time the stream started.",
                    _created,
                    allowed="an int or None",
                    per_conversion=True,
                ),
                Option.boolean(
                    "include_usage",
                    False,
                    "Report token usage (as stream_options.include_usage asks): prompt = input + "
                    "cache read + cache creation tokens.",
                ),
                Option.boolean(
                    "reasoning_details",
                    False,
                    "Send each thinking block whole, with its signature (or redacted thinking's data), "
                    "in delta.reasoning_details as OpenRouter does, for the client to send back so "
                    "that Claude keeps thinking across tool calls.",
                ),
                Option.choice(
                    "usage",
                    "chunk",
                    ("chunk", "final"),
                    "Where usage goes: its own last chunk with choices: [] ('chunk'), or on the "
                    "finish chunk ('final', for clients that cannot take an empty choices list).",
                ),
            ),
            description="Neutral events to OpenAI chat.completion.chunk objects, errors and [DONE].",
        )
    )


@hookimpl
def register_formats(register: Any) -> None:
    register(
        EncoderSpec(
            "openai-chat",
            ("envelope", "serialize"),
            description="The OpenAI Chat Completions stream (chat.completion.chunk events).",
            thinking_modes=("reasoning_content", "reasoning"),
        )
    )
