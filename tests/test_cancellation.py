"""Cancelling the async adapter: the source is closed promptly and no task is left, on asyncio and trio."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest
import trio

import chunkline
from strategies import CREATED, block_events, encode_sse, message_delta, message_start

BACKENDS = ["asyncio", "trio"]
EVENTS = [
    message_start(),
    *block_events(
        0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in ("a", "b", "c")]
    ),
    message_delta("end_turn"),
    {"type": "message_stop"},
]
PIECES = [encode_sse([event]) for event in EVENTS]
PROMPT = 1.0  # seconds: a cancelled consumer must be gone long before this


# Built once, at import: building a pipeline (plugin discovery, and the first time the imports of
# every built-in format) can take longer than the 50 ms windows these tests cancel in.
_PIPELINE = chunkline.Pipeline(created=CREATED)


def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options) if options else _PIPELINE


class Source:
    """An async byte source that stalls forever at piece ``stall_at`` and records its closing;
    ``close_delay`` makes its ``aclose`` take that long."""

    def __init__(self, stall_at: int | None = None, close_delay: float = 0.0) -> None:
        self.position = 0
        self.stall_at = stall_at
        self.close_delay = close_delay
        self.closed_at: float | None = None

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> bytes:
        await anyio.sleep(0)
        if self.position == self.stall_at:
            await anyio.sleep_forever()
        if self.position >= len(PIECES):
            raise StopAsyncIteration
        self.position += 1
        return PIECES[self.position - 1]

    async def aclose(self) -> None:
        await anyio.sleep(self.close_delay)
        self.closed_at = time.monotonic()


def live_tasks() -> int:
    try:
        return int(trio.lowlevel.current_statistics().tasks_living)
    except RuntimeError:
        return len(asyncio.all_tasks())


# -- cancelled by the event loop's own means -------------------------------------------------------


def test_asyncio_task_cancel_closes_the_source() -> None:
    source = Source(stall_at=3)
    received: list[bytes] = []

    async def consume() -> None:
        async for out in pipeline().transform(source):
            received.append(out)

    async def main() -> tuple[int, int, float]:
        before = len(asyncio.all_tasks())
        task = asyncio.create_task(consume())
        while source.position < 3:
            await asyncio.sleep(0.001)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert source.closed_at is not None
        return before, len(asyncio.all_tasks()), source.closed_at - cancelled_at

    before, after, delay = asyncio.run(main())
    assert after == before and delay < PROMPT
    assert len(received) == 2  # the role chunk and "a"


def test_asyncio_timeout_closes_the_source() -> None:
    source = Source(stall_at=3)

    async def main() -> list[bytes]:
        received: list[bytes] = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                async for out in pipeline().transform(source):
                    received.append(out)
        return received

    started = time.monotonic()
    assert len(asyncio.run(main())) == 2  # the role chunk and "a"
    assert source.closed_at is not None and source.closed_at - started < PROMPT


def test_trio_fail_after_closes_the_source() -> None:
    source = Source(stall_at=3)

    async def main() -> int:
        before = trio.lowlevel.current_statistics().tasks_living
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(0.05):
                async for _ in pipeline().transform(source):
                    pass
        return before - trio.lowlevel.current_statistics().tasks_living

    started = time.monotonic()
    assert trio.run(main) == 0
    assert source.closed_at is not None and source.closed_at - started < PROMPT


# -- both backends, through anyio ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_outer_cancellation_during_an_idle_timeout_wait_is_not_reported_as_a_timeout(backend: str) -> None:
    # The idle timeout's own cancel scope must not swallow the caller's cancellation.
    source = Source(stall_at=3)
    received: list[bytes] = []

    async def main() -> None:
        with anyio.move_on_after(0.05) as scope:
            async for out in pipeline().transform(source, idle_timeout=30):
                received.append(out)
        assert scope.cancelled_caught

    started = time.monotonic()
    anyio.run(main, backend=backend)
    assert time.monotonic() - started < PROMPT
    assert source.closed_at is not None
    assert len(received) == 2 and not any(b"error" in out for out in received)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_consumer_cancelled_between_items_closes_the_source_on_exit(backend: str) -> None:
    # The generator is paused at a yield (not inside the source) when the cancellation comes.
    source = Source()

    async def main() -> tuple[int, int]:
        before = live_tasks()
        with anyio.move_on_after(0.05):
            async with aclosing(pipeline().transform(source)) as outputs:
                async for _ in outputs:
                    await anyio.sleep_forever()
        return before, live_tasks()

    before, after = anyio.run(main, backend=backend)
    assert source.position == 1 and source.closed_at is not None
    assert after == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_consumer_that_breaks_without_aclosing_still_closes_the_source(backend: str) -> None:
    # Without aclosing() the generator is finalised by the event loop's async-generator hooks as
    # soon as it is dropped; that runs the adapter's finally block, which closes the source.
    source = Source()

    async def main() -> tuple[int, int, int]:
        before = live_tasks()
        outputs = pipeline().transform(source)
        async for _ in outputs:
            break
        del outputs
        gc.collect()
        ticks = 0
        while source.closed_at is None and ticks < 100:
            await anyio.sleep(0)
            ticks += 1
        return before, live_tasks(), ticks

    before, after, ticks = anyio.run(main, backend=backend)
    assert source.closed_at is not None and ticks < 100
    assert after == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_async_generator_source_runs_its_cleanup_when_cancelled(backend: str) -> None:
    cleaned: list[str] = []

    async def body() -> AsyncIterator[bytes]:  # the shape of an HTTP client's aiter_bytes()
        try:
            for piece in PIECES[:2]:
                yield piece
            await anyio.sleep_forever()
            yield b""  # pragma: no cover
        finally:
            cleaned.append("closed")

    async def main() -> int:
        before = live_tasks()
        with anyio.move_on_after(0.05):
            async with aclosing(pipeline().transform(body())) as outputs:
                async for _ in outputs:
                    pass
        return before - live_tasks()

    started = time.monotonic()
    assert anyio.run(main, backend=backend) == 0
    assert cleaned == ["closed"] and time.monotonic() - started < PROMPT


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_aclose_is_awaited_then_the_cancellation_completes(backend: str) -> None:
    # Closing runs shielded: a source that takes 50 ms to close is closed, then the caller's
    # cancellation goes on.
    source = Source(stall_at=2, close_delay=0.05)

    async def main() -> float:
        with anyio.move_on_after(0.02) as scope:
            async for _ in pipeline().transform(source):
                pass
        assert scope.cancelled_caught
        return time.monotonic()

    started = time.monotonic()
    finished = anyio.run(main, backend=backend)
    assert source.closed_at is not None and started + 0.05 <= source.closed_at <= finished
    assert finished - started < PROMPT


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_cancelled_conversions_leave_nothing_behind(backend: str) -> None:
    sources = [Source(stall_at=i % len(PIECES)) for i in range(50)]

    async def main() -> tuple[int, int]:
        before = live_tasks()
        async with anyio.create_task_group() as tg:
            for source in sources:

                async def consume(source: Source = source) -> None:
                    async with aclosing(pipeline().transform(source)) as outputs:
                        async for _ in outputs:
                            pass

                tg.start_soon(consume)
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        return before, live_tasks()

    before, after = anyio.run(main, backend=backend)
    assert after == before
    assert all(source.closed_at is not None for source in sources)
