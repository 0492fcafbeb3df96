"""The tool-call stage: client tool_use blocks become incrementally streamed tool-call deltas."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..events import BlockStop, ErrorEvent, ToolCallDelta, ToolInputDelta, ToolUseStart
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec, positive_int

__all__ = ["ToolCallMapper", "register_stages"]


class _Call:
    __slots__ = ("index", "input", "sent_arguments")

    def __init__(self, index: int, tool_input: Any) -> None:
        self.index = index
        self.input = tool_input
        self.sent_arguments = False


class ToolCallMapper(Stage):
    """Numbers client tool calls 0, 1, 2... in block order (never the block index), sends id,
    type and name once in the first delta with empty arguments, then each argument fragment
    byte for byte. A call that streamed no arguments gets its start block's input, or ``{}``."""

    __slots__ = ("_calls", "_count", "_limit", "_total")

    handles = (ToolUseStart, ToolInputDelta, BlockStop)
    emits = (ToolCallDelta, BlockStop, ErrorEvent)

    def __init__(self, options: Options) -> None:
        self._calls: dict[int, _Call] = {}
        self._count = 0
        self._total = 0
        self._limit: int = options["max_tool_argument_bytes"]

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is ToolInputDelta:
            call = self._calls[item.index]
            call.sent_arguments = True
            fragment = item.partial_json
            # isascii() is O(1) in CPython, so the common case counts bytes without encoding.
            self._total += len(fragment) if fragment.isascii() else len(fragment.encode())
            if self._total > self._limit:
                self.emit(
                    ErrorEvent(
                        "limit_exceeded",
                        "the upstream's tool-call arguments add up to more than "
                        f"max_tool_argument_bytes ({self._limit} bytes)",
                    )
                )
                return
            self.emit(ToolCallDelta(call.index, None, None, item.partial_json))
        elif cls is ToolUseStart:
            call = _Call(self._count, item.input)
            self._count += 1
            self._calls[item.index] = call
            self.emit(ToolCallDelta(call.index, item.id, item.name, ""))
        else:
            ended = self._calls.pop(item.index, None) if item.kind == "tool_use" else None
            if ended is not None and not ended.sent_arguments:
                arguments = _arguments(ended.input)
                if arguments is None:
                    self.emit(
                        ErrorEvent(
                            "invalid_upstream_response",
                            "invalid upstream stream: a tool_use block's input is nested too deep "
                            "to send as JSON arguments",
                        )
                    )
                    return
                self.emit(ToolCallDelta(ended.index, None, None, arguments))
            self.emit(item)


def _arguments(tool_input: Any) -> str | None:
    """A start block's input as JSON arguments (``{}`` when empty). orjson stops at 254 levels
    of nesting, which the upstream's JSON may exceed; the standard library goes further."""
    if not tool_input:
        return "{}"
    try:
        return orjson.dumps(tool_input).decode()
    except TypeError:
        try:
            return json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:
            return None


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "tool_calls",
            ToolCallMapper,
            options=(
                Option(
                    "max_tool_argument_bytes",
                    16 * 1024 * 1024,
                    "The most bytes of tool-call arguments one message may stream, all calls "
                    "together; more ends the stream with a limit_exceeded error.",
                    positive_int,
                    allowed="an int >= 1",
                ),
            ),
            description="Client tool_use blocks to streamed tool-call deltas with 0-based indices.",
        )
    )
