"""The chunker stage: re-cuts text by a chunking policy, losslessly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..events import TextDelta
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import NOT_BOUNDARIES, ChunkPolicy, Option, Options, Stage, StageSpec

__all__ = ["Passthrough", "TextChunker", "register_stages"]


class Passthrough(Stage):
    """The default policy: one content delta per upstream text delta, nothing held back. It
    handles nothing, so the conversion routes text straight past it."""

    __slots__ = ()

    handles = ()


class TextChunker(Stage):
    """Feeds text through a policy. Whatever else arrives (a part's end, a tool call, the end,
    an error) first flushes the held text, so order is kept and nothing is lost; keep-alives and
    usage counts pass without a flush. Text of another part than the held text's flushes too."""

    __slots__ = ("_part", "_policy")

    handles = None

    def __init__(self, policy: ChunkPolicy) -> None:
        self._policy = policy
        self._part = 0

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is TextDelta:
            if item.part != self._part:
                self._flush()
                self._part = item.part
            pieces = self._policy.feed(item.text)
        elif cls in NOT_BOUNDARIES:
            self.emit(item)
            return
        else:
            pieces = self._policy.flush()
        part = self._part
        for piece in pieces:
            if piece:
                self.emit(TextDelta(part, piece))
        if cls is not TextDelta:
            self.emit(item)

    def _flush(self) -> None:
        part = self._part
        for piece in self._policy.flush():
            if piece:
                self.emit(TextDelta(part, piece))

    def close(self) -> None:
        self._flush()


def _check_chunking(value: Any, registry: Registry) -> Any:
    return registry.policy_factory(value)


def _make(options: Options) -> Stage:
    make_policy: Callable[[], ChunkPolicy] = options["chunking"]
    policy = make_policy()
    if getattr(policy, "passthrough", False):
        return Passthrough()
    return TextChunker(policy)


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "chunker",
            _make,
            options=(
                Option(
                    "chunking",
                    "passthrough",
                    "How content text is cut into deltas: 'passthrough' (as it arrives), "
                    "'words:N', 'chars:N', 'sentences', or any registered policy name. Every "
                    "policy is lossless.",
                    _check_chunking,
                    allowed="a registered policy name, optionally with ':ARG'",
                ),
            ),
            description="Re-cuts content text by a chunking policy (lossless).",
        )
    )
