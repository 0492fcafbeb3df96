"""A non-streaming ``chat.completion``, assembled from the typed events of the same conversion rules."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..builtins.envelope import FINISH_REASONS, THINKING_FIELDS, usage_object
from ..errors import InternalStageError
from ..events import Finish, ReasoningDelta, ResponseStart, TextDelta, ToolCallDelta, ToolCallStart

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

    def __init__(self, thinking: str = "native", include_usage: bool = True) -> None:
        self._start: ResponseStart | None = None
        self._created = 0
        self._text: list[str] = []
        self._reasoning_field = THINKING_FIELDS.get(thinking, "reasoning_content")
        self._reasoning: list[str] = []
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
