"""A non-streaming ``chat.completion``, assembled from the typed events of the same conversion rules."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..builtins.envelope import FINISH_REASONS, THINKING_FIELDS, reasoning_detail, usage_object
from ..errors import InternalStageError
from ..events import (
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)

__all__ = ["EVENT_STAGES_END", "CompletionBuilder", "event_stages"]

#: The first stage of the default list that writes OpenAI's wire format; a non-streaming answer
#: runs every stage before it (plugin stages included) and builds the JSON body itself.
EVENT_STAGES_END = "envelope"


def event_stages(default_stages: Sequence[str]) -> list[str]:
    """The default stage list cut before the envelope: the stages that produce typed events."""
    names = list(default_stages)
    return names[: names.index(EVENT_STAGES_END)] if EVENT_STAGES_END in names else names


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, call_id: str | None, name: str | None) -> None:
        self.id = call_id
        self.name = name
        self.arguments: list[str] = []


class CompletionBuilder:
    """Collects one conversion's events (`add`) into a ``chat.completion`` (`result`):
    the same finish reason, usage, tool calls (0-based, arguments concatenated) and reasoning a
    streaming client would have accumulated."""

    def __init__(
        self, thinking: str = "native", include_usage: bool = True, reasoning_details: bool = False
    ) -> None:
        self._start: ResponseStart | None = None
        self._created = 0
        self._text: list[str] = []
        self._reasoning_field = THINKING_FIELDS.get(thinking, "reasoning_content")
        self._reasoning: list[str] = []
        # Each thinking block's text (by part), and the finished blocks as reasoning_details.
        self._thinking: dict[int, list[str]] = {}
        self._details: list[dict[str, Any]] = []
        self._details_on = reasoning_details
        self._include_usage = include_usage
        # Tool calls by part id, in the order they started (the client's 0-based order).
        self._calls: dict[int, _Call] = {}
        self._finish: Finish | None = None

    def add(self, item: Any) -> None:
        cls = item.__class__
        if cls is TextDelta:
            self._text.append(item.text)
        elif cls is ReasoningDelta:
            self._reasoning.append(item.text)
            held = self._thinking.get(item.part)
            if held is not None:
                held.append(item.text)
        elif cls is ReasoningStart:
            if self._details_on:
                if item.redacted is None:
                    self._thinking[item.part] = []
                else:
                    self._detail("", None, item.redacted)
        elif cls is ReasoningEnd:
            held = self._thinking.pop(item.part, None)
            if held is not None:
                self._detail("".join(held), item.signature, None)
        elif cls is ToolCallStart:
            self._calls[item.part] = _Call(item.id, item.name)
        elif cls is ToolCallDelta:
            self._calls[item.part].arguments.append(item.arguments)
        elif cls is ResponseStart:
            self._start = item
            self._created = int(time.time())
        elif cls is Finish:
            self._finish = item
        # Part boundaries, usage updates, pings and the end carry nothing a completion holds.

    def _detail(self, text: str, signature: str | None, redacted: str | None) -> None:
        detail = reasoning_detail(len(self._details), text, signature, redacted)
        if detail is not None:
            self._details.append(detail)

    def result(self) -> dict[str, Any]:
        """The completion; the events must have ended with a finish."""
        if self._start is None or self._finish is None:
            raise InternalStageError("the conversion ended without a finish; no completion can be built")
        message: dict[str, Any] = {"role": "assistant"}
        text = "".join(self._text)
        tool_calls = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": "".join(call.arguments)},
            }
            for call in self._calls.values()
        ]
        # As OpenAI does: content is null when the answer is only tool calls.
        message["content"] = text if text or not tool_calls else None
        message["refusal"] = None
        if tool_calls:
            message["tool_calls"] = tool_calls
        if self._reasoning:
            message[self._reasoning_field] = "".join(self._reasoning)
        if self._details:
            message["reasoning_details"] = self._details
        body: dict[str, Any] = {
            "id": f"chatcmpl-{self._start.id}",
            "object": "chat.completion",
            "created": self._created,
            "model": self._start.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH_REASONS.get(self._finish.reason, "stop"),
                }
            ],
        }
        if self._include_usage and self._finish.usage is not None:
            body["usage"] = usage_object(self._finish.usage)
        return body
