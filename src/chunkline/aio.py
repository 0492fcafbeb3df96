"""The async edge: runs a conversion over an async byte source on asyncio or trio (the only anyio user)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

from .errors import idle_fault, source_fault

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["transform"]

_NOTHING = object()


async def transform(
    pipeline: Pipeline,
    source: AsyncIterable[Any],
    *,
    idle_timeout: float | None = None,
    **overrides: Any,
) -> AsyncIterator[Any]:
    """Yield the outputs of one conversion of ``source`` as soon as each is complete.

    A source that fails mid-stream, or (with ``idle_timeout``) goes that many seconds without
    producing anything, ends the stream with an in-band error (raised with ``on_error="raise"``).
    A failing source reads as ``upstream_error``, unless it raises a ``chunkline.StreamError``
    subclass itself, whose type, message and code the error then carries.
    The source is closed when the stream ends, fails or is cancelled. ``overrides`` are
    per-conversion options, as for ``Pipeline.open()``.
    """
    conversion = pipeline.open(**overrides)
    iterator = aiter(source)
    try:
        while not conversion.finished:
            data: Any = _NOTHING
            try:
                if idle_timeout is None:
                    data = await anext(iterator)
                else:
                    # move_on_after rather than fail_after: a TimeoutError the source raises
                    # itself (a socket timeout) is a failed read, not our idle timeout.
                    with anyio.move_on_after(idle_timeout):
                        data = await anext(iterator)
            except StopAsyncIteration:
                break
            except Exception as exc:
                for out in conversion.abort(*source_fault(exc)):
                    yield out
                return
            if data is _NOTHING:
                assert idle_timeout is not None
                for out in conversion.abort(*idle_fault(idle_timeout)):
                    yield out
                return
            for out in conversion.feed(data):
                yield out
        for out in conversion.close():
            yield out
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
