"""Both guarded protocols (httptools', h11's) driven over a fake transport: deadlines, caps, hooks, writes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from serverkit import PROTOCOLS
from uvicorn.server import ServerState

from chunkline.server.protocol import (
    DISCONNECT_KEY,
    LIMITS_ATTRIBUTE,
    ConnectionGuards,
    ConnectionLimits,
    Disconnect,
)

QUICK = 0.05  # seconds: the deadlines under test


class _Wire:
    """A connection's transport as the protocol sees it: what was written, and how it ended."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = False
        self.reading = True
        self.buffered = 0  # what get_write_buffer_size says

    @property
    def output(self) -> bytes:
        return b"".join(self.sent)

    def write(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers ``path:body`` in four sends (start, two parts, end)."""
    if scope["path"] == "/slow":
        await asyncio.sleep(0.2)
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body, more = body + message.get("body", b""), message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": scope["path"].encode() + b":", "more_body": True})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _connect(
    cls: type[ConnectionGuards], app: Any = _answer, state: ServerState | None = None, **limits: Any
) -> tuple[Any, _Wire]:
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    setattr(config, LIMITS_ATTRIBUTE, ConnectionLimits(**limits))
    protocol = cls(config, state or ServerState(), {}, _loop=asyncio.get_running_loop())  # type: ignore[call-arg]
    wire = _Wire()
    protocol.connection_made(wire)  # type: ignore[arg-type]
    return protocol, wire


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode()


def _post(path: str, body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return f"POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {size}\r\n\r\n".encode() + body


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _answers(wire: _Wire) -> list[bytes]:
    """The bodies of the chunked 200s written, in order (each ``path:body``)."""
    out = []
    for response in wire.output.split(b"HTTP/1.1 ")[1:]:
        assert response.startswith(b"200 "), response
        _, _, body = response.partition(b"\r\n\r\n")
        parts = body.split(b"\r\n")
        out.append(b"".join(parts[1::2][:-1]))  # the chunks' data, not their sizes nor the end
    return out


pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("cls", PROTOCOLS)


@BOTH
async def test_a_response_written_in_one_turn_is_one_send(cls: type[ConnectionGuards]) -> None:
    protocol, wire = _connect(cls)
    protocol.data_received(_get("/one"))
    await _turns()
    assert len(wire.sent) == 1, wire.sent
    assert wire.sent[0].startswith(b"HTTP/1.1 200 ") and wire.sent[0].endswith(b"\r\n0\r\n\r\n")
    assert _answers(wire) == [b"/one:"]


@BOTH
async def test_pipelined_requests_are_answered_in_order(cls: type[ConnectionGuards]) -> None:
    protocol, wire = _connect(cls)
    protocol.data_received(_get("/slow") + _post("/b", b"body of b") + _get("/c"))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(_answers(wire)) == 3:
            break
    assert _answers(wire) == [b"/slow:", b"/b:body of b", b"/c:"]
    assert not wire.is_closing()


@BOTH
async def test_an_idle_new_connection_gets_a_408(cls: type[ConnectionGuards]) -> None:
    _, wire = _connect(cls, header_timeout=QUICK)
    await asyncio.sleep(QUICK * 3)
    assert wire.output.startswith(b"HTTP/1.1 408 ") and wire.closed


@BOTH
async def test_a_slow_head_gets_a_408(cls: type[ConnectionGuards]) -> None:
    protocol, wire = _connect(cls, header_timeout=QUICK * 4)
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: ")
    await asyncio.sleep(QUICK * 2)
    protocol.data_received(b"test\r\nx-more: ")  # bytes keep coming, the head does not end
    assert not wire.is_closing()
    await asyncio.sleep(QUICK * 4)
    assert wire.output.startswith(b"HTTP/1.1 408 ") and wire.closed


@BOTH
async def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(
    cls: type[ConnectionGuards],
) -> None:
    protocol, wire = _connect(cls, header_timeout=QUICK * 2)
    protocol.data_received(_get("/first"))
    await _turns()
    await asyncio.sleep(QUICK * 4)  # idle between requests: uvicorn's keep-alive timeout's time
    assert _answers(wire) == [b"/first:"] and not wire.is_closing()
    protocol.data_received(b"GET /second HTTP/1.1\r\n")
    await asyncio.sleep(QUICK * 4)
    assert wire.sent[-1].startswith(b"HTTP/1.1 408 ") and wire.closed


@BOTH
async def test_a_slow_body_gets_a_408(cls: type[ConnectionGuards]) -> None:
    protocol, wire = _connect(cls, body_timeout=QUICK * 4)
    protocol.data_received(_post("/", b"abc", length=10))
    await asyncio.sleep(QUICK)
    assert not wire.is_closing()
    await asyncio.sleep(QUICK * 5)
    assert wire.output.startswith(b"HTTP/1.1 408 ") and wire.closed


@BOTH
async def test_a_request_sent_in_time_is_answered_and_left_open(cls: type[ConnectionGuards]) -> None:
    protocol, wire = _connect(cls, header_timeout=QUICK * 3, body_timeout=QUICK * 3)
    request = _post("/", b"0123456789")
    for k in range(0, len(request), 20):
        protocol.data_received(request[k : k + 20])
        await asyncio.sleep(QUICK / 5)
    await asyncio.sleep(QUICK * 6)  # past both deadlines: neither is still armed
    assert _answers(wire) == [b"/:0123456789"] and not wire.is_closing()


@BOTH
async def test_a_pipelined_body_is_timed_from_its_turn_not_while_it_waits(
    cls: type[ConnectionGuards],
) -> None:
    """The rest of a queued request's body is not even read while the one before it is answered
    (reading is paused): its deadline counts from its turn."""
    protocol, wire = _connect(cls, body_timeout=QUICK)
    protocol.data_received(_get("/slow") + _post("/b", b"01234", length=10))
    await asyncio.sleep(QUICK * 2)  # past the body deadline, with /slow still being answered
    assert not wire.is_closing() and not wire.reading
    while not wire.reading:
        await asyncio.sleep(0.002)
    protocol.data_received(b"56789")
    await asyncio.sleep(QUICK * 3)
    assert _answers(wire) == [b"/slow:", b"/b:0123456789"] and not wire.is_closing()

    protocol.data_received(_get("/slow") + _post("/c", b"0", length=2))
    while not wire.reading:
        await asyncio.sleep(0.002)
    await asyncio.sleep(QUICK * 3)  # and the rest never comes
    assert wire.sent[-1].startswith(b"HTTP/1.1 408 ") and wire.closed


@BOTH
async def test_more_connections_than_the_cap_get_a_503(cls: type[ConnectionGuards]) -> None:
    state = ServerState()
    state.connections.update([object(), object()])  # type: ignore[list-item]
    _, wire = _connect(cls, state=state, max_connections=3)
    assert not wire.is_closing()
    _, refused = _connect(cls, state=state, max_connections=3)
    assert refused.sent and refused.sent[0].startswith(b"HTTP/1.1 503 ") and refused.closed


@BOTH
async def test_a_client_that_takes_nothing_is_aborted_at_the_write_timeout(
    cls: type[ConnectionGuards],
) -> None:
    timeout = QUICK * 4
    protocol, wire = _connect(cls, write_timeout=timeout)
    wire.buffered = 1000
    protocol.pause_writing()
    await asyncio.sleep(timeout / 2)
    wire.buffered = 600  # it took some: the timeout starts again
    await asyncio.sleep(timeout)
    assert not wire.aborted
    await asyncio.sleep(timeout)
    assert wire.aborted

    protocol, wire = _connect(cls, write_timeout=QUICK)
    wire.buffered = 1000
    protocol.pause_writing()
    protocol.resume_writing()
    await asyncio.sleep(QUICK * 2)
    assert not wire.aborted


@BOTH
async def test_a_lost_connection_fires_the_hook_of_the_request_being_answered(
    cls: type[ConnectionGuards],
) -> None:
    """With a pipelined request read behind it, too: the one answered is the one told."""
    events: list[str] = []

    async def held(scope: Any, receive: Any, send: Any) -> None:
        hook = scope[DISCONNECT_KEY]
        assert isinstance(hook, Disconnect) and not hook.gone
        hook.callback = lambda: events.append(f"hook {scope['path']}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        events.append(f"receive {scope['path']}")

    protocol, _ = _connect(cls, app=held)
    protocol.data_received(_get("/answered") + _get("/queued"))
    await _turns()
    assert events == []
    protocol.connection_lost(None)
    await _turns()
    assert events == ["hook /answered", "receive /answered"]


@BOTH
async def test_an_endless_head_is_refused(cls: type[ConnectionGuards]) -> None:
    protocol, wire = _connect(cls)
    protocol.data_received(b"GET / HTTP/1.1\r\nx-big: ")
    for _ in range(16):
        if wire.is_closing():
            break
        protocol.data_received(b"a" * 4096)
    await _turns()
    assert wire.output[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 400") and wire.is_closing()


@BOTH
async def test_a_large_head_that_ends_in_its_second_read_is_refused(cls: type[ConnectionGuards]) -> None:
    """asyncio reads up to 256 KiB at once: a 300 KB head can come in two reads, the second one
    ending it (so no read leaves it unfinished past the limit). One within the limit is answered."""
    for size, answered in ((300_000, False), (8_000, True)):
        head = _get("/big")[:-2] + b"x-big: " + b"a" * size + b"\r\n\r\n"
        protocol, wire = _connect(cls)
        cut = min(262_144, size // 2)
        protocol.data_received(head[:cut])
        if not wire.is_closing():
            protocol.data_received(head[cut:])
        await _turns()
        if answered:
            assert _answers(wire) == [b"/big:"] and not wire.is_closing()
        else:
            assert wire.output[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 400") and wire.is_closing()


async def test_httptools_queues_a_bounded_number_of_pipelined_requests() -> None:
    """httptools parses a whole read at once: a read of tiny pipelined requests behind a slow one
    would queue them all (and as many more after each answer); past the bound, the connection
    is aborted. (h11 parses one request at a time: it has no queue.)"""
    from chunkline.server.protocol_httptools import MAX_QUEUED_REQUESTS, GuardedHttpToolsProtocol

    protocol, wire = _connect(GuardedHttpToolsProtocol)
    protocol.data_received(_get("/slow") + _get("/q") * MAX_QUEUED_REQUESTS)
    assert len(protocol.pipeline) == MAX_QUEUED_REQUESTS and not wire.is_closing()
    protocol, wire = _connect(GuardedHttpToolsProtocol)
    protocol.data_received(_get("/slow") + _get("/q") * 5000)
    assert wire.aborted and len(protocol.pipeline) == MAX_QUEUED_REQUESTS
    assert wire.sent == []  # no 400 after the abort
