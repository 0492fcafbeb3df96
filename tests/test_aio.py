"""chunkline.aio.transform on asyncio and trio: output, failing sources, cancellation, idle timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import anyio
import pytest
import trio

import chunkline
import chunkline.aio
from strategies import CREATED, block_events, encode_sse, message_delta, message_start, read_openai_stream

BACKENDS = ["asyncio", "trio"]

EVENTS = [
    message_start(),
    {"type": "ping"},
    *block_events(
        0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in ("Hel", "lo ", "😀")]
    ),
    message_delta("end_turn"),
    {"type": "message_stop"},
]
DATA = encode_sse(EVENTS)
PIECES = [DATA[i : i + 7] for i in range(0, len(DATA), 7)]


def run(backend: str, main: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(main, backend=backend)


# Built once, at import: building a pipeline can take longer than the short windows some tests
# cancel in (see test_cancellation.py).
_PIPELINE = chunkline.Pipeline(created=CREATED)


def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options) if options else _PIPELINE


class Source:
    """An async byte source that records whether it was closed; ``fail_at`` raises at that piece,
    ``stall_at`` waits forever at that piece."""

    def __init__(
        self, pieces: list[bytes], *, fail_at: int | None = None, stall_at: int | None = None
    ) -> None:
        self.pieces = pieces
        self.fail_at = fail_at
        self.stall_at = stall_at
        self.position = 0
        self.closed = False
        self.served = 0

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> bytes:
        await anyio.sleep(0)
        if self.position == self.fail_at:
            raise ConnectionResetError("peer went away")
        if self.position == self.stall_at:
            await anyio.sleep_forever()
        if self.position >= len(self.pieces):
            raise StopAsyncIteration
        piece = self.pieces[self.position]
        self.position += 1
        self.served += 1
        return piece

    async def aclose(self) -> None:
        await anyio.sleep(0)  # closing may itself await (it runs shielded)
        self.closed = True


async def collect(source: Any, **options: Any) -> list[bytes]:
    return [out async for out in pipeline(**options).transform(source)]


def live_tasks() -> int:
    """The number of tasks still alive in the running event loop (anyio backend-neutral)."""
    try:
        return trio.lowlevel.current_statistics().tasks_living
    except RuntimeError:
        return len(asyncio.all_tasks())


# -- output ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_transform_matches_the_sync_conversion(backend: str) -> None:
    expected = pipeline().convert(DATA)
    source = Source(PIECES)
    assert run(backend, lambda: collect(source)) == expected
    assert source.closed, "the source is closed when the stream ends"
    assert read_openai_stream(expected).text == "Hello 😀"


@pytest.mark.parametrize("backend", BACKENDS)
def test_transform_takes_an_async_generator(backend: str) -> None:
    async def gen() -> AsyncIterator[bytes]:
        for piece in PIECES:
            yield piece

    assert run(backend, lambda: collect(gen())) == pipeline().convert(DATA)


@pytest.mark.parametrize("backend", BACKENDS)
def test_module_level_transform(backend: str) -> None:
    async def main() -> list[bytes]:
        return [out async for out in chunkline.aio.transform(pipeline(), Source(PIECES))]

    assert run(backend, main) == pipeline().convert(DATA)


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_are_yielded_as_soon_as_they_are_complete(backend: str) -> None:
    async def main() -> list[tuple[int, bytes]]:
        source = Source(encode_sse_per_event())
        seen = []
        async for out in pipeline().transform(source):
            seen.append((source.served, out))
        return seen

    seen = run(backend, main)
    # The role chunk comes out after the first event, before the rest has been read.
    assert seen[0][0] == 1 and seen[0][1].startswith(b'data: {"id"')


def encode_sse_per_event() -> list[bytes]:
    return [encode_sse([event]) for event in EVENTS]


@pytest.mark.asyncio
async def test_transform_under_pytest_asyncio() -> None:
    assert await collect(Source(PIECES)) == pipeline().convert(DATA)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_truncated_source_is_reported(backend: str) -> None:
    out = run(backend, lambda: collect(Source(PIECES[:-3])))
    error = read_openai_stream(out).error
    assert error is not None and error["type"] == "upstream_truncated"


# -- a source that fails ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_source_that_raises_is_an_in_band_error(backend: str) -> None:
    source = Source(encode_sse_per_event(), fail_at=3)
    out = run(backend, lambda: collect(source))
    stream = read_openai_stream(out)
    assert stream.error is not None and stream.error["type"] == "upstream_error"
    assert "ConnectionResetError" in stream.error["message"] and "peer went away" in stream.error["message"]
    assert stream.finish_chunks == [] and out[-1] == b"data: [DONE]\n\n"
    assert source.closed


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_source_that_raises_a_stream_error_chooses_the_error_type(backend: str) -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield encode_sse(EVENTS[:1])
        raise chunkline.UpstreamTimeout("ran past the 30 s limit", "stream_time_limit")

    stream = read_openai_stream(run(backend, lambda: collect(gen())))
    assert stream.error == {
        "message": "ran past the 30 s limit",
        "type": "upstream_timeout",
        "param": None,
        "code": "stream_time_limit",
    }
    with pytest.raises(chunkline.UpstreamTimeout, match="ran past the 30 s limit"):
        run(backend, lambda: collect(gen(), on_error="raise"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_source_that_raises_with_on_error_raise(backend: str) -> None:
    source = Source(encode_sse_per_event(), fail_at=3)
    received: list[bytes] = []

    async def main() -> None:
        async for out in pipeline(on_error="raise").transform(source):
            received.append(out)

    with pytest.raises(chunkline.UpstreamError) as info:
        run(backend, main)
    assert "peer went away" in info.value.message
    assert read_openai_stream([*received, *info.value.output, b"data: [DONE]\n\n"], check=False).chunks
    assert source.closed


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_source_that_raises_timeout_error_without_an_idle_timeout(backend: str) -> None:
    # A source's own TimeoutError (socket.timeout is one) is a failed read, reported with its
    # message; no idle_timeout was set, so "nothing for None seconds" would be false.
    async def gen() -> AsyncIterator[bytes]:
        yield encode_sse(EVENTS[:1])
        raise TimeoutError("read timed out")

    stream = read_openai_stream(run(backend, lambda: collect(gen())))
    assert stream.error is not None and stream.error["type"] in {"upstream_error", "upstream_timeout"}
    assert "read timed out" in stream.error["message"]
    assert "None" not in stream.error["message"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fault_in_the_stream_with_on_error_raise(backend: str) -> None:
    bad = [*encode_sse_per_event()[:3], b"event: ping\ndata: {oops\n\n"]
    with pytest.raises(chunkline.InvalidUpstreamResponse):
        run(backend, lambda: collect(Source(bad), on_error="raise"))


# -- cancellation and early stops ------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_source_is_closed_when_the_consumer_stops_early(backend: str) -> None:
    source = Source(PIECES)

    async def main() -> tuple[int, int]:
        before = live_tasks()
        async with aclosing(pipeline().transform(source)) as outputs:
            async for _ in outputs:
                break
        return before, live_tasks()

    before, after = run(backend, main)
    assert source.closed
    assert source.position < len(PIECES)
    assert after == before, "no task left behind"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_source_is_closed_when_the_consumer_is_cancelled(backend: str) -> None:
    source = Source(encode_sse_per_event(), stall_at=3)
    received: list[bytes] = []

    async def consume() -> None:
        async with aclosing(pipeline().transform(source)) as outputs:
            async for out in outputs:
                received.append(out)

    async def main() -> tuple[int, int]:
        before = live_tasks()
        with anyio.move_on_after(0.1) as scope:
            await consume()
        assert scope.cancelled_caught
        return before, live_tasks()

    before, after = run(backend, main)
    assert source.closed
    assert received and read_openai_stream(received, check=False).chunks
    assert after == before, "no task left behind"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_source_is_closed_when_a_task_group_is_cancelled(backend: str) -> None:
    source = Source(encode_sse_per_event(), stall_at=2)

    async def main() -> int:
        before = live_tasks()
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async with aclosing(pipeline().transform(source)) as outputs:
                    async for _ in outputs:
                        pass

            tg.start_soon(consume)
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        assert live_tasks() == before
        return source.position

    assert run(backend, main) == 2
    assert source.closed


# -- idle timeout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_timeout_ends_a_stalled_stream_in_band(backend: str) -> None:
    source = Source(encode_sse_per_event(), stall_at=4)  # after the "Hel" delta

    async def main() -> list[bytes]:
        return [o async for o in chunkline.aio.transform(pipeline(), source, idle_timeout=0.05)]

    started = time.monotonic()
    out = run(backend, main)
    assert time.monotonic() - started < 5
    stream = read_openai_stream(out)
    assert stream.error is not None and stream.error["type"] == "upstream_timeout"
    assert stream.error["code"] == "upstream_timeout" and stream.error["param"] is None
    assert stream.finish_chunks == [] and out[-1] == b"data: [DONE]\n\n"
    assert stream.text == "Hel"
    assert source.closed


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_timeout_is_per_read_not_for_the_whole_stream(backend: str) -> None:
    class Slow(Source):
        async def __anext__(self) -> bytes:
            await anyio.sleep(0.02)
            return await super().__anext__()

    source = Slow(encode_sse_per_event())

    async def main() -> list[bytes]:
        return [o async for o in chunkline.aio.transform(pipeline(), source, idle_timeout=0.5)]

    stream = read_openai_stream(run(backend, main))
    assert stream.error is None and stream.finish_reason == "stop"


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_timeout_with_on_error_raise(backend: str) -> None:
    source = Source(encode_sse_per_event(), stall_at=3)

    async def main() -> list[bytes]:
        return [
            o async for o in chunkline.aio.transform(pipeline(on_error="raise"), source, idle_timeout=0.05)
        ]

    with pytest.raises(chunkline.StreamError) as info:
        run(backend, main)
    # The raised error matches the in-band one (StreamError's contract).
    assert info.value.type == "upstream_timeout"
    assert source.closed
