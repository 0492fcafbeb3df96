"""The decode stage: Anthropic event dicts in, checked against the protocol, typed events out."""

from __future__ import annotations

from typing import Any

from ..errors import describe
from ..events import (
    BlockStart,
    BlockStop,
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    Ping,
    TextDelta,
    ThinkingDelta,
    ToolInputDelta,
    ToolUseStart,
    UsageUpdate,
)
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec, positive_int

__all__ = ["Decoder", "register_stages"]

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
# Token counts above JSON's safe-integer range are not counts: they would overflow a client's
# numbers (and orjson's, once summed into prompt_tokens).
_MAX_COUNT = 2**53
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class _Malformed(Exception):
    pass


class Decoder(Stage):
    """Turns Anthropic stream events into typed events, keeping per-block state and reporting
    protocol violations (events before ``message_start``, a second ``message_start``, deltas for
    blocks that are not open) as ``invalid_upstream_response`` errors. Input after
    ``message_stop`` is ignored; unknown event, block and delta types are skipped."""

    __slots__ = ("_blocks", "_max_blocks", "_send_text", "_started", "_stopped")

    handles = (dict, ErrorEvent)

    def __init__(self, options: Options) -> None:
        # Block index -> kind while the block is open, -> None once it has stopped.
        self._blocks: dict[int, str | None] = {}
        self._started = False
        self._stopped = False
        self._send_text: Any = None
        self._max_blocks: int = options.get("max_content_blocks", _DEFAULT_MAX_BLOCKS)

    def connected(self) -> None:
        self._send_text = self.text_route()

    def feed(self, item: Any) -> None:
        if item.__class__ is not dict:
            self.emit(item)
            return
        if self._stopped:
            return
        # The fast path: a well-formed text delta on an open text block (most events). Plain
        # subscripts inside one try are the cheapest checks Python has; anything unexpected
        # falls through to the full path, which finds and reports the problem. Sending happens
        # outside every try: a later stage's exception must never pass for a malformed event.
        text = None
        try:
            if item["type"] == "content_block_delta":
                delta = item["delta"]
                index = item["index"]
                if delta["type"] == "text_delta" and type(index) is int and self._blocks[index] == "text":
                    text = delta["text"]
        except (KeyError, TypeError):
            pass
        if type(text) is str:
            if text:
                self._send_text(text)
            return
        kind = item.get("type")
        out: list[Any] = []
        try:
            if kind == "content_block_delta":
                self._delta(item, out)
            elif kind == "content_block_start":
                self._block_start(item, out)
            elif kind == "content_block_stop":
                out.append(BlockStop(*self._close_block(item)))
            elif kind == "message_delta":
                self._message_delta(item, out)
            elif kind == "message_start":
                self._message_start(item, out)
            elif kind == "message_stop":
                self._require_started(kind)
                self._stopped = True
                # A response cut by max_tokens can leave a block open; close it so the stages
                # that finish blocks (a tool call's "{}", a closing </think>) get to.
                for index, open_kind in self._blocks.items():
                    if open_kind is not None:
                        out.append(BlockStop(index, open_kind))
                out.append(MessageStop())
            elif kind == "ping":
                out.append(Ping())
            elif kind == "error":
                self._upstream_error(item, out)
            elif not isinstance(kind, str):
                raise _Malformed(f"an event has no string 'type': {describe(item)}")
            # Unknown event types are skipped: the stream format may grow new ones.
        except _Malformed as exc:
            out = [self._protocol_error(str(exc))]
        except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
            out = [self._protocol_error(f"malformed {describe(kind)} event ({type(exc).__name__})")]
        for event in out:
            self.emit(event)

    def _protocol_error(self, message: str) -> ErrorEvent:
        self._stopped = True
        return ErrorEvent("invalid_upstream_response", f"invalid upstream stream: {message}")

    def _require_started(self, kind: str) -> None:
        if not self._started:
            raise _Malformed(f"received {kind!r} before 'message_start'")

    def _delta(self, event: dict[str, Any], out: list[Any]) -> None:
        index = _int(event, "index")
        block = self._blocks.get(index)
        if block is None:
            self._require_started("content_block_delta")
            state = "already stopped" if index in self._blocks else "never started"
            raise _Malformed(f"a delta for content block {index}, which was {state}")
        delta = _dict(event, "delta")
        delta_type = delta.get("type")
        if block == "other":
            return
        wanted = _DELTA_BLOCK.get(delta_type) if isinstance(delta_type, str) else None
        if wanted is None:
            return  # a delta type newer than this code: skip it
        if wanted != block:
            raise _Malformed(f"a {delta_type!r} for content block {index}, a {block!r} block")
        if delta_type == "text_delta":
            text = _str(delta, "text")
            if text:
                out.append(TextDelta(text))
        elif delta_type == "input_json_delta":
            fragment = _str(delta, "partial_json")
            if fragment:
                out.append(ToolInputDelta(index, fragment))
        elif delta_type == "thinking_delta":
            text = _str(delta, "thinking")
            if text:
                out.append(ThinkingDelta(text))
        # signature_delta and citations_delta carry nothing a chat client shows.

    def _block_start(self, event: dict[str, Any], out: list[Any]) -> None:
        self._require_started("content_block_start")
        index = _int(event, "index")
        if index in self._blocks:
            raise _Malformed(f"content block {index} was started twice")
        if len(self._blocks) >= self._max_blocks:
            self._stopped = True
            out.append(
                ErrorEvent(
                    "limit_exceeded",
                    f"the upstream message has more than max_content_blocks ({self._max_blocks}) "
                    "content blocks",
                )
            )
            return
        block = _dict(event, "content_block")
        block_type = block.get("type")
        kind = block_type if block_type in _KNOWN_BLOCKS else "other"
        self._blocks[index] = kind
        out.append(BlockStart(index, kind))
        if kind == "text":
            text = block.get("text")
            if text:
                out.append(TextDelta(_str(block, "text")))
        elif kind == "thinking":
            text = block.get("thinking")
            if text:
                out.append(ThinkingDelta(_str(block, "thinking")))
        elif kind == "tool_use":
            tool_input = block.get("input")
            if tool_input is not None and not isinstance(tool_input, dict):
                raise _Malformed(f"tool_use block {index} has an input that is not an object")
            out.append(ToolUseStart(index, _str(block, "id"), _str(block, "name"), tool_input))

    def _close_block(self, event: dict[str, Any]) -> tuple[int, str]:
        index = _int(event, "index")
        kind = self._blocks.get(index)
        if kind is None:
            self._require_started("content_block_stop")
            state = "already stopped" if index in self._blocks else "never started"
            raise _Malformed(f"a stop for content block {index}, which was {state}")
        self._blocks[index] = None
        return index, kind

    def _message_start(self, event: dict[str, Any], out: list[Any]) -> None:
        if self._started:
            raise _Malformed("a second 'message_start' arrived before 'message_stop'")
        message = _dict(event, "message")
        message_id, model = _str(message, "id"), _str(message, "model")
        usage = _usage(message.get("usage"))
        self._started = True
        out.append(MessageStart(message_id, model))
        if usage is not None:
            out.append(usage)

    def _message_delta(self, event: dict[str, Any], out: list[Any]) -> None:
        self._require_started("message_delta")
        delta = _dict(event, "delta")
        reason = delta.get("stop_reason")
        sequence = delta.get("stop_sequence")
        if reason is not None and not isinstance(reason, str):
            raise _Malformed(f"stop_reason must be a string, not {describe(reason)}")
        usage = _usage(event.get("usage"))
        out.append(MessageDelta(reason, sequence if isinstance(sequence, str) else None))
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
        self._stopped = True
        out.append(
            ErrorEvent(
                "upstream_error",
                message or f"the upstream reported an error it did not describe: {describe(event, 300)}",
                code or "upstream_error",
            )
        )


def _int(event: dict[str, Any], key: str) -> int:
    value = event.get(key)
    if type(value) is not int:
        raise _Malformed(f"{key!r} must be an integer, not {describe(value)}")
    return value


def _str(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if type(value) is not str:
        raise _Malformed(f"{key!r} must be a string, not {describe(value)}")
    return value


def _dict(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if type(value) is not dict:
        raise _Malformed(f"{key!r} must be an object, not {describe(value)}")
    return value


def _usage(usage: Any) -> UsageUpdate | None:
    """Usage counts; absent and null fields stay None so earlier values survive (R47)."""
    if usage is None:
        return None
    if type(usage) is not dict:
        raise _Malformed(f"'usage' must be an object, not {describe(usage)}")
    counts: list[int | None] = []
    for key in _USAGE_FIELDS:
        value = usage.get(key)
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_COUNT):
            raise _Malformed(f"usage {key!r} must be a whole number from 0 to 2**53, not {describe(value)}")
        counts.append(value)
    thinking = None
    details = usage.get("output_tokens_details")
    if isinstance(details, dict):
        value = details.get("thinking_tokens")
        if type(value) is int and 0 <= value <= _MAX_COUNT:
            thinking = value
    input_tokens, output_tokens, cache_creation, cache_read = counts
    return UsageUpdate(input_tokens, output_tokens, cache_creation, cache_read, thinking)


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
            description="Anthropic event dicts to typed events; checks the protocol.",
        )
    )
