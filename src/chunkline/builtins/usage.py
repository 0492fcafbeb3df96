"""The usage stage: collects the upstream's cumulative token counts and puts their totals on the finish."""

from __future__ import annotations

from typing import Any

from ..events import Finish, UsageUpdate
from ..hookspecs import hookimpl
from ..stage import Stage, StageSpec

__all__ = ["UsageCollector", "register_stages"]


class UsageCollector(Stage):
    """Keeps the latest value of each count (they are cumulative: never summed; a field the
    upstream leaves out keeps its earlier value), passes each update on (a target may show
    counts early), and sends the finish with the totals in ``Finish.usage``."""

    __slots__ = ("_cache_read", "_cache_write", "_input", "_output", "_reasoning")

    handles = (UsageUpdate, Finish)
    emits = (UsageUpdate, Finish)

    def __init__(self, options: Any = None) -> None:
        self._input: int | None = None
        self._output: int | None = None
        self._cache_read: int | None = None
        self._cache_write: int | None = None
        self._reasoning: int | None = None

    def feed(self, item: Any) -> None:
        if item.__class__ is UsageUpdate:
            if item.input_tokens is not None:
                self._input = item.input_tokens
            if item.output_tokens is not None:
                self._output = item.output_tokens
            if item.cache_read_tokens is not None:
                self._cache_read = item.cache_read_tokens
            if item.cache_write_tokens is not None:
                self._cache_write = item.cache_write_tokens
            if item.reasoning_tokens is not None:
                self._reasoning = item.reasoning_tokens
            self.emit(item)
            return
        totals = UsageUpdate(self._input, self._output, self._cache_read, self._cache_write, self._reasoning)
        self.emit(Finish(item.reason, item.raw_reason, item.stop_sequence, totals))


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "usage",
            UsageCollector,
            description="Collects cumulative token counts; puts the totals on the finish.",
        )
    )
