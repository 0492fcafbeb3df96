"""One upstream connection as an asyncio protocol: what it receives, taken a read at a time."""

from __future__ import annotations

import asyncio
from typing import Final, cast

from .http1_errors import ReadError

__all__ = ["Connection"]

# Received bytes not yet taken past which the socket is not read (the client reads slower than
# the upstream sends); reading resumes once they are taken.
_HIGH_WATER: Final = 256 * 1024


class Connection(asyncio.Protocol):
    """An HTTP/1.1 connection to the upstream. `receive` hands over everything received since the
    last call as one bytes object (a network read, or several if the reader was slower), waiting
    only when there is nothing. A future is made only for that wait: no task, no queue, no
    buffer copied per read."""

    __slots__ = (
        "_chunks",
        "_closed",
        "_error",
        "_loop",
        "_paused",
        "_size",
        "_waiter",
        "complete",
        "idle_since",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._closed = False
        self._error: BaseException | None = None
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        #: Whether the current response was read to its end.
        self.complete = False
        #: When the connection went back to the pool (the loop's clock).
        self.idle_since = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._closed = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the client's side --------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Open, and nothing unasked-for arrived on it while it was idle."""
        return not self._closed and not self._chunks and self.transport is not None

    async def receive(self) -> bytes:
        """What arrived since the last call; b"" once the upstream has closed the connection."""
        waiter = self.arrival()
        while waiter is not None:
            await waiter
            waiter = self.arrival()
        return self.take()

    def arrival(self) -> asyncio.Future[None] | None:
        """None once something has arrived (bytes, or the connection's end), else a future done
        when it does; then `take` it. `receive` in two steps, for the readers that wait longest
        (a response's head, a stream's chunks): awaiting the future holds no coroutine frame of
        its own for as long as the upstream is silent."""
        if self._chunks or self._closed:
            return None
        self._waiter = waiter = self._loop.create_future()
        return waiter

    def take(self) -> bytes:
        """What arrived since the last call, once `arrival` said something has; b"" once the
        upstream has closed the connection."""
        chunks = self._chunks
        if not chunks:
            if self._error is not None:
                error = self._error
                raise ReadError(str(error) or type(error).__name__) from error
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def unread(self, data: bytes) -> None:
        """Put back what a reader took beyond its part (it is the next one's)."""
        if data:
            self._chunks.insert(0, data)
            self._size += len(data)

    def leftover(self) -> bool:
        """Bytes arrived after the response: the connection is not in a state to reuse."""
        return bool(self._chunks)

    def close(self) -> None:
        """Close at once (no bytes waiting to go are worth waiting for)."""
        self._closed = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()
