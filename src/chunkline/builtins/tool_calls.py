"""The tool-call stage: every call's arguments complete and bounded, whatever the source format."""

from __future__ import annotations

from typing import Any

from ..events import ErrorEvent, ToolCallDelta, ToolCallEnd, ToolCallStart
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec, positive_int

__all__ = ["ToolCallMapper", "register_stages"]


class ToolCallMapper(Stage):
    """Checks that argument fragments belong to a call that started and has not ended, sends
    ``{}`` as the arguments of a call that streamed none (a client parses them as JSON), and
    bounds the arguments of all calls together by ``max_tool_argument_bytes``."""

    __slots__ = ("_limit", "_open", "_total")

    handles = (ToolCallStart, ToolCallDelta, ToolCallEnd)
    emits = (ToolCallStart, ToolCallDelta, ToolCallEnd, ErrorEvent)

    def __init__(self, options: Options) -> None:
        # Part id -> whether the call has streamed any arguments, while it is open.
        self._open: dict[int, bool] = {}
        self._total = 0
        self._limit: int = options["max_tool_argument_bytes"]

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is ToolCallDelta:
            if item.part not in self._open:
                self._unknown(item.part, "arguments")
                return
            self._open[item.part] = True
            fragment = item.arguments
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
            self.emit(item)
        elif cls is ToolCallStart:
            if item.part in self._open:
                self.emit(
                    ErrorEvent(
                        "invalid_upstream_response",
                        f"invalid upstream stream: tool call {item.part} was started twice",
                    )
                )
                return
            self._open[item.part] = False
            self.emit(item)
        else:
            streamed = self._open.pop(item.part, None)
            if streamed is None:
                self._unknown(item.part, "an end")
                return
            if not streamed:
                self.emit(ToolCallDelta(item.part, "{}"))
            self.emit(item)

    def _unknown(self, part: int, what: str) -> None:
        self.emit(
            ErrorEvent(
                "invalid_upstream_response",
                f"invalid upstream stream: {what} for tool call {part}, which is not open",
            )
        )


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
            description="Complete, bounded tool-call arguments ('{}' for a call that streamed none).",
        )
    )
