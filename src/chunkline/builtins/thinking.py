"""The thinking stage: reasoning kept for the target to show, turned into inline tags, or dropped."""

from __future__ import annotations

from typing import Any

from ..events import ReasoningDelta, ReasoningEnd, ReasoningStart, TextDelta, TextEnd, TextStart
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["THINKING_MODES", "ThinkingDrop", "ThinkingKept", "ThinkingTags", "register_stages"]

#: The values of the ``thinking`` option every route takes, the default first. A target format
#: may add its own (`chunkline.EncoderSpec.thinking_modes`): the OpenAI Chat target takes
#: ``reasoning_content`` and ``reasoning``, the delta field its reasoning goes to.
THINKING_MODES = ("native", "tags", "drop")


class ThinkingKept(Stage):
    """Reasoning passes on as reasoning; the target's encoder decides how it looks. It handles
    nothing, so the conversion routes reasoning straight past it."""

    __slots__ = ()

    handles = ()


class ThinkingTags(Stage):
    """Reasoning goes inline into the answer's text as ``<think>...</think>``, for clients that
    only show text (opted into explicitly: R29). A reasoning part becomes a text part of the
    same id; one with no visible text (redacted, or empty) leaves nothing behind."""

    __slots__ = ("_open",)

    handles = (ReasoningStart, ReasoningDelta, ReasoningEnd)
    emits = (TextStart, TextDelta, TextEnd)

    def __init__(self) -> None:
        self._open: set[int] = set()

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is ReasoningDelta:
            if item.part in self._open:
                self.emit(TextDelta(item.part, item.text))
            else:
                self._open.add(item.part)
                self.emit(TextStart(item.part))
                self.emit(TextDelta(item.part, "<think>" + item.text))
        elif cls is ReasoningEnd and item.part in self._open:
            self._open.discard(item.part)
            self.emit(TextDelta(item.part, "</think>"))
            self.emit(TextEnd(item.part))


class ThinkingDrop(Stage):
    """Reasoning is left out of the client stream."""

    __slots__ = ()

    handles = (ReasoningStart, ReasoningDelta, ReasoningEnd)
    emits = ()

    def feed(self, item: Any) -> None:
        pass


def _make(options: Options) -> Stage:
    mode = options["thinking"]
    if mode == "tags":
        return ThinkingTags()
    if mode == "drop":
        return ThinkingDrop()
    return ThinkingKept()


def _check_mode(value: Any, registry: Registry) -> Any:
    known = list(THINKING_MODES)
    for registration in registry.encoders.values():
        known += [m for m in registration.spec.thinking_modes if m not in known]
    if value not in known:
        raise ValueError(f"must be one of {', '.join(repr(m) for m in known)}, not {value!r}")
    return value


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "thinking",
            _make,
            options=(
                Option(
                    "thinking",
                    "native",
                    "Where the model's thinking goes: 'native' (the target's own reasoning field "
                    "or block), 'tags' (inline <think>...</think> in the text), 'drop' (nowhere), "
                    "or a mode of the target (OpenAI Chat: 'reasoning_content' or 'reasoning', "
                    "the delta field). Signatures and redacted thinking never reach the text.",
                    _check_mode,
                    allowed="'native', 'tags', 'drop', or a mode the route's target format adds",
                ),
            ),
            description="Keeps reasoning for the target, turns it into inline tags, or drops it.",
        )
    )
