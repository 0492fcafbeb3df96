"""The thinking stage: where the model's reasoning goes (a reasoning field, inline tags, or nowhere)."""

from __future__ import annotations

from typing import Any

from ..events import BlockStop, ReasoningDelta, TextDelta, ThinkingDelta
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["THINKING_MODES", "ReasoningField", "ThinkingDrop", "ThinkingTags", "register_stages"]

#: The values of the ``thinking`` option, the default first.
THINKING_MODES = ("reasoning_content", "reasoning", "tags", "drop")


class ReasoningField(Stage):
    """Reasoning goes to its own delta field (``reasoning_content``, as DeepSeek does, or
    ``reasoning``, as OpenRouter does), never into content."""

    __slots__ = ("_field",)

    handles = (ThinkingDelta,)
    emits = (ReasoningDelta,)

    def __init__(self, field: str) -> None:
        self._field = field

    def feed(self, item: ThinkingDelta) -> None:
        self.emit(ReasoningDelta(item.text, self._field))


class ThinkingTags(Stage):
    """Reasoning goes inline into content as ``<think>...</think>``, for clients that only
    show content (opted into explicitly: R29)."""

    __slots__ = ("_open",)

    handles = (ThinkingDelta, BlockStop)
    emits = (TextDelta, BlockStop)

    def __init__(self) -> None:
        self._open = False

    def feed(self, item: Any) -> None:
        if item.__class__ is ThinkingDelta:
            if self._open:
                self.emit(TextDelta(item.text))
            else:
                self._open = True
                self.emit(TextDelta("<think>" + item.text))
            return
        if self._open and item.kind == "thinking":
            self._open = False
            self.emit(TextDelta("</think>"))
        self.emit(item)


class ThinkingDrop(Stage):
    """Reasoning is left out of the client stream."""

    __slots__ = ()

    handles = (ThinkingDelta,)
    emits = ()

    def feed(self, item: Any) -> None:
        pass


def _make(options: Options) -> Stage:
    mode = options["thinking"]
    if mode == "tags":
        return ThinkingTags()
    if mode == "drop":
        return ThinkingDrop()
    return ReasoningField(mode)


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "thinking",
            _make,
            options=(
                Option.choice(
                    "thinking",
                    "reasoning_content",
                    THINKING_MODES,
                    "Where the model's thinking goes: delta.reasoning_content, delta.reasoning, "
                    "inline <think>...</think> in content, or nowhere. Signatures and redacted "
                    "thinking never reach the client's text.",
                ),
            ),
            description="Routes thinking to a reasoning field, inline tags, or nowhere.",
        )
    )
