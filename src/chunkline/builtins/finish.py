"""The finish stage: one finish when the upstream ended normally; errors and truncation end the stream."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..errors import stream_error_for
from ..events import FINISH_REASONS, Done, ErrorEvent, Finish, ToolCallStart
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import Option, Options, Stage, StageSpec
from .decode import STOP_REASONS
from .envelope import FINISH_REASONS as CHAT_FINISH_REASONS

__all__ = ["CLIENT_FINISH_REASONS", "DEFAULT_FINISH_REASONS", "Finisher", "register_stages"]

#: The finish reasons the ``finish_reasons`` option may map an upstream reason to.
CLIENT_FINISH_REASONS = FINISH_REASONS - {"error"}

#: The default route's map, Anthropic stop reason -> OpenAI finish reason (R22): the Anthropic
#: decoder's neutral reason as the OpenAI Chat encoder writes it.
DEFAULT_FINISH_REASONS = MappingProxyType(
    {stop: CHAT_FINISH_REASONS[reason] for stop, reason in STOP_REASONS.items()}
)


class Finisher(Stage):
    """Passes exactly one finish, and only when the decoder saw the upstream end normally (never
    a fabricated one); ``finish_reasons`` overrides the decoder's reason by the upstream's own
    word. ``tool_calls`` stands only if a tool call was actually sent. An upstream that finished
    with ``error``, or any error event, ends the stream in-band (or raises with
    ``on_error="raise"``); input that ends with neither is reported as ``upstream_truncated``."""

    __slots__ = ("_overrides", "_raise", "_tool_calls_sent")

    handles = (ToolCallStart, Finish, ErrorEvent)

    def __init__(self, options: Options) -> None:
        self._overrides: dict[str, str] = options["finish_reasons"]
        self._raise = options["on_error"] == "raise"
        self._tool_calls_sent = False

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is ToolCallStart:
            self._tool_calls_sent = True
            self.emit(item)
        elif cls is Finish:
            reason = self._overrides.get(item.raw_reason or "", item.reason)
            if reason == "error":
                raw = f" ({item.raw_reason!r})" if item.raw_reason else ""
                self._fail(ErrorEvent("upstream_error", f"the upstream reported that it failed{raw}"))
                return
            if reason == "tool_calls" and not self._tool_calls_sent:
                reason = "stop"
            if reason != item.reason:
                item = Finish(reason, item.raw_reason, item.stop_sequence, item.usage)
            self._end(item)
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
        # The decoders report truncation in their own terms; this catches one that does not.
        self._fail(
            ErrorEvent(
                "upstream_truncated",
                "the upstream stream ended before it finished: the response is incomplete",
            )
        )


def _check_overrides(value: Any, registry: Registry) -> Any:
    if not isinstance(value, dict | MappingProxyType):
        raise ValueError(f"must be a dict of upstream stop reason to finish reason, not {value!r}")
    for key, reason in value.items():
        if not isinstance(key, str) or reason not in CLIENT_FINISH_REASONS:
            allowed = ", ".join(sorted(CLIENT_FINISH_REASONS))
            raise ValueError(f"{key!r} maps to {reason!r}; finish reasons are {allowed}")
    return dict(value)


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "finish",
            Finisher,
            options=(
                Option(
                    "finish_reasons",
                    MappingProxyType({}),
                    "Overrides of the decoder's finish reason, keyed by the upstream's own stop "
                    "reason (e.g. {'pause_turn': 'stop'}); the target format writes the result "
                    "in its own words.",
                    _check_overrides,
                    allowed="a dict of str to 'stop', 'length', 'tool_calls', 'content_filter' or 'pause'",
                ),
                Option.choice(
                    "on_error",
                    "inband",
                    ("inband", "raise"),
                    "What a stream fault does: 'inband' ends the stream with the target's error "
                    "event; 'raise' raises a chunkline.StreamError subclass.",
                ),
            ),
            description="One finish when the upstream ended normally; errors and truncation end the stream.",
        )
    )
