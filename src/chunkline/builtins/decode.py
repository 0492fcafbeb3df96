"""The Anthropic Messages decoder: event dicts in, checked against the protocol, neutral events out."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..errors import describe
from ..events import (
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
)
from ..hookspecs import hookimpl
from ..stage import DecoderSpec, Option, Options, Stage, StageSpec, positive_int
from .anthropic_fields import arguments_of, integer, object_of, string_of, usage_of
from .fields import Malformed

__all__ = ["STOP_REASONS", "Decoder", "register_formats", "register_stages"]

#: Anthropic stop reasons -> neutral finish reasons (R22 in docs/conformance-rules.md). Unknown
#: reasons finish as "stop"; the finish stage's ``finish_reasons`` option overrides any of them.
STOP_REASONS = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "model_context_window_exceeded": "length",
        "refusal": "content_filter",
        "pause_turn": "pause",
        "compaction": "stop",
    }
)

# Blocks whose deltas mean something to a client; every other block type (server tools and
# their results, MCP, compaction, and types not invented yet) is "other" and its deltas are
# dropped, never turned into content or tool calls.
_KNOWN_BLOCKS = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})
# Which block each delta type belongs to; a delta on the wrong kind of block is a protocol error.
_DELTA_BLOCK = {
    "text_delta": "text",
    "citations_delta": "text",
    "thinking_delta": "thinking",
    "signature_delta": "thinking",
    "input_json_delta": "tool_use",
}
_DEFAULT_MAX_BLOCKS = 10_000


class _ToolBlock:
    """A tool_use block's start input, sent as its arguments if no fragment streams."""

    __slots__ = ("input", "streamed")

    def __init__(self, tool_input: Any) -> None:
        self.input = tool_input
        self.streamed = False


class Decoder(Stage):
    """Turns Anthropic stream events into neutral events (part ids are block indexes), keeping
    per-block state and reporting protocol violations (events before ``message_start``, a second
    ``message_start``, deltas for blocks that are not open) as ``invalid_upstream_response``
    errors. Input after ``message_stop`` is ignored; unknown event, block and delta types are
    skipped; blocks that mean nothing to a client (server tools, their results) are left out."""

    __slots__ = (
        "_blocks",
        "_ended",
        "_held",
        "_max_blocks",
        "_send_text",
        "_started",
        "_stop_reason",
        "_stop_sequence",
        "_stopped",
    )

    handles = (dict, ErrorEvent)

    def __init__(self, options: Options) -> None:
        # Block index -> kind while the block is open, -> None once it has stopped.
        self._blocks: dict[int, str | None] = {}
        # Per open block, what its end needs: a tool_use block's start input, a thinking block's
        # signature. One dict for both keeps an idle conversion small.
        self._held: dict[int, Any] = {}
        self._started = False
        self._stopped = False
        self._ended = False
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._send_text: Any = None
        self._max_blocks: int = options.get("max_content_blocks", _DEFAULT_MAX_BLOCKS)

    def connected(self) -> None:
        self._send_text = self.text_route()

    def feed(self, item: Any) -> None:
        if item.__class__ is not dict:
            self._ended = True  # an error from the parser: it ends the stream
            self.emit(item)
            return
        if self._stopped:
            return
        # The fast path: a well-formed text delta on an open text block (most events). Plain
        # subscripts inside one try are the cheapest checks Python has; anything unexpected
        # falls through to the full path, which finds and reports the problem. Sending happens
        # outside every try: a later stage's exception must never pass for a malformed event.
        # Thinking deltas, the next most common, take it too (one event object each).
        text = thought = None
        try:
            if item["type"] == "content_block_delta":
                delta = item["delta"]
                index = item["index"]
                kind = delta["type"]
                if kind == "text_delta" and type(index) is int and self._blocks[index] == "text":
                    text = delta["text"]
                elif kind == "thinking_delta" and type(index) is int and self._blocks[index] == "thinking":
                    thought = delta["thinking"]
        except (KeyError, TypeError):
            pass
        if type(text) is str:
            if text:
                self._send_text(index, text)
            return
        if type(thought) is str:
            if thought and not self.conversion.finished:
                self.emit(ReasoningDelta(index, thought))
            return
        kind = item.get("type")
        out: list[Any] = []
        try:
            if kind == "content_block_delta":
                self._delta(item, out)
            elif kind == "content_block_start":
                self._block_start(item, out)
            elif kind == "content_block_stop":
                self._close_block(item, out)
            elif kind == "message_delta":
                self._message_delta(item, out)
            elif kind == "message_start":
                self._message_start(item, out)
            elif kind == "message_stop":
                self._require_started(kind)
                self._stopped = True
                # A response cut by max_tokens can leave a block open; close it so the stages
                # that finish parts (a tool call's "{}", a closing </think>) get to.
                for index, open_kind in list(self._blocks.items()):
                    if open_kind is not None:
                        self._end_part(index, open_kind, out)
                reason = self._stop_reason
                self._ended = True
                out.append(Finish(STOP_REASONS.get(reason or "", "stop"), reason, self._stop_sequence))
            elif kind == "ping":
                out.append(Ping())
            elif kind == "error":
                self._upstream_error(item, out)
            elif not isinstance(kind, str):
                raise Malformed(f"an event has no string 'type': {describe(item)}")
            # Unknown event types are skipped: the stream format may grow new ones.
        except Malformed as exc:
            out = [self._protocol_error(str(exc))]
        except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
            out = [self._protocol_error(f"malformed {describe(kind)} event ({type(exc).__name__})")]
        for event in out:
            if self.conversion.finished:
                break  # a later stage ended the stream (a limit, say): nothing may follow
            self.emit(event)

    def _protocol_error(self, message: str) -> ErrorEvent:
        self._stopped = self._ended = True
        return ErrorEvent("invalid_upstream_response", f"invalid upstream stream: {message}")

    def close(self) -> None:
        if self._ended:
            return
        self._ended = True
        after = " after 'message_delta'" if self._stop_reason is not None else ""
        self.emit(
            ErrorEvent(
                "upstream_truncated",
                f"the upstream stream ended{after} before 'message_stop': the response is incomplete",
            )
        )

    def _require_started(self, kind: str) -> None:
        if not self._started:
            raise Malformed(f"received {kind!r} before 'message_start'")

    def _delta(self, event: dict[str, Any], out: list[Any]) -> None:
        index = integer(event, "index")
        block = self._blocks.get(index)
        if block is None:
            self._require_started("content_block_delta")
            state = "already stopped" if index in self._blocks else "never started"
            raise Malformed(f"a delta for content block {index}, which was {state}")
        delta = object_of(event, "delta")
        delta_type = delta.get("type")
        if block == "other":
            return
        wanted = _DELTA_BLOCK.get(delta_type) if isinstance(delta_type, str) else None
        if wanted is None:
            return  # a delta type newer than this code: skip it
        if wanted != block:
            raise Malformed(f"a {delta_type!r} for content block {index}, a {block!r} block")
        if delta_type == "text_delta":
            text = string_of(delta, "text")
            if text:
                out.append(TextDelta(index, text))
        elif delta_type == "input_json_delta":
            fragment = string_of(delta, "partial_json")
            if fragment:
                self._held[index].streamed = True
                out.append(ToolCallDelta(index, fragment))
        elif delta_type == "thinking_delta":
            text = string_of(delta, "thinking")
            if text:
                out.append(ReasoningDelta(index, text))
        elif delta_type == "signature_delta":
            signature = string_of(delta, "signature")
            self._held[index] = self._held.get(index, "") + signature
        # citations_delta carries nothing a client's text holds.

    def _block_start(self, event: dict[str, Any], out: list[Any]) -> None:
        self._require_started("content_block_start")
        index = integer(event, "index")
        if index in self._blocks:
            raise Malformed(f"content block {index} was started twice")
        if len(self._blocks) >= self._max_blocks:
            self._stopped = self._ended = True
            out.append(
                ErrorEvent(
                    "limit_exceeded",
                    f"the upstream message has more than max_content_blocks ({self._max_blocks}) "
                    "content blocks",
                )
            )
            return
        block = object_of(event, "content_block")
        block_type = block.get("type")
        kind = block_type if block_type in _KNOWN_BLOCKS else "other"
        if kind == "text":
            text = block.get("text")
            out.append(TextStart(index))
            if text:
                out.append(TextDelta(index, string_of(block, "text")))
        elif kind == "thinking":
            text = block.get("thinking")
            out.append(ReasoningStart(index))
            if text:
                out.append(ReasoningDelta(index, string_of(block, "thinking")))
            signature = block.get("signature")
            if isinstance(signature, str) and signature:
                self._held[index] = signature
        elif kind == "redacted_thinking":
            data = block.get("data")
            out.append(ReasoningStart(index, data if isinstance(data, str) else ""))
        elif kind == "tool_use":
            tool_input = block.get("input")
            if tool_input is not None and not isinstance(tool_input, dict):
                raise Malformed(f"tool_use block {index} has an input that is not an object")
            call = ToolCallStart(
                index, string_of(block, "id", empty=False), string_of(block, "name", empty=False)
            )
            self._held[index] = _ToolBlock(tool_input)
            out.append(call)
        self._blocks[index] = kind

    def _close_block(self, event: dict[str, Any], out: list[Any]) -> None:
        index = integer(event, "index")
        kind = self._blocks.get(index)
        if kind is None:
            self._require_started("content_block_stop")
            state = "already stopped" if index in self._blocks else "never started"
            raise Malformed(f"a stop for content block {index}, which was {state}")
        self._end_part(index, kind, out)

    def _end_part(self, index: int, kind: str, out: list[Any]) -> None:
        self._blocks[index] = None
        if kind == "text":
            out.append(TextEnd(index))
        elif kind == "tool_use":
            call = self._held.pop(index)
            if not call.streamed and call.input:
                arguments = arguments_of(call.input)
                if arguments is None:
                    raise Malformed("a tool_use block's input is nested too deep to send as JSON arguments")
                out.append(ToolCallDelta(index, arguments))
            out.append(ToolCallEnd(index))
        elif kind != "other":
            out.append(ReasoningEnd(index, self._held.pop(index, None)))

    def _message_start(self, event: dict[str, Any], out: list[Any]) -> None:
        if self._started:
            raise Malformed("a second 'message_start' arrived before 'message_stop'")
        message = object_of(event, "message")
        message_id, model = string_of(message, "id"), string_of(message, "model")
        usage = usage_of(message.get("usage"))
        self._started = True
        out.append(ResponseStart(message_id, model))
        if usage is not None:
            out.append(usage)

    def _message_delta(self, event: dict[str, Any], out: list[Any]) -> None:
        self._require_started("message_delta")
        delta = object_of(event, "delta")
        reason = delta.get("stop_reason")
        sequence = delta.get("stop_sequence")
        if reason is not None and not isinstance(reason, str):
            raise Malformed(f"stop_reason must be a string, not {describe(reason)}")
        usage = usage_of(event.get("usage"))
        self._stop_reason = reason
        self._stop_sequence = sequence if isinstance(sequence, str) else None
        if usage is not None:
            out.append(usage)

    def _upstream_error(self, event: dict[str, Any], out: list[Any]) -> None:
        error = event.get("error")
        code = message = None
        if isinstance(error, dict):
            code = error.get("type") if isinstance(error.get("type"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
        elif isinstance(error, str):
            message = error
        self._stopped = self._ended = True
        out.append(
            ErrorEvent(
                "upstream_error",
                message or f"the upstream reported an error it did not describe: {describe(event, 300)}",
                code or "upstream_error",
            )
        )


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "decode",
            Decoder,
            options=(
                Option(
                    "max_content_blocks",
                    _DEFAULT_MAX_BLOCKS,
                    "The most content blocks one upstream message may have; more ends the stream "
                    "with a limit_exceeded error.",
                    positive_int,
                    allowed="an int >= 1",
                ),
            ),
            description="Anthropic event dicts to neutral events; checks the protocol.",
        )
    )


@hookimpl
def register_formats(register: Any) -> None:
    register(
        DecoderSpec(
            "anthropic-messages",
            ("parse", "decode"),
            description="The Anthropic Messages API stream (server-sent events, or JSON lines).",
        )
    )
