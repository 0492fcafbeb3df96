"""uvicorn's httptools protocol with chunkline's connection guards, and the bounds h11 would have set."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Coroutine
from types import MethodType
from typing import TYPE_CHECKING, Any, Final

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .protocol import DISCONNECT_KEY, ConnectionGuards, Disconnect
from .protocol_flow import RequestQueue

if TYPE_CHECKING:
    import uvicorn
    from uvicorn._types import ASGI3Application

__all__ = ["MAX_HEAD_BYTES", "MAX_QUEUED_REQUESTS", "GuardedHttpToolsProtocol"]

logger = logging.getLogger("chunkline.server")

#: The most bytes an unfinished request head may take: h11's limit (which the h11 protocol
#: enforces), as httptools buffers a header line, and uvicorn the target, without any.
MAX_HEAD_BYTES: Final = 16 * 1024
#: The most requests a connection may have waiting behind the one being answered. httptools
#: parses a whole read at once, so one read of tiny pipelined requests would queue thousands of
#: them (a scope, headers and a cycle each), and another read after each answer.
MAX_QUEUED_REQUESTS: Final = 32

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 33\r\n\r\n"
    b"the request's head is too large\r\n"
)


class _Phase(enum.Enum):
    IDLE = enum.auto()  # between requests
    HEAD = enum.auto()  # a request's first byte is in, its headers are not
    BODY = enum.auto()  # its headers are in, its body is not


class _StopParsing(Exception):
    """Raised in a parser callback, once the connection is refused, to stop httptools parsing
    the rest of a read."""


class GuardedHttpToolsProtocol(ConnectionGuards, HttpToolsProtocol):
    """`HttpToolsProtocol` with `ConnectionGuards`, driven by httptools' parser callbacks.

    httptools parses all that a read holds at once, pipelined requests included (uvicorn queues
    them and pauses reading), so the read deadlines follow where the parser is (`_Phase`) and
    which request is being answered. Also two bounds h11 sets and httptools does not: a request
    head of at most `MAX_HEAD_BYTES` (past it, a 431) and at most `MAX_QUEUED_REQUESTS` pipelined
    requests waiting (past it, the connection is aborted).
    """

    # see ConnectionGuards
    __slots__ = ("_head_began", "_head_bytes", "_phase", "_reading_body", "_reusable", "_running")

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.pipeline = RequestQueue()  # type: ignore[assignment]  # a deque's methods, not its 760 bytes
        self._start_guards(config)
        self._phase = _Phase.IDLE
        self._reading_body = False
        self._head_bytes = 0
        self._head_began = False
        self._reusable = False
        # The cycle whose app runs: with requests queued behind it, not self.cycle (the last read).
        self._running: RequestResponseCycle | None = None

    def _unfinished_scopes(self) -> list[Any]:
        return [
            cycle.scope
            for cycle in {self._running, self.cycle}
            if cycle is not None and not cycle.response_complete
        ]

    def _may_answer(self) -> bool:
        # A head being read has no cycle yet; a body's request is self.cycle.
        return self._phase is not _Phase.BODY or self.cycle is None or not self.cycle.response_started

    def connection_lost(self, exc: Exception | None) -> None:
        running = self._running
        if running is not None and running is not self.cycle and not running.response_complete:
            # uvicorn marks only the last request read: the one answered must stop sending too.
            running.disconnected = True
            running.message_event.set()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        if self.config.reset_contextvars:  # uvicorn's own, with the fresh context it asks for
            super()._start_asgi_task(cycle, app)
            return
        # The task runs the app's own coroutine, and what uvicorn's run_asgi does around it is
        # done once the task is done (`_app_done`): run_asgi's coroutine frame, 248 bytes, was
        # held for as long as a stream runs, and each request passed through it.
        try:
            call: Any = app(cycle.scope, cycle.receive, cycle.send)
        except Exception as exc:  # the app failed before its coroutine began
            call = _raised(exc)
        if not asyncio.iscoroutine(call):
            call = _awaited(call)
        task = self.loop.create_task(call)
        task.add_done_callback(MethodType(_app_done, cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    # -- reading the request -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            self.parser = self._new_parser()
        self._head_began = False
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._phase is _Phase.IDLE and self._reusable:
            # Between keep-alive requests the parser holds nothing a new one would not: it and the
            # seven callbacks it binds (900 bytes) are made again when the next request comes,
            # not kept for as long as an answer streams.
            self.parser = None  # type: ignore[assignment]
        if self._phase is _Phase.HEAD and not self._head_began:
            # The whole read went to a head begun in an earlier one (whose own share of that read
            # is not known: so a head is cut off within one read past the limit; one that ends
            # in a later read is measured when it ends, in on_headers_complete).
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
        self._follow_request()

    def on_message_begin(self) -> None:
        self._reusable = False
        if len(self.pipeline) >= MAX_QUEUED_REQUESTS:
            logger.debug("connection aborted: more than %d pipelined requests", MAX_QUEUED_REQUESTS)
            self.transport.abort()
            raise _StopParsing
        super().on_message_begin()
        self.scope[DISCONNECT_KEY] = Disconnect()  # type: ignore[typeddict-unknown-key]
        self._phase = _Phase.HEAD
        self._head_bytes = 0
        self._head_began = True

    def on_headers_complete(self) -> None:
        if not self._head_began and self._head_size() > MAX_HEAD_BYTES:
            # Begun in an earlier read and ended in this one: no read left it unfinished past the
            # limit, but the read that ended it may have brought far more than the limit.
            self._refuse_head()
            raise _StopParsing
        self._phase = _Phase.BODY
        cycle = self.cycle
        super().on_headers_complete()
        if self.cycle is not cycle:  # not for an upgrade
            self._lighten(self.cycle)

    def on_message_complete(self) -> None:
        # A request that ends its connection (or upgrades it) leaves the parser in a state of its own.
        self._reusable = self.parser.should_keep_alive() and not self.parser.should_upgrade()
        super().on_message_complete()
        # The whole request is in: the app has it.
        self._phase = _Phase.IDLE
        self._reading_body = False
        self._cancel_read()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            # A queued request may have been started just now, or a next one begun meanwhile.
            self._follow_request()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # not after a refusal of ours (_StopParsing)
            super().send_400_response(msg)

    def _answered(self) -> bool:
        """Whether every request read so far has had its whole response: a head being read now
        is the client's time, not the app's."""
        return self.cycle is None or self.cycle.response_complete

    def _follow_request(self) -> None:
        if self._phase is _Phase.BODY:
            # A queued request's body waits with reading paused: its deadline starts with its app.
            if not self._reading_body and not self.pipeline:
                self._reading_body = True
                self._arm_read(self._limits.body_timeout)
        elif self._phase is _Phase.HEAD and self._read_timer is None and self._answered():
            self._arm_read(self._limits.header_timeout)  # from the read with the head's first byte

    def _new_parser(self) -> httptools.HttpRequestParser:
        parser = httptools.HttpRequestParser(self)
        parser.set_dangerous_leniencies(lenient_data_after_close=True)  # as uvicorn sets its own
        return parser

    def _head_size(self) -> int:
        """The bytes of the head just parsed: its target, header names and values (not the
        separators around them)."""
        return len(self.url) + sum(len(name) + len(value) for name, value in self.headers)

    def _refuse_head(self) -> None:
        logger.debug("request refused: its head is over %d bytes", MAX_HEAD_BYTES)
        if self._answered():
            self.transport.write(_TOO_LARGE)
            self.transport.close()
        else:
            self.transport.abort()


def _app_done(cycle: RequestResponseCycle, task: asyncio.Task[Any]) -> None:
    """What uvicorn's ``RequestResponseCycle.run_asgi`` does once the app has returned or raised
    (a cancellation too): the same log lines, a 500 if no response had begun, else the connection
    closed; and then the cycle lets go of the protocol."""
    error = asyncio.CancelledError() if task.cancelled() else task.exception()
    result = None if error is not None else task.result()
    if error is not None:
        cycle.logger.error("Exception in ASGI application\n", exc_info=error)
        if not cycle.response_started:
            _spawn(_answer_500(cycle))
            return
        cycle.transport.close()
    elif result is not None:
        cycle.logger.error("ASGI callable should return None, but returned '%s'.", result)
        cycle.transport.close()
    elif not cycle.response_started and not cycle.disconnected:
        cycle.logger.error("ASGI callable returned without starting response.")
        _spawn(_answer_500(cycle))
        return
    elif not cycle.response_complete and not cycle.disconnected:
        cycle.logger.error("ASGI callable returned without completing response.")
        cycle.transport.close()
    cycle.on_response = _nothing


async def _answer_500(cycle: RequestResponseCycle) -> None:
    # As in run_asgi, the 500's end still reaches the protocol (its count of requests answered).
    try:
        await cycle.send_500_response()
    finally:
        cycle.on_response = _nothing


def _nothing() -> None:
    pass


#: The 500 answers being sent, kept until sent: the loop holds only weak references to tasks.
_SENDING: set[asyncio.Task[None]] = set()


def _spawn(sending: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(sending)
    _SENDING.add(task)
    task.add_done_callback(_SENDING.discard)


async def _raised(error: Exception) -> None:
    raise error


async def _awaited(call: Awaitable[Any]) -> Any:
    return await call
