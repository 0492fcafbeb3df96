"""Running a pipeline or a single stage over test input, fed whole, in pieces or byte by byte."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from chunkline import Option, Options, Pipeline, Stage, StageSpec, StreamError
from chunkline.events import ReasoningDelta, TextDelta, ToolCallDelta

__all__ = [
    "StageRun",
    "coalesce",
    "decode_events",
    "feed_bytewise",
    "feed_pieces",
    "open_stage",
    "random_pieces",
    "resplit",
    "run_pipeline",
    "run_stage",
    "stage_pipeline",
]


def feed_pieces(pipeline: Pipeline, pieces: Iterable[Any], **overrides: Any) -> list[Any]:
    """Open a conversion, feed it ``pieces`` one by one, close it, and return every output in
    order. Keyword arguments are per-conversion overrides, as for ``pipeline.open()``. With
    ``on_error="raise"``, the ``chunkline.StreamError`` raised holds in ``.output`` everything
    produced before the fault."""
    conversion = pipeline.open(**overrides)
    out: list[Any] = []
    try:
        for piece in pieces:
            out += conversion.feed(piece)
        out += conversion.close()
    except StreamError as exc:
        exc.output = out + exc.output  # everything produced before the fault, as convert() does
        raise
    return out


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def run_pipeline(
    pipeline: Pipeline, data: bytes | Sequence[Any], *, chunk_size: int | None = None, **overrides: Any
) -> list[Any]:
    """Convert ``data`` and return the outputs. Bytes are fed whole, or in pieces of
    ``chunk_size`` bytes; a list (of event dicts, say) is fed one item at a time."""
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        if chunk_size is None:
            return feed_pieces(pipeline, [data] if data else [], **overrides)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
        return feed_pieces(pipeline, _chunks(data, chunk_size), **overrides)
    if chunk_size is not None:
        raise ValueError("chunk_size applies to bytes; a list is fed one item at a time")
    return feed_pieces(pipeline, data, **overrides)


def feed_bytewise(pipeline: Pipeline, data: bytes, **overrides: Any) -> list[Any]:
    """Convert ``data`` fed one byte at a time (every multi-byte character and every line
    break split) and return the outputs."""
    return run_pipeline(pipeline, data, chunk_size=1, **overrides)


def random_pieces(data: bytes, seed: int | random.Random = 0, *, max_size: int = 64) -> list[bytes]:
    """``data`` cut at random places into pieces of 1 to ``max_size`` bytes (reproducible from
    ``seed``)."""
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    pieces = []
    position = 0
    while position < len(data):
        size = rng.randint(1, max_size)
        pieces.append(data[position : position + size])
        position += size
    return pieces


def decode_events(data: bytes, *, input_format: str = "sse") -> list[Any]:
    """The neutral events (``chunkline.events``) that the built-in Anthropic decoder (the
    ``parse`` and ``decode`` stages) makes of Anthropic bytes: what the middle stages see."""
    pipeline = Pipeline(["parse", "decode"], load_entrypoints=False, input_format=input_format)
    return pipeline.convert(data)


class _Input(Stage):
    """Hands each item to the stage under test, or straight to the output when that stage
    does not handle its type: the same routing a whole pipeline does."""

    __slots__ = ()


# The input stage takes on_error, so that the conversion raises what the stage under test raises
# (chunkline.InternalStageError, with the stage's own exception as its __cause__) instead of
# reporting it in-band as a pipeline does by default.
_ON_ERROR = Option.choice(
    "on_error",
    "raise",
    ("inband", "raise"),
    "What a stage's unexpected exception does: 'raise' (the test sees it) or 'inband'.",
)


class StageRun:
    """One stage wired into a real conversion on its own: `feed` one item at a time and
    see what the stage emits, then `close`. Items of types the stage does not handle go
    straight to the output, as they would go past it in a pipeline. Made by `open_stage`.
    """

    def __init__(self, pipeline: Pipeline, made: list[Stage]) -> None:
        self.pipeline = pipeline
        self._conversion = pipeline.open()
        self.stage: Stage = made[-1]
        """The stage instance under test (to look at what it holds between feeds)."""
        del made[:-1]  # keep no earlier run's stage alive

    def feed(self, item: Any) -> list[Any]:
        """Feed one item; return what reached the end of the stage (in order)."""
        return self._conversion.feed(item)

    def feed_all(self, items: Iterable[Any]) -> list[Any]:
        """Feed several items; return everything they produced."""
        out: list[Any] = []
        for item in items:
            out += self._conversion.feed(item)
        return out

    def close(self) -> list[Any]:
        """End the input; return what the stage emits as it closes."""
        return self._conversion.close()


def stage_pipeline(
    stage: str | StageSpec,
    *,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
    **options: Any,
) -> Callable[[], StageRun]:
    """Build the one-stage pipeline of `open_stage` once; each call of the returned
    function opens a new `StageRun` on it (cheaper when running a stage many times)."""
    plugins = list(plugins)
    block = list(block)
    if isinstance(stage, str):
        registry = Pipeline([], plugins=plugins, load_entrypoints=load_entrypoints, block=block).registry
        spec = registry.stage(stage)
    else:
        spec = stage
    made: list[Stage] = []
    factory = spec.factory

    def make(options: Options) -> Stage:
        instance = factory(options)
        made.append(instance)
        return instance

    under_test = StageSpec(spec.name, make, spec.options, spec.description, spec.after, spec.optional)
    declares_on_error = any(option.name == "on_error" for option in spec.options)
    entry = StageSpec(
        "chunkline.testing.input", lambda options: _Input(), () if declares_on_error else (_ON_ERROR,)
    )
    pipeline = Pipeline(
        [entry, under_test], plugins=plugins, load_entrypoints=load_entrypoints, block=block, **options
    )
    return lambda: StageRun(pipeline, made)


def open_stage(
    stage: str | StageSpec,
    *,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
    **options: Any,
) -> StageRun:
    """Wire one stage (a `chunkline.StageSpec`, or the name of a registered stage) into
    a conversion of its own and return the `StageRun` that drives it. ``options`` are
    checked as ``Pipeline(...)`` checks them. A stage that raises makes ``feed``/``close`` raise
    ``chunkline.InternalStageError`` from the stage's exception (``on_error="inband"`` reports
    it in-band instead, as a pipeline does)."""
    opener = stage_pipeline(stage, plugins=plugins, load_entrypoints=load_entrypoints, block=block, **options)
    return opener()


def run_stage(
    stage: str | StageSpec,
    items: Iterable[Any],
    *,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
    **options: Any,
) -> list[Any]:
    """Run one stage over ``items`` (typed events, such as `decode_events` gives) and
    return everything it emitted, including at close; see `open_stage`."""
    run = open_stage(stage, plugins=plugins, load_entrypoints=load_entrypoints, block=block, **options)
    return run.feed_all(items) + run.close()


# Continuation deltas that may be merged: a key saying which stream of text an item continues,
# and how to make the merged item.
_DELTAS = (TextDelta, ReasoningDelta, ToolCallDelta)


def _merge_key(item: Any) -> tuple[Any, ...] | None:
    cls = item.__class__
    if cls in _DELTAS:
        return (cls, item.part)
    return None


def _text_of(item: Any) -> str:
    if item.__class__ is ToolCallDelta:
        return str(item.arguments)
    return str(item.text)


def _with_text(item: Any, text: str) -> Any:
    return item.__class__(item.part, text)


def coalesce(items: Iterable[Any]) -> list[Any]:
    """``items`` with adjacent deltas of the same part joined into one, and empty deltas left
    out: what a client makes of a stream, whatever its cutting. Text, reasoning and tool-call
    argument deltas are merged, each with the deltas of its own part."""
    out: list[Any] = []
    last_key: tuple[Any, ...] | None = None
    for item in items:
        key = _merge_key(item)
        if key is None:
            out.append(item)
            last_key = None
            continue
        text = _text_of(item)
        if not text:
            continue
        if key == last_key:
            out[-1] = _with_text(out[-1], _text_of(out[-1]) + text)
        else:
            out.append(item)
            last_key = key
    return out


def resplit(items: Iterable[Any], cut: Callable[[str], list[str]]) -> list[Any]:
    """``items`` with the text of every delta re-cut by ``cut`` (which returns the pieces of a
    text, joined back to it)."""
    out: list[Any] = []
    for item in coalesce(items):
        if _merge_key(item) is None:
            out.append(item)
            continue
        pieces = cut(_text_of(item)) or [""]
        out.append(_with_text(item, pieces[0]))
        for piece in pieces[1:]:
            out.append(_with_text(item, piece))
    return out
