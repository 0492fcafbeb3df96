"""The streaming hot path: upstream chunks converted as they come; what one read brought goes in one write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import Message, Send

from ..conversion import Conversion
from ..errors import idle_fault, source_fault
from .cancel import TIMER_CONTEXT, TaskScope
from .shutdown import SHUTDOWN_ERROR, Shutdown
from .upstream import StreamTimeLimit, too_long

__all__ = ["CHAT_FAULT", "Pings", "relay"]

logger = logging.getLogger("chunkline.server")

# Bytes after a first read's first event that are worth sending that event ahead of: a few
# events, whose conversion takes longer than the extra write and loop turn (about 20 us) do.
_LONG_REST = 2048
# Events of the first read fed one by one while none has given an output: enough for a chat
# stream's role chunk or an upstream's keep-alive comments, a bounded cost for anything else.
_LEAD_EVENTS = 8
#: How the chat serializer frames an in-band error event (R41): the one event worth a log line.
CHAT_FAULT = b'data: {"error":'


class _Watchdog:
    """The idle timeout of one stream as one timer: each read only notes its time, and the
    timer, when it fires, either cancels the wait for the upstream (nothing came for ``idle``
    seconds) or sets itself again for ``idle`` seconds after the last read. A cancel scope per
    read cost more than converting the event (about 13% of the server's CPU in `make
    bench-server`). Time spent waiting for the client to take what was sent does not count as
    the upstream's silence."""

    __slots__ = ("fired", "idle", "last", "loop", "scope", "timer", "writing")

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: float, scope: TaskScope) -> None:
        self.loop = loop
        self.idle = idle
        self.scope = scope
        self.fired = False
        self.writing = False
        self.last = loop.time()
        self.timer = loop.call_at(self.last + idle, self._check, context=TIMER_CONTEXT)

    def _check(self) -> None:
        now = self.loop.time()
        due = (now if self.writing else self.last) + self.idle
        if now >= due:
            self.fired = True
            self.scope.cancel()
        else:
            self.timer = self.loop.call_at(due, self._check, context=TIMER_CONTEXT)

    def stop(self) -> None:
        self.timer.cancel()


@dataclass(frozen=True, slots=True)
class Pings:
    """Keep-alive frames for a stream that has sent nothing for ``interval`` seconds (so that
    proxies between the server and the client keep the connection open): ``first`` until the
    stream's first output has gone out, then ``later``."""

    interval: float
    first: bytes
    later: bytes


class _Pinger:
    """`Pings` for one stream, on one timer: each of the relay's writes notes its time, and the
    timer, when nothing has been written for the interval, sends a ping from a task of its own
    (the relay's task is waiting for the upstream then). A ping is a whole frame, as each of the
    relay's writes is whole frames, so the two never interleave within a frame; none starts while
    the relay is writing, and `stop` cancels one not yet written."""

    __slots__ = ("begun", "loop", "pings", "quiet_since", "send", "task", "timer", "watchdog")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pings: Pings, send: Send, watchdog: _Watchdog
    ) -> None:
        self.loop = loop
        self.pings = pings
        self.send = send
        self.watchdog = watchdog
        self.begun = False
        self.task: asyncio.Task[None] | None = None
        self.quiet_since = loop.time()
        self.timer = loop.call_at(self.quiet_since + pings.interval, self._check)

    async def relayed(self, message: Message) -> None:
        """The relay's ``send``, noting when the stream last wrote."""
        await self.send(message)
        self.quiet_since = self.loop.time()
        self.begun = True

    def _check(self) -> None:
        now = self.loop.time()
        due = self.quiet_since + self.pings.interval
        if now >= due:
            if not self.watchdog.writing and (self.task is None or self.task.done()):
                frame = self.pings.later if self.begun else self.pings.first
                self.task = self.loop.create_task(self._ping(frame))
            self.quiet_since = now
            due = now + self.pings.interval
        self.timer = self.loop.call_at(due, self._check)

    async def _ping(self, frame: bytes) -> None:
        try:
            await self.send({"type": "http.response.body", "body": frame, "more_body": True})
        except Exception as exc:  # the relay's own next write meets the same broken connection
            logger.debug("a keep-alive ping was not sent: %s: %s", type(exc).__name__, exc)

    def stop(self) -> None:
        self.timer.cancel()
        if self.task is not None:
            self.task.cancel()


async def relay(
    conversion: Conversion,
    source: AsyncIterator[bytes],
    send: Send,
    *,
    start: Message | None = None,
    idle_timeout: float,
    stream_timeout: float,
    on_fault: Callable[[bytes], None] | None = None,
    fault_marker: bytes = CHAT_FAULT,
    pings: Pings | None = None,
    shutdown: Shutdown | None = None,
    on_cut: Callable[[], None] | None = None,
) -> None:
    """Send ``start`` (the response's head), if given. Then feed ``source`` (the upstream body)
    to ``conversion`` chunk by chunk and send what each chunk completes as one ASGI body message
    as soon as it is converted, before the next read: no event waits for a later read, and a
    chunk that completes ten events costs one write, not ten (`chunkline.server.http1` hands
    over a whole network read as one chunk). A client that takes less than the upstream sends
    holds the upstream back: the next read waits for the write.

    The same faults as `chunkline.aio.transform`, in-band and in the same words: a failed read
    (``upstream_error``, or the type of a `chunkline.StreamError` it raised), ``idle_timeout``
    seconds without a read (``upstream_timeout``), and a read after ``stream_timeout`` seconds
    (``upstream_timeout`` too). Each in-band error event that goes out (an output that starts
    with ``fault_marker``, the target format's error frame) is handed to ``on_fault`` (by
    default it is logged). With ``pings``, a stream silent for their interval gets a keep-alive
    frame. With ``shutdown``, the end of its grace period cuts the stream off, head included: it
    ends in-band with the conversion's abort (`SHUTDOWN_ERROR`), and ``on_cut`` is called.

    Ends the response (a last, empty body message) but does not close ``source``. The stream's
    one cancel scope is the shutdown's guard, which the idle timeout cancels too: the server
    holds one scope and one coroutine frame per stream, not one for each."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stream_timeout
    tail: Sequence[Any] = ()
    read = source.__anext__
    fault = on_fault or _log_fault
    first_read = True
    watchdog: _Watchdog | None = None
    with shutdown.guard() if shutdown is not None else TaskScope() as scope:
        if start is not None:
            await send(start)
        del start  # nor its headers, kept for as long as the stream runs
        watchdog = _Watchdog(loop, idle_timeout, scope)
        pinger = None
        if pings is not None:
            pinger = _Pinger(loop, pings, send, watchdog)
            send = pinger.relayed
        try:
            while True:
                try:
                    data = await read()
                except StopAsyncIteration:
                    tail = conversion.close()
                    break
                except Exception as exc:
                    tail = conversion.abort(*source_fault(exc))
                    break
                if loop.time() > deadline:
                    # The fault `upstream.capped` raises on the other paths, so both read alike.
                    tail = conversion.abort(*source_fault(StreamTimeLimit(too_long(stream_timeout))))
                    break
                if first_read:
                    first_read = False
                    watchdog.writing = True
                    held, data = await _lead(conversion, data, send, fault, fault_marker)
                    watchdog.writing = False
                    outputs = [*held, *conversion.feed(data)]
                    del held
                else:
                    outputs = conversion.feed(data)
                # Not kept while the loop waits: a read may be hundreds of kilobytes.
                del data
                if conversion.finished:
                    outputs = [*outputs, *conversion.close()]
                if outputs:
                    watchdog.writing = True
                    await _send(send, outputs, fault, fault_marker)
                    watchdog.writing = False
                del outputs
                if conversion.finished:
                    break
                watchdog.last = loop.time()
        finally:
            watchdog.stop()
            if pinger is not None:
                pinger.stop()
    if watchdog is not None and watchdog.fired:
        tail = conversion.abort(*idle_fault(idle_timeout))
    elif scope.cancelled_caught and shutdown is not None:
        tail = conversion.abort(SHUTDOWN_ERROR, shutdown.message)
        if on_cut is not None:
            on_cut()
    if tail:
        await _send(send, tail, fault, fault_marker)
    # The body ends right after the last event (R5: openai 1.x clients read on until it does).
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lead(
    conversion: Conversion, data: bytes, send: Send, fault: Callable[[bytes], None], marker: bytes
) -> tuple[list[bytes], bytes]:
    """Send the first output of a long first read at once, so that the client's first byte does
    not wait for the rest of the read (a fast upstream's whole answer) to be converted. The read
    is fed event by event until an event gives an output (a chat stream's first chunk, its role,
    gives none), at most `_LEAD_EVENTS` of them. Returns the outputs still to send with the rest,
    and the rest of ``data``. The conversion takes any split of its input alike: this changes
    when bytes leave, never which."""
    fed = 0
    for _ in range(_LEAD_EVENTS):
        end = _event_end(data, fed)
        if end < 0 or len(data) - end < _LONG_REST:
            break
        early = conversion.feed(data[fed:end])
        fed = end
        if early:
            if conversion.finished:
                return early, data[fed:]
            await _send(send, early, fault, marker)
            # Held writes leave at the end of the loop's turn (protocol._OneWritePerTurn): one
            # yield sends this one before the rest is converted.
            await asyncio.sleep(0)
            break
    return [], data[fed:]


def _event_end(data: bytes, start: int) -> int:
    """Where the first SSE event from ``start`` on ends (after its blank line); -1 if none does."""
    end = data.find(b"\n\n", start)
    if end >= 0:
        return end + 2
    end = data.find(b"\r\n\r\n", start)
    return end + 4 if end >= 0 else -1


def _log_fault(data: bytes) -> None:
    logger.warning("stream ended by a fault: %s", data[6:].decode(errors="replace").strip())


async def _send(send: Send, outputs: Sequence[bytes], fault: Callable[[bytes], None], marker: bytes) -> None:
    body = outputs[0] if len(outputs) == 1 else b"".join(outputs)
    if marker in body:
        # The client reads the fault in-band (its key already redacted by value in the events,
        # see scrub.RedactStage); the operator reads it here. (A JSON string cannot hold a
        # marker: its quote, or its line break, would be escaped.)
        for data in outputs:
            if data.startswith(marker):
                fault(data)
    await send({"type": "http.response.body", "body": body, "more_body": True})
