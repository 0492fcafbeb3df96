"""The usage stage: collects the upstream's cumulative token counts and reports them once, at the end."""

from __future__ import annotations

from typing import Any

from ..events import Finish, UsageReport, UsageUpdate
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["UsageCollector", "UsageDropped", "register_stages"]


class UsageCollector(Stage):
    """Keeps the latest value of each count (they are cumulative: never summed; a field the
    upstream leaves out keeps its earlier value) and reports usage after the finish, or on the
    finish with ``usage="final"``."""

    __slots__ = ("_cache_creation", "_cache_read", "_final", "_input", "_output", "_thinking")

    handles = (UsageUpdate, Finish)
    emits = (Finish, UsageReport)

    def __init__(self, options: Options) -> None:
        self._final = options["usage"] == "final"
        self._input = self._output = self._cache_read = self._cache_creation = 0
        self._thinking: int | None = None

    def feed(self, item: Any) -> None:
        if item.__class__ is UsageUpdate:
            if item.input_tokens is not None:
                self._input = item.input_tokens
            if item.output_tokens is not None:
                self._output = item.output_tokens
            if item.cache_read_input_tokens is not None:
                self._cache_read = item.cache_read_input_tokens
            if item.cache_creation_input_tokens is not None:
                self._cache_creation = item.cache_creation_input_tokens
            if item.thinking_tokens is not None:
                self._thinking = item.thinking_tokens
            return
        report = UsageReport(
            prompt_tokens=self._input + self._cache_read + self._cache_creation,
            completion_tokens=self._output,
            cached_tokens=self._cache_read,
            reasoning_tokens=self._thinking,
        )
        if self._final:
            self.emit(Finish(item.reason, report))
        else:
            self.emit(item)
            self.emit(report)


class UsageDropped(Stage):
    """Usage was not asked for (the default): this stage steps aside, and the counts, which no
    later stage handles, end at the serializer, which writes nothing for them."""

    __slots__ = ()

    handles = ()


def _make(options: Options) -> Stage:
    return UsageCollector(options) if options["include_usage"] else UsageDropped()


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "usage",
            _make,
            options=(
                Option.boolean(
                    "include_usage",
                    False,
                    "Report token usage (as stream_options.include_usage asks): prompt = input + "
                    "cache read + cache creation tokens.",
                ),
                Option.choice(
                    "usage",
                    "chunk",
                    ("chunk", "final"),
                    "Where usage goes: its own last chunk with choices: [] ('chunk'), or on the "
                    "finish chunk ('final', for clients that cannot take an empty choices list).",
                ),
            ),
            description="Collects cumulative token counts; reports usage once, at the end.",
        )
    )
