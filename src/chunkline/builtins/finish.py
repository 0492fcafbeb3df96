"""The finish stage: the one finish_reason at message_stop, errors that end the stream, and truncation."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..errors import stream_error_for
from ..events import Done, ErrorEvent, Finish, MessageDelta, MessageStop, ToolCallDelta
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["CLIENT_FINISH_REASONS", "DEFAULT_FINISH_REASONS", "Finisher", "register_stages"]

CLIENT_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter"})

# Anthropic stop reasons -> OpenAI finish reasons (R22 in docs/conformance-rules.md). pause_turn
# means the turn is unfinished, so it reads as "length" rather than a clean "stop". Unknown reasons
# become "stop".
DEFAULT_FINISH_REASONS = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "model_context_window_exceeded": "length",
        "refusal": "content_filter",
        "pause_turn": "length",
        "compaction": "stop",
    }
)


class Finisher(Stage):
    """Sends exactly one finish, and only when the upstream said ``message_stop`` (never a
    fabricated one). ``tool_calls`` is reported only if a tool call was actually sent. An error
    ends the stream in-band (or raises with ``on_error="raise"``); input that ends early is
    reported as ``upstream_truncated``."""

    __slots__ = ("_raise", "_reasons", "_stop_reason", "_tool_calls_sent")

    handles = (MessageDelta, MessageStop, ToolCallDelta, ErrorEvent)

    def __init__(self, options: Options) -> None:
        self._reasons: dict[str, str] = options["finish_reasons"]
        self._raise = options["on_error"] == "raise"
        self._stop_reason: str | None = None
        self._tool_calls_sent = False

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is ToolCallDelta:
            self._tool_calls_sent = True
            self.emit(item)
        elif cls is MessageDelta:
            self._stop_reason = item.stop_reason
        elif cls is MessageStop:
            reason = self._reasons.get(self._stop_reason or "", "stop")
            if reason == "tool_calls" and not self._tool_calls_sent:
                reason = "stop"
            self._end(Finish(reason))
        else:
            self._fail(item)

    def _end(self, last: Any) -> None:
        self.conversion.finished = True
        self.emit(last)
        self.emit(Done())

    def _fail(self, error: ErrorEvent) -> None:
        if self._raise:
            self.conversion.finished = True
            raise stream_error_for(error.type, error.message, error.code)
        self._end(error)

    def close(self) -> None:
        if self.conversion.finished:
            return
        after = " after 'message_delta'" if self._stop_reason is not None else ""
        self._fail(
            ErrorEvent(
                "upstream_truncated",
                f"the upstream stream ended{after} before 'message_stop': the response is incomplete",
            )
        )


def _check_reasons(value: Any, registry: Registry) -> Any:
    if not isinstance(value, dict | MappingProxyType):
        raise ValueError(f"must be a dict of upstream stop reason to finish reason, not {value!r}")
    merged = dict(DEFAULT_FINISH_REASONS)
    for key, reason in value.items():
        if not isinstance(key, str) or reason not in CLIENT_FINISH_REASONS:
            allowed = ", ".join(sorted(CLIENT_FINISH_REASONS))
            raise ValueError(f"{key!r} maps to {reason!r}; finish reasons are {allowed}")
        merged[key] = reason
    return merged


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "finish",
            Finisher,
            options=(
                Option(
                    "finish_reasons",
                    DEFAULT_FINISH_REASONS,
                    "Overrides for the map from upstream stop reasons to finish reasons; "
                    "unmapped reasons finish as 'stop'.",
                    _check_reasons,
                    allowed="a dict of str to 'stop', 'length', 'tool_calls' or 'content_filter'",
                ),
                Option.choice(
                    "on_error",
                    "inband",
                    ("inband", "raise"),
                    "What a stream fault does: 'inband' ends the stream with an error event and "
                    "[DONE]; 'raise' raises a chunkline.StreamError subclass.",
                ),
            ),
            description="One finish_reason at message_stop; errors and truncation end the stream.",
        )
    )
