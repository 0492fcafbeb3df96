"""The openai-responses encoder: neutral events as the OpenAI Responses streaming protocol."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import stream_error_for
from ..events import (
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
from ..stage import EncoderSpec, Options, Stage, StageSpec
from .responses_items import OPTIONS, encode_reasoning, error_code, usage_object

__all__ = ["STAGE", "ResponsesEncoder", "register_formats", "register_stages"]

STAGE = "responses_encode"
PING = b": ping\n\n"
_TAIL = b',"sequence_number":%d}\n\n'
_dumps = orjson.dumps

# Neutral finish reasons that end a response short of its end, and the Responses word for why.
# `pause` (Claude's pause_turn) is unfinished work a client must continue, like running out of room.
_INCOMPLETE = {
    "length": "max_output_tokens",
    "pause": "max_output_tokens",
    "content_filter": "content_filter",
}


class _Item:
    """One output item being streamed: its place in ``output`` and what it has gathered."""

    __slots__ = ("call_id", "delta_head", "id", "index", "kind", "name", "namespace", "parts", "redacted")

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind
        self.index = index
        self.id = item_id
        self.parts: list[str] = []
        self.delta_head = b""
        self.call_id = self.name = ""
        self.namespace: str | None = None
        self.redacted: str | None = None


class ResponsesEncoder(Stage):
    """Writes each output item as OpenAI does: announced (``output_item.added``), its content
    streamed, then finished (``output_item.done``), numbered in ``output`` order; the response
    opens with ``response.created`` and ``response.in_progress`` and closes with exactly one of
    ``response.completed``, ``response.incomplete`` or ``response.failed``. Every frame has an
    ``event:`` line equal to its ``type`` and the next ``sequence_number``."""

    __slots__ = (
        "_base",
        "_encrypted",
        "_ended",
        "_items",
        "_names",
        "_options",
        "_output",
        "_raise",
        "_reasoning_text",
        "_seq",
        "_usage",
    )

    handles = None

    def __init__(self, options: Options) -> None:
        self._options = options
        self._reasoning_text = options.get("thinking") == "reasoning_text"
        self._encrypted: bool = options["reasoning_encrypted_content"]
        self._raise = options.get("on_error") == "raise"
        self._names: dict[str, tuple[str, str]] = options["tool_namespaces"] or {}
        self._seq = 0
        self._base: dict[str, Any] | None = None
        self._items: dict[int, _Item] = {}
        self._output: dict[int, dict[str, Any]] = {}
        self._usage: UsageUpdate | None = None
        self._ended = False

    # -- framing ---------------------------------------------------------------------------

    def _send(self, kind: str, body: dict[str, Any]) -> None:
        body["sequence_number"] = self._seq
        self._seq += 1
        self.emit(b"event: " + kind.encode() + b"\ndata: " + _dumps({"type": kind, **body}) + b"\n\n")

    def feed_text(self, part: int, text: str) -> None:
        """``feed(TextDelta(part, text))`` without the event (see Stage.text_route): the hot path,
        with the bytes around a text delta built once per item."""
        entry = self._items[part]
        entry.parts.append(text)
        seq = self._seq
        self._seq = seq + 1
        self.emit(entry.delta_head + _dumps(text) + _TAIL % seq)

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        assert self._base is not None
        output = [self._output[i] for i in sorted(self._output)]
        return {**self._base, "status": status, "output": output, **fields}

    # -- events ----------------------------------------------------------------------------

    def feed(self, item: Any) -> None:
        if self._ended:
            return
        cls = item.__class__
        if cls is TextDelta:
            self.feed_text(item.part, item.text)
        elif cls is ToolCallDelta:
            entry = self._items[item.part]
            entry.parts.append(item.arguments)
            self._send(
                "response.function_call_arguments.delta",
                {"item_id": entry.id, "output_index": entry.index, "delta": item.arguments},
            )
        elif cls is ReasoningDelta:
            self._reasoning_delta(self._items[item.part], item.text)
        elif cls is TextStart:
            self._text_start(item.part)
        elif cls is TextEnd:
            self._text_end(self._items.pop(item.part))
        elif cls is ToolCallStart:
            self._call_start(item)
        elif cls is ToolCallEnd:
            self._call_end(self._items.pop(item.part))
        elif cls is ReasoningStart:
            self._reasoning_start(item)
        elif cls is ReasoningEnd:
            self._reasoning_end(self._items.pop(item.part), item.signature)
        elif cls is ResponseStart:
            self._start(item.id, item.model)
        elif cls is UsageUpdate:
            self._usage = item
        elif cls is Finish:
            self._finish(item)
        elif cls is ErrorEvent:
            self._fail(item)
        elif cls is Ping:
            self.emit(PING)
        elif cls is Done:
            pass  # the terminal event already ended the stream; Responses sends no end marker

    def _start(self, upstream_id: str, model: str) -> None:
        options = self._options
        created = options["created"]
        self._base = {
            "id": options["response_id"] or "resp_" + upstream_id.removeprefix("msg_"),
            "object": "response",
            "created_at": created if created is not None else int(time.time()),
            "model": options["model"] or model,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "parallel_tool_calls": True,
            "temperature": None,
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
        }
        response = self._response("in_progress")
        self._send("response.created", {"response": response})
        self._send("response.in_progress", {"response": response})

    def _open(self, part: int, kind: str, prefix: str, item: dict[str, Any]) -> _Item:
        assert self._base is not None
        index = len(self._output) + len(self._items)
        entry = _Item(kind, index, f"{prefix}_{self._base['id'].removeprefix('resp_')}_{index}")
        self._items[part] = entry
        self._send("response.output_item.added", {"output_index": index, "item": {"id": entry.id, **item}})
        return entry

    def _close(self, entry: _Item, item: dict[str, Any]) -> None:
        self._output[entry.index] = item
        self._send("response.output_item.done", {"output_index": entry.index, "item": item})

    def _text_start(self, part: int) -> None:
        entry = self._open(part, "message", "msg", _message([], "in_progress"))
        self._send(
            "response.content_part.added",
            {"item_id": entry.id, "output_index": entry.index, "content_index": 0, "part": _text_part("")},
        )
        head = _dumps(
            {
                "type": "response.output_text.delta",
                "item_id": entry.id,
                "output_index": entry.index,
                "content_index": 0,
                "logprobs": [],
            }
        )
        entry.delta_head = b"event: response.output_text.delta\ndata: " + head[:-1] + b',"delta":'

    def _text_end(self, entry: _Item) -> None:
        text = "".join(entry.parts)
        where = {"item_id": entry.id, "output_index": entry.index, "content_index": 0}
        self._send("response.output_text.done", {**where, "text": text, "logprobs": []})
        self._send("response.content_part.done", {**where, "part": _text_part(text)})
        self._close(entry, {"id": entry.id, **_message([_text_part(text)], "completed")})

    def _call_start(self, event: ToolCallStart) -> None:
        if self._call_id_taken(event.id):
            # The Responses API (and the openai SDK's accumulator) tells function calls apart by
            # call_id alone, and Anthropic never repeats a tool_use id: a repeat cannot be written.
            self._refuse(
                "invalid_upstream_response",
                f"invalid upstream stream: tool_use id {event.id!r} repeats within the message",
            )
            return
        namespace, name = self._names.get(event.name, (None, event.name))
        item: dict[str, Any] = {"type": "function_call", "call_id": event.id, "name": name, "arguments": ""}
        if namespace is not None:
            item["namespace"] = namespace
        entry = self._open(event.part, "function_call", "fc", {**item, "status": "in_progress"})
        entry.call_id, entry.name, entry.namespace = event.id, name, namespace

    def _call_id_taken(self, call_id: str) -> bool:
        return any(item.get("call_id") == call_id for item in self._output.values()) or any(
            entry.call_id == call_id for entry in self._items.values() if entry.kind == "function_call"
        )

    def _call_end(self, entry: _Item) -> None:
        arguments = "".join(entry.parts)
        self._send(
            "response.function_call_arguments.done",
            {"item_id": entry.id, "output_index": entry.index, "arguments": arguments},
        )
        item: dict[str, Any] = {
            "id": entry.id,
            "type": "function_call",
            "call_id": entry.call_id,
            "name": entry.name,
            "arguments": arguments,
            "status": "completed",
        }
        if entry.namespace is not None:
            item["namespace"] = entry.namespace
        self._close(entry, item)

    def _reasoning_start(self, event: ReasoningStart) -> None:
        entry = self._open(event.part, "reasoning", "rs", {"type": "reasoning", "summary": []})
        entry.redacted = event.redacted

    def _reasoning_delta(self, entry: _Item, text: str) -> None:
        where = {"item_id": entry.id, "output_index": entry.index}
        if self._reasoning_text:
            if not entry.parts:
                part = {"type": "reasoning_text", "text": ""}
                self._send("response.content_part.added", {**where, "content_index": 0, "part": part})
            self._send("response.reasoning_text.delta", {**where, "content_index": 0, "delta": text})
        else:
            if not entry.parts:
                part = {"type": "summary_text", "text": ""}
                self._send(
                    "response.reasoning_summary_part.added", {**where, "summary_index": 0, "part": part}
                )
            self._send("response.reasoning_summary_text.delta", {**where, "summary_index": 0, "delta": text})
        entry.parts.append(text)

    def _reasoning_end(self, entry: _Item, signature: str | None) -> None:
        text = "".join(entry.parts)
        item: dict[str, Any] = {"id": entry.id, "type": "reasoning", "summary": []}
        where = {"item_id": entry.id, "output_index": entry.index}
        if entry.parts and self._reasoning_text:
            part = {"type": "reasoning_text", "text": text}
            self._send("response.reasoning_text.done", {**where, "content_index": 0, "text": text})
            self._send("response.content_part.done", {**where, "content_index": 0, "part": part})
            item["content"] = [part]
        elif entry.parts:
            part = {"type": "summary_text", "text": text}
            self._send("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text})
            self._send("response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part})
            item["summary"] = [part]
        if self._encrypted:
            if entry.redacted is not None:
                item["encrypted_content"] = encode_reasoning(
                    {"type": "redacted_thinking", "data": entry.redacted}
                )
            elif signature is not None:
                block = {"type": "thinking", "thinking": text, "signature": signature}
                item["encrypted_content"] = encode_reasoning(block)
        item["status"] = "completed"
        self._close(entry, item)

    def _finish(self, event: Finish) -> None:
        self._ended = True
        usage = event.usage or self._usage
        fields: dict[str, Any] = {"usage": usage_object(usage) if usage is not None else None}
        incomplete = _INCOMPLETE.get(event.reason)
        if incomplete is None:
            self._send("response.completed", {"response": self._response("completed", **fields)})
        else:
            fields["incomplete_details"] = {"reason": incomplete}
            self._send("response.incomplete", {"response": self._response("incomplete", **fields)})

    def _refuse(self, type_: str, message: str) -> None:
        """A fault found here, past the finish stage: it ends the stream as that stage would,
        raised with on_error="raise", and no later input is read."""
        conversion = getattr(self, "conversion", None)  # unset for a stage used on its own
        if conversion is not None:
            conversion.finished = True
        if self._raise:
            self._ended = True
            raise stream_error_for(type_, message)
        self._fail(ErrorEvent(type_, message))

    def _fail(self, event: ErrorEvent) -> None:
        if self._base is None:
            # A fault before the upstream said anything: the response still opens, so a client
            # reading the protocol sees a response that failed rather than a broken stream.
            self._start("unknown", "")
        self._ended = True
        error = {"code": error_code(event.code), "message": event.message, "type": event.type}
        fields: dict[str, Any] = {"error": error}
        if self._usage is not None:
            fields["usage"] = usage_object(self._usage)
        self._send("response.failed", {"response": self._response("failed", **fields)})


def _message(content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "status": status, "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


@hookimpl
def register_stages(register: Callable[..., None]) -> None:
    register(
        StageSpec(
            STAGE,
            ResponsesEncoder,
            options=OPTIONS,
            description="Neutral events to the OpenAI Responses streaming protocol (framed SSE).",
        )
    )


@hookimpl
def register_formats(register: Callable[..., None]) -> None:
    register(
        EncoderSpec(
            "openai-responses",
            stages=(STAGE,),
            description="The OpenAI Responses API's streaming events (POST /v1/responses).",
            thinking_modes=("reasoning_text",),
        )
    )
