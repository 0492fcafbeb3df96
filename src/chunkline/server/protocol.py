"""uvicorn's HTTP/1.1 protocols, with the limits they lack: read deadlines, write timeout, connection cap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import h11
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol

from .protocol_flow import LazyEvent, LeanFlowControl

if TYPE_CHECKING:
    import uvicorn

    from .settings import Settings

__all__ = [
    "DISCONNECT_KEY",
    "ConnectionGuards",
    "ConnectionLimits",
    "Disconnect",
    "GuardedH11Protocol",
    "guard",
    "protocol_class",
]

logger = logging.getLogger("chunkline.server")

#: Where the guarded protocols put a request's `Disconnect` in its ASGI scope.
DISCONNECT_KEY: Final = "chunkline.disconnect"
#: Where `guard` leaves the limits on a uvicorn config (which worker processes receive pickled).
LIMITS_ATTRIBUTE: Final = "chunkline_limits"

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 61\r\n\r\n"
    b"too many connections are open (CHUNKLINE_MAX_CONNECTIONS)\r\n\r\n"
)
_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 73\r\n\r\n"
    b"the request was not sent in time (CHUNKLINE_HEADER_TIMEOUT, _BODY_TIMEOUT)\r\n"
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What a connection is allowed: see the settings of the same names."""

    header_timeout: float = 10.0
    body_timeout: float = 15.0
    write_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.header_timeout, settings.body_timeout, settings.write_timeout, settings.max_connections
        )


def protocol_class() -> type[ConnectionGuards]:
    """The guarded protocol `guard` serves with: on httptools' parser when httptools is installed
    (the ``server`` extra has it: it costs the server less CPU per request), else on h11."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return GuardedH11Protocol
    from .protocol_httptools import GuardedHttpToolsProtocol

    return GuardedHttpToolsProtocol


def guard(
    config: uvicorn.Config, settings: Settings, protocol: type[ConnectionGuards] | None = None
) -> uvicorn.Config:
    """Make ``config`` serve with ``protocol`` (`protocol_class()` by default) and the limits of
    ``settings``."""
    config.http = protocol or protocol_class()
    # The app reads neither the client's address nor the scheme, which uvicorn's middleware for
    # X-Forwarded-For and -Proto rewrites: it would cost each request a scan of its headers and
    # a coroutine frame held for as long as a stream runs, for nothing.
    config.proxy_headers = False
    setattr(config, LIMITS_ATTRIBUTE, ConnectionLimits.from_settings(settings))
    return config


class ConnectionGuards(asyncio.Protocol):
    """The limits a server facing the internet needs, for a uvicorn HTTP/1.1 protocol (neither
    uvicorn's protocols nor their parsers have them), each enforced per connection by one timer:

    - more than ``max_connections`` open: a new one gets a 503 and is closed at once;
    - a request's headers must arrive within ``header_timeout`` of its first byte (of the
      connection, for the first request: an idle new connection is cut off too), and its body
      within ``body_timeout`` of the headers; else a 408 (or, once the app has answered, a close);
    - a client that accepts none of the response bytes waiting for it for ``write_timeout``
      seconds is cut off (the transport aborted, so its file descriptor is freed at once, and the
      app sees a disconnect and cancels the upstream request).

    Also: each request's `Disconnect` is fired when the connection is lost before its response is
    complete, the writes of one loop turn leave as one send (`_OneWritePerTurn`), and uvicorn's
    per-connection and per-request asyncio.Events are lazier ones (`protocol_flow`). Mixed in
    before the uvicorn protocol (``class P(ConnectionGuards, H11Protocol)``); the subclass calls
    `_start_guards` from ``__init__`` and `_lighten` with each new request's cycle, arms and
    cancels the read timer as its parser goes, and says which requests are unfinished and
    whether a 408 may still be written.
    """

    # The guards' state is in slots, not the instance dict: uvicorn's protocols set 25 to 28
    # attributes, and CPython shares an instance dict's keys between instances up to 29 keys only:
    # past them each connection's dict takes 1.5 KiB instead of 0.3.
    __slots__ = ("_limits", "_read_timer", "_write_timer", "_write_waiting")

    # uvicorn's protocols have these.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    flow: FlowControl
    connections: set[Any]

    def _start_guards(self, config: uvicorn.Config) -> None:
        self._limits: ConnectionLimits = getattr(config, LIMITS_ATTRIBUTE, None) or ConnectionLimits()
        self._read_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._write_waiting = 0

    def _unfinished_scopes(self) -> list[Any]:
        """The ASGI scopes of the requests whose response is not complete."""
        raise NotImplementedError

    def _may_answer(self) -> bool:
        """Whether no response has begun for the request being read (so a 408 can be written)."""
        raise NotImplementedError

    @staticmethod
    def _lighten(cycle: Any) -> None:
        """What a new request keeps, made smaller before its app runs: a `LazyEvent` for uvicorn's
        asyncio.Event (nothing waits on the one replaced yet; its state is carried over), and
        header names shared with earlier requests' (`_share_names`)."""
        cycle.message_event = LazyEvent(cycle.message_event.is_set())
        _share_names(cycle.scope["headers"])

    # -- connections -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWritePerTurn(transport, self.loop))  # type: ignore[arg-type]
        # uvicorn's FlowControl holds an asyncio.Event; no request has been read, so nothing has it yet.
        self.flow = LeanFlowControl(self.transport)  # type: ignore[misc]  # in the instance dict, not a slot
        if len(self.connections) > self._limits.max_connections:
            logger.debug(
                "connection refused: CHUNKLINE_MAX_CONNECTIONS (%d) reached", self._limits.max_connections
            )
            transport.write(_BUSY)
            transport.close()
            return
        self._arm_read(self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        for scope in self._unfinished_scopes():
            hook = scope.get(DISCONNECT_KEY)
            if isinstance(hook, Disconnect):
                hook.fire()
        self._cancel_read()
        self._cancel_write()
        super().connection_lost(exc)

    # -- reading the request -----------------------------------------------------------------------

    def _arm_read(self, seconds: float) -> None:
        self._cancel_read()
        if not self.transport.is_closing():
            self._read_timer = self.loop.call_later(seconds, self._read_timed_out)

    def _cancel_read(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self._may_answer():
            self.transport.write(_SLOW)
            self.transport.close()
        else:
            self.transport.abort()

    # -- writing the response ----------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm_write()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_write()

    def _arm_write(self) -> None:
        self._cancel_write()
        self._write_waiting = self.transport.get_write_buffer_size()
        self._write_timer = self.loop.call_later(self._limits.write_timeout, self._write_check)

    def _cancel_write(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_check(self) -> None:
        self._write_timer = None
        waiting = self.transport.get_write_buffer_size()
        if waiting and waiting >= self._write_waiting:
            # No byte was taken in write_timeout seconds. abort(), not close(): close() would
            # wait for the client to read the buffer, holding the connection for ever.
            logger.warning(
                "a client read nothing for %g seconds (CHUNKLINE_WRITE_TIMEOUT); its connection was closed",
                self._limits.write_timeout,
            )
            self.transport.abort()
        elif waiting:
            self._arm_write()


class GuardedH11Protocol(ConnectionGuards, H11Protocol):
    """`H11Protocol` with `ConnectionGuards`: h11's connection states drive the read deadlines."""

    __slots__ = ("_reading_body",)  # see ConnectionGuards

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._start_guards(config)
        self._reading_body = False

    def _unfinished_scopes(self) -> list[Any]:
        if self.cycle is not None and not self.cycle.response_complete:
            return [self.cycle.scope]
        return []

    def _may_answer(self) -> bool:
        # Past IDLE, the request being read is self.cycle's; before, it has no cycle yet.
        return self.conn.their_state is h11.IDLE or self.cycle is None or not self.cycle.response_started

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not None and self.cycle is not cycle:
            # A new request: its app task is created but has not run yet.
            self.cycle.scope[DISCONNECT_KEY] = Disconnect()  # type: ignore[typeddict-unknown-key]
            self._lighten(self.cycle)

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_read(self._limits.header_timeout)  # the first byte of the next request
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may have been read from the buffer just now.
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            self._arm_read(self._limits.header_timeout)
        self._follow_request()

    def _follow_request(self) -> None:
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if not self._reading_body:
                self._reading_body = True
                self._arm_read(self._limits.body_timeout)
        elif state is not h11.IDLE:
            # The whole request is in (or the connection is closing): the app has it.
            self._reading_body = False
            self._cancel_read()


# Header names seen, each kept once: uvicorn keeps a lowercased copy of every name of every request
# (40-60 bytes each), and clients send the same few names each time. Bounded, as clients choose them.
_NAMES: dict[bytes, bytes] = {}
_NAMES_MAX = 512
_NAME_MAX_BYTES = 64


def _share_names(headers: list[tuple[bytes, bytes]]) -> None:
    """Swap, in place, each header name for the equal one seen first (values are left alone:
    they may be keys, and are not to outlive their request)."""
    names = _NAMES
    for i, (name, value) in enumerate(headers):
        shared = names.get(name)
        if shared is None:
            if len(names) < _NAMES_MAX and len(name) <= _NAME_MAX_BYTES:
                names[name] = name
        elif shared is not name:
            headers[i] = (shared, value)


class Disconnect:
    """Tells a request's app that its client has gone, from the protocol itself: no task of the
    request has to wait on ``receive()`` for the ``http.disconnect`` (a task, a task group and a
    cancel scope per streamed answer). ``callback`` is called once, when the connection is lost
    before the response is complete; ``gone`` says whether it has been."""

    __slots__ = ("callback", "gone")

    def __init__(self) -> None:
        self.callback: Callable[[], None] | None = None
        self.gone = False

    def fire(self) -> None:
        self.gone = True
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()


class _OneWritePerTurn:
    """A connection's transport whose writes of one event-loop turn leave as one send, at the
    end of that turn. uvicorn writes a streamed response's head, each body message and the
    body's end each on its own, a send system call each: about a third of the server's CPU for
    a short answer in `make bench-server`. Nothing waits for a later read or a timer; everything
    but writing (and closing, which sends what is held first) is the transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
