"""Lean stand-ins for the asyncio.Event, FlowControl and deque uvicorn makes per connection and request."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from uvicorn.protocols.http.flow_control import FlowControl

__all__ = ["LazyEvent", "LeanFlowControl", "RequestQueue"]


class LazyEvent:
    """`asyncio.Event`'s interface (``is_set``, ``set``, ``clear``, ``wait``), whose list of
    waiters is made by the first wait and dropped by the last. asyncio's Event makes a deque for
    them at once, 760 bytes with its first block; uvicorn makes two per stream (a connection's
    "writable", a request's "body arrived"), and neither is waited on while an answer streams."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[Any]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            for waiter in self._waiters or ():
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> Literal[True]:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        waiters = self._waiters
        waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            waiters.remove(waiter)
            if not waiters and self._waiters is waiters:
                self._waiters = None


class LeanFlowControl(FlowControl):
    """uvicorn's `FlowControl` with a `LazyEvent` for "writable". Every method is its own, so
    that none depends on the names of FlowControl's private attributes."""

    def __init__(self, transport: asyncio.Transport) -> None:  # not FlowControl's: an asyncio.Event
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._writable = LazyEvent(True)

    async def drain(self) -> None:
        await self._writable.wait()

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            self._writable.clear()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            self._writable.set()


class RequestQueue(list[Any]):
    """The httptools protocol's queue of pipelined requests, as the deque it replaces is used
    (``appendleft`` in, ``pop`` out, ``len``): an empty list is 56 bytes, an empty deque 760."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)  # at most MAX_QUEUED_REQUESTS items
