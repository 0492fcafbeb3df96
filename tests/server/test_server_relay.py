"""The relay: a long first read's first event goes ahead of the rest of it; keep-alive pings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_bodies import echo_events
from fake_openai_chat import echo_chunks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_route import chat_fixture_paths, chat_sse, load_chat_sse
from chunkline import Pipeline
from chunkline.conversion import Conversion
from chunkline.server.relay import _LONG_REST, Pings, relay
from strategies import framed_streams, splits

WORDS = " ".join(f"w{k}" for k in range(40))
CREATED = 1_700_000_000  # one timestamp for every conversion compared


class _Recorded:
    """A conversion that notes each feed in ``log`` and converts as the real one does."""

    def __init__(self, conversion: Conversion, log: list[str]) -> None:
        self._conversion = conversion
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conversion, name)

    def feed(self, data: bytes) -> list[bytes]:
        self._log.append(f"feed {len(data)}")
        return self._conversion.feed(data)


async def _reads(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class _Sent:
    """What a relay sent: each body part's bytes, and the response's end (one empty last message)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.ended = False

    def take(self, message: dict[str, Any]) -> bool:
        """Keep ``message``; whether it was a body part (not the end)."""
        assert not self.ended, f"sent after the response ended: {message}"
        if message.get("more_body", False):
            self.bodies.append(message["body"])
            return True
        assert message == {"type": "http.response.body", "body": b"", "more_body": False}
        self.ended = True
        return False


async def _relay(*parts: bytes, pipeline: Pipeline | None = None) -> tuple[list[str], list[bytes]]:
    """The log of feeds, sends and end-of-turn flushes, and the bodies sent (by a conversion of
    ``pipeline``, by default the chat route's)."""
    loop = asyncio.get_running_loop()
    log: list[str] = []
    sent = _Sent()

    async def send(message: dict[str, Any]) -> None:
        if sent.take(message):
            log.append("send")
            # As the protocol holds writes: they leave with the loop's next turn.
            loop.call_soon(log.append, "flushed")

    conversion = _Recorded(pipeline.open() if pipeline else Pipeline().open(created=CREATED), log)
    await relay(conversion, _reads(*parts), send, idle_timeout=5, stream_timeout=60)  # type: ignore[arg-type]
    assert sent.ended
    return log, sent.bodies


def _whole(*parts: bytes, close: bool = True) -> list[bytes]:
    """The outputs of one conversion fed ``parts`` (and closed)."""
    conversion = Pipeline().open(created=CREATED)
    out = [data for part in parts for data in conversion.feed(part)]
    return out + conversion.close() if close else out


@pytest.mark.asyncio
async def test_the_first_event_of_a_long_first_read_is_sent_before_the_rest_is_converted() -> None:
    frames = echo_events(WORDS)
    answer = b"".join(frames)
    log, bodies = await _relay(answer)
    assert log[:4] == [f"feed {len(frames[0])}", "send", "flushed", f"feed {len(answer) - len(frames[0])}"]
    assert bodies[0] == b"".join(_whole(frames[0], close=False))
    assert b"".join(bodies) == b"".join(_whole(answer))


@pytest.mark.asyncio
async def test_later_reads_and_short_first_reads_go_whole() -> None:
    frames = echo_events(WORDS)
    rest = b"".join(frames[2:])
    log, bodies = await _relay(frames[0], frames[1] + rest)
    assert [entry for entry in log if entry.startswith("feed")] == [
        f"feed {len(frames[0])}",
        f"feed {len(frames[1]) + len(rest)}",
    ]
    assert b"".join(bodies) == b"".join(_whole(*frames))
    # A first read whose rest converts faster than an extra write and loop turn take goes whole.
    short = b"".join(echo_events("a few words"))
    assert len(short) - len(echo_events("a few words")[0]) < _LONG_REST
    log, bodies = await _relay(short)
    assert log[0] == f"feed {len(short)}" and len(bodies) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("separator", [b"\r\n", b"\r"])
async def test_any_line_ending_converts_the_same(separator: bytes) -> None:
    answer = b"".join(echo_events(WORDS)).replace(b"\n", separator)
    log, bodies = await _relay(answer)
    assert b"".join(bodies) == b"".join(_whole(answer))
    if separator == b"\r\n":
        assert log[1:3] == ["send", "flushed"]


@pytest.mark.asyncio
async def test_a_first_event_that_ends_the_stream_is_sent_with_its_end() -> None:
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    log, bodies = await _relay(error + b"".join(echo_events(WORDS)))
    assert log.count("send") == len(bodies) == 1
    assert b"overloaded" in bodies[0]
    assert bodies[0] == b"".join(_whole(error))


@pytest.mark.asyncio
async def test_the_first_output_goes_ahead_when_the_first_event_gives_none() -> None:
    """A chat stream's first chunk (its role) gives no Anthropic event yet: the next one's
    ``message_start`` still leaves before the rest of the read is converted."""
    chunks = echo_chunks(WORDS)
    frames = [chat_sse([chunk], done=False) for chunk in chunks]
    answer = chat_sse(chunks)
    pipeline = Pipeline(source="openai-chat", target="anthropic-messages")
    log, bodies = await _relay(answer, pipeline=pipeline)
    assert log[:5] == [
        f"feed {len(frames[0])}",
        f"feed {len(frames[1])}",
        "send",
        "flushed",
        f"feed {len(answer) - len(frames[0]) - len(frames[1])}",
    ]
    assert bodies[0].startswith(b"event: message_start")
    whole = pipeline.open()
    assert b"".join(bodies) == b"".join([*whole.feed(answer), *whole.close()])


FIRST, LATER = b": first\n\n", b"event: later\n\n"


async def _paced(*steps: bytes | float) -> AsyncIterator[bytes]:
    """The parts of ``steps``, with a pause wherever a number of seconds stands."""
    for step in steps:
        if isinstance(step, float):
            await asyncio.sleep(step)
        else:
            yield step


async def _pinged(*steps: bytes | float, interval: float = 0.05, idle: float = 5) -> list[bytes]:
    sent = _Sent()

    async def send(message: dict[str, Any]) -> None:
        sent.take(message)

    conversion = Pipeline().open(created=CREATED)
    await relay(
        conversion,
        _paced(*steps),
        send,
        idle_timeout=idle,
        stream_timeout=60,
        pings=Pings(interval, FIRST, LATER),
    )
    assert sent.ended
    return sent.bodies


@pytest.mark.asyncio
async def test_a_silent_stream_gets_the_first_ping_until_it_has_begun_then_the_later_one() -> None:
    frames = echo_events("hello there")
    bodies = await _pinged(0.18, frames[0], 0.18, b"".join(frames[1:]))
    events = [body for body in bodies if body not in (FIRST, LATER)]
    assert b"".join(events) == b"".join(_whole(b"".join(frames)))
    begun = bodies.index(events[0])
    # 0.18 s of silence at 0.05 s: three pings on time, one at least on a loaded machine.
    assert set(bodies[:begun]) == {FIRST} and 1 <= begun <= 4, bodies
    pings_later = [body for body in bodies[begun:] if body in (FIRST, LATER)]
    assert set(pings_later) == {LATER} and 1 <= len(pings_later) <= 4, bodies


@pytest.mark.asyncio
async def test_a_stream_that_keeps_writing_gets_no_ping() -> None:
    frames = echo_events(WORDS)
    steps: list[bytes | float] = []
    for frame in frames:
        steps += [frame, 0.01]
    bodies = await _pinged(*steps, interval=1.0)
    assert FIRST not in bodies and LATER not in bodies
    assert b"".join(bodies) == b"".join(_whole(b"".join(frames)))


@pytest.mark.asyncio
async def test_no_ping_leaves_after_the_relay_has_returned() -> None:
    """The idle timeout ends the stream in-band; the pings stop with it, also one whose send is
    still waiting (for a client that reads slowly) when the relay returns."""
    frames = echo_events("hello")
    sent = _Sent()
    bodies = sent.bodies
    release = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["body"] in (FIRST, LATER):
            await release.wait()  # a ping stuck behind a full socket buffer
        sent.take(message)

    conversion = Pipeline().open(created=CREATED)
    await relay(
        conversion,
        _paced(frames[0], 1.0),
        send,
        idle_timeout=0.2,
        stream_timeout=60,
        pings=Pings(0.05, FIRST, LATER),
    )
    assert sent.ended
    ended = list(bodies)
    release.set()
    await asyncio.sleep(0.1)
    assert bodies == ended
    assert b"upstream_timeout" in bodies[-1] and FIRST not in bodies and LATER not in bodies


def _relayed_bodies(pipeline: Pipeline, reads: list[bytes], **options: Any) -> bytes:
    sent = _Sent()

    async def send(message: dict[str, Any]) -> None:
        sent.take(message)

    async def run() -> None:
        conversion = pipeline.open(**options)
        await relay(conversion, _reads(*reads), send, idle_timeout=5, stream_timeout=60)

    asyncio.run(run())
    assert sent.ended
    return b"".join(sent.bodies)


def _converted(pipeline: Pipeline, data: bytes, **options: Any) -> bytes:
    conversion = pipeline.open(**options)
    return b"".join([*conversion.feed(data), *conversion.close()])


RELAYED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHAT_RECORDINGS = [load_chat_sse(path) for path in chat_fixture_paths()]


@RELAYED
@given(st.data())
def test_the_relay_sends_what_the_conversion_gives_however_the_reads_fall(data: st.DataObject) -> None:
    """Whatever goes ahead of a first read's rest, and however the upstream's reads are cut, the
    client gets the bytes the whole input converts to: the chat route on generated Anthropic
    streams."""
    _, framed = data.draw(framed_streams())
    reads = data.draw(splits(framed))
    pipeline = Pipeline()
    expected = _converted(pipeline, framed, created=CREATED)
    assert _relayed_bodies(pipeline, reads, created=CREATED) == expected


@RELAYED
@given(
    st.sampled_from(CHAT_RECORDINGS).flatmap(
        lambda recording: st.tuples(st.just(recording), splits(recording))
    )
)
def test_the_messages_route_relays_real_recordings_however_the_reads_fall(
    case: tuple[bytes, list[bytes]],
) -> None:
    recording, reads = case
    pipeline = Pipeline(source="openai-chat", target="anthropic-messages")
    assert _relayed_bodies(pipeline, reads) == _converted(pipeline, recording)
