"""The redact stage: masks secrets in content, reasoning and tool-call arguments as they stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chunkline import NOT_BOUNDARIES, Option, Options, Stage, StageSpec
from chunkline.events import ReasoningDelta, TextDelta, ToolCallDelta

from .patterns import (
    BUILTIN_PATTERNS,
    DEFAULT_REPLACEMENT,
    PatternSet,
    check_extra_patterns,
    check_kinds,
    check_replacement,
    pattern_set,
)
from .scanner import JsonStrings, Scanner

__all__ = ["OPTIONS", "SPEC", "Redactor"]

# Which stream of text holds characters back, as ("text" | "reasoning" | "call", part id): only
# one at a time, so that flushing it before anything else is emitted keeps every item in order.
_TEXT = "text"


class Redactor(Stage):
    """Masks secrets in content (``TextDelta``), reasoning (``ReasoningDelta``) and tool-call
    arguments (``ToolCallDelta``, inside their JSON strings), however the text is cut into
    deltas. Text that may still be the start of a secret is held back until it is known;
    anything else that arrives (a part's end, a tool call's start, the finish, an error) and the end
    of input first release it, so the order of what a client reads never changes. Keep-alives
    and token counts pass without ending the text."""

    __slots__ = (
        "_arguments",
        "_calls",
        "_content",
        "_holder",
        "_patterns",
        "_reasoning",
        "_reasoning_scanners",
        "_send_text",
    )

    handles = None  # every item: anything that is not text ends the text held before it

    def __init__(self, patterns: PatternSet, *, reasoning: bool = True, arguments: bool = True) -> None:
        self._patterns = patterns
        self._content = Scanner(patterns)
        self._reasoning = reasoning
        self._arguments = arguments
        self._reasoning_scanners: dict[int, Scanner] = {}
        self._calls: dict[int, JsonStrings] = {}
        self._holder: tuple[str, int] | None = None
        self._send_text: Callable[[int, str], None] = lambda part, text: self.emit(TextDelta(part, text))

    def connected(self) -> None:
        self._send_text = self.text_route()

    @property
    def held(self) -> int:
        """How many characters are held back right now."""
        if self._holder is None:
            return 0
        if self._holder[0] == _TEXT:
            return self._content.held
        if self._holder[0] == "reasoning":
            return self._reasoning_scanners[self._holder[1]].held
        return self._calls[self._holder[1]].held

    def feed_text(self, part: int, text: str) -> None:
        """``feed(TextDelta(part, text))`` without the event (the decoder's fast lane)."""
        holder = self._holder
        if holder is not None and (holder[0] != _TEXT or holder[1] != part):
            self._release()
        ready = self._content.feed(text)
        if ready:
            self._send_text(part, ready)
        self._holder = (_TEXT, part) if self._content.held else None

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is TextDelta:
            self.feed_text(item.part, item.text)
        elif cls is ToolCallDelta and self._arguments:
            self._tool_call(item)
        elif cls is ReasoningDelta and self._reasoning:
            self._reasoning_delta(item)
        elif cls in NOT_BOUNDARIES:
            # A keep-alive or a token count ends no text: a secret split around one is still
            # one secret. They pass at once (a ping may go out before the text held around it).
            self.emit(item)
        else:
            if self._holder is not None:
                self._release()
            self.emit(item)

    def _reasoning_delta(self, item: ReasoningDelta) -> None:
        key = ("reasoning", item.part)
        if self._holder is not None and self._holder != key:
            self._release()
        scanner = self._reasoning_scanners.get(item.part)
        if scanner is None:
            scanner = self._reasoning_scanners[item.part] = Scanner(self._patterns)
        ready = scanner.feed(item.text)
        if ready:
            self.emit(ReasoningDelta(item.part, ready))
        self._holder = key if scanner.held else None

    def _tool_call(self, item: ToolCallDelta) -> None:
        key = ("call", item.part)
        if self._holder is not None and self._holder != key:
            self._release()
        call = self._calls.get(item.part)
        if call is None:
            call = self._calls[item.part] = JsonStrings(self._patterns)
        ready = call.feed(item.arguments)
        if ready:
            self.emit(ToolCallDelta(item.part, ready))
        self._holder = key if call.held else None

    def _release(self) -> None:
        holder = self._holder
        self._holder = None
        if holder is None:
            return
        kind, part = holder
        if kind == _TEXT:
            text = self._content.flush()
            if text:
                self._send_text(part, text)
        elif kind == "reasoning":
            text = self._reasoning_scanners[part].flush()
            if text:
                self.emit(ReasoningDelta(part, text))
        else:
            text = self._calls[part].flush()
            if text:
                self.emit(ToolCallDelta(part, text))

    def close(self) -> None:
        if self._holder is not None:
            self._release()


def _make(options: Options) -> Stage:
    patterns = pattern_set(
        options["redact_patterns"], options["redact_extra_patterns"], options["redact_replacement"]
    )
    return Redactor(
        patterns, reasoning=options["redact_reasoning"], arguments=options["redact_tool_arguments"]
    )


OPTIONS = (
    Option(
        "redact_patterns",
        tuple(BUILTIN_PATTERNS),
        "Which built-in secret kinds to mask: " + ", ".join(BUILTIN_PATTERNS) + " (all by default).",
        check_kinds,
        allowed="a list of built-in pattern names, or a comma-separated str ('all' for every one)",
    ),
    Option(
        "redact_extra_patterns",
        {},
        "More secret kinds to mask: a dict of name to regular expression. Each must match at least "
        "one character and have a longest match ({m,n}, not + or *); a built-in name replaces it.",
        check_extra_patterns,
        allowed="a dict of name to regex",
    ),
    Option(
        "redact_replacement",
        DEFAULT_REPLACEMENT,
        "What a masked secret becomes; {kind} is replaced by the kind's name.",
        check_replacement,
        allowed="a str without '\"', '\\' or control characters; may use {kind}",
    ),
    Option.boolean("redact_reasoning", True, "Mask secrets in the model's reasoning too."),
    Option.boolean("redact_tool_arguments", True, "Mask secrets inside tool-call arguments too."),
)

SPEC = StageSpec(
    "redact",
    _make,
    options=OPTIONS,
    description="Masks secrets (API keys, bearer tokens, e-mail addresses) in content, reasoning and "
    "tool-call arguments as they stream.",
    after="tool_calls",
    optional=True,
)
