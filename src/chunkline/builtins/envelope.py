"""The envelope stage: typed deltas into OpenAI chat.completion.chunk objects (envelope built once)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..events import (
    Chunk,
    Finish,
    MessageStart,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["Envelope", "register_stages", "usage_object"]

_dumps = orjson.dumps


def usage_object(usage: UsageReport) -> dict[str, Any]:
    """The OpenAI ``usage`` object for a report."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


class Envelope(Stage):
    """Wraps each delta in the chunk envelope (``id``, ``object``, ``created``, ``model``, one
    choice with index 0). The bytes around the delta are serialized once, at ``message_start``;
    per event only the delta's own text is encoded."""

    __slots__ = (
        "_content_head",
        "_created",
        "_envelope",
        "_head",
        "_id",
        "_model",
        "_post",
        "_pre",
        "_send",
        "_tail",
        "_tail_usage_null",
    )

    handles = (MessageStart, TextDelta, ReasoningDelta, ToolCallDelta, Finish, UsageReport)
    emits = (Chunk,)

    def __init__(self, options: Options) -> None:
        self._id: str | None = options["response_id"]
        self._model: str | None = options["model"]
        self._created: int | None = options["created"]
        usage_null = b',"usage":null' if options.get("include_usage") else b""
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

    def feed_text(self, text: str) -> None:
        """``feed(TextDelta(text))`` without the event (see Stage.text_route)."""
        self._send(self._content_head + _dumps(text) + self._tail)

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is TextDelta:
            self.feed_text(item.text)
        elif cls is ToolCallDelta:
            self._delta(_tool_call(item))
        elif cls is ReasoningDelta:
            self._delta({item.field: item.text})
        elif cls is MessageStart:
            self._start(item)
        elif cls is Finish:
            usage = b',"usage":' + _dumps(usage_object(item.usage)) + b"}" if item.usage else None
            self._send(
                self._head
                + b'{},"logprobs":null,"finish_reason":'
                + _dumps(item.reason)
                + b"}]"
                + (usage or self._tail_usage_null)
                + self._post
            )
        else:
            usage = _dumps(usage_object(item))
            self._send(self._pre + self._envelope + b',"choices":[],"usage":' + usage + b"}" + self._post)

    def _start(self, item: MessageStart) -> None:
        envelope = _dumps(
            {
                "id": self._id or f"chatcmpl-{item.id}",
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

    def _delta(self, delta: dict[str, Any]) -> None:
        self._send(self._head + _dumps(delta)[:-1] + self._tail)


def _tool_call(item: ToolCallDelta) -> dict[str, Any]:
    if item.id is None:
        return {"tool_calls": [{"index": item.index, "function": {"arguments": item.arguments}}]}
    function = {"name": item.name, "arguments": item.arguments}
    call = {"index": item.index, "id": item.id, "type": "function", "function": function}
    return {"tool_calls": [call]}


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
                    "The chunk id clients see; by default 'chatcmpl-' + the upstream message id.",
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
            ),
            description="Typed deltas to OpenAI chat.completion.chunk objects.",
        )
    )
