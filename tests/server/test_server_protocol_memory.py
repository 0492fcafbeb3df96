"""What a guarded protocol keeps per held-open stream: shared dict keys and header names, no eager deques."""

from __future__ import annotations

import asyncio
import collections
import sys
from typing import Any

import pytest
from serverkit import PROTOCOLS
from test_server_protocol_guards import _connect, _post, _turns
from uvicorn.protocols.http.flow_control import FlowControl

from chunkline.server import protocol
from chunkline.server.protocol import ConnectionGuards
from chunkline.server.protocol_flow import LazyEvent, LeanFlowControl, RequestQueue

# CPython (3.11 to 3.13) shares an instance dict's keys between the instances of a class up to 29
# keys; past that each instance's dict has its own table: 1584 bytes against 296.
SHARED_KEYS_MAX = 29


async def _held(cls: type[ConnectionGuards]) -> tuple[Any, asyncio.Event]:
    """A protocol whose request has its answer begun and held open, and the event that ends it."""
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await done.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, _ = _connect(cls, app)
    protocol.data_received(_post("/held", b"a body"))
    await _turns()
    assert protocol.cycle.response_started and not protocol.cycle.response_complete
    return protocol, done


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", PROTOCOLS)
async def test_a_held_streams_protocol_keeps_a_shared_key_dict(cls: type[ConnectionGuards]) -> None:
    protocols = [await _held(cls) for _ in range(3)]  # the first instances set the shared keys
    protocol, _ = protocols[-1]
    assert len(vars(protocol)) <= SHARED_KEYS_MAX, sorted(vars(protocol))
    assert sys.getsizeof(vars(protocol)) < 1024
    for _, done in protocols:
        done.set()
    await _turns()
    assert all(p.cycle.response_complete for p, _ in protocols)


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", PROTOCOLS)
async def test_a_held_stream_has_no_eager_event_nor_deque(cls: type[ConnectionGuards]) -> None:
    protocol, done = await _held(cls)
    assert type(protocol.flow) is LeanFlowControl and type(protocol.cycle.message_event) is LazyEvent
    assert protocol.cycle.message_event._waiters is None and protocol.flow._writable._waiters is None
    assert not isinstance(getattr(protocol, "pipeline", None), collections.deque)
    done.set()
    await _turns()
    assert protocol.cycle.response_complete


# -- protocol_flow's stand-ins behave as what they replace ---------------------------------------


async def _event_story(event: Any) -> list[Any]:
    """What waiters on ``event`` see through sets, clears and a cancellation."""
    seen: list[Any] = [event.is_set()]

    async def waiter(name: str) -> None:
        seen.append((name, await event.wait()))

    first, second = asyncio.create_task(waiter("a")), asyncio.create_task(waiter("b"))
    cancelled = asyncio.create_task(waiter("cancelled"))
    await _turns()
    cancelled.cancel()
    await _turns()
    seen.append(("before set", list(seen)))
    event.set()
    event.clear()  # the waiters woken by the set still wake
    await asyncio.gather(first, second)
    seen.append(event.is_set())
    late = asyncio.create_task(waiter("late"))
    await _turns()
    seen.append(("late waits", late.done()))
    event.set()
    await late
    seen.append(("set, then waited", await event.wait(), event.is_set()))
    return seen


@pytest.mark.asyncio
async def test_the_lazy_event_behaves_as_asyncios() -> None:
    lazy = LazyEvent()
    assert await _event_story(lazy) == await _event_story(asyncio.Event())
    assert lazy._waiters is None  # the last waiter dropped the list
    assert LazyEvent(True).is_set() and await LazyEvent(True).wait() is True


@pytest.mark.asyncio
async def test_the_lean_flow_control_has_all_of_uvicorns_methods_of_its_own() -> None:
    methods = {name for name in vars(FlowControl) if not name.startswith("__")}
    assert methods and methods <= set(vars(LeanFlowControl)), methods - set(vars(LeanFlowControl))
    transport = _Paused()
    flow = LeanFlowControl(transport)  # type: ignore[arg-type]
    flow.pause_reading()
    flow.pause_reading()
    flow.resume_reading()
    assert transport.calls == ["pause_reading", "resume_reading"] and not flow.read_paused
    await asyncio.wait_for(flow.drain(), 1)
    flow.pause_writing()
    drained = asyncio.create_task(flow.drain())
    await _turns()
    assert flow.write_paused and not drained.done()
    flow.resume_writing()
    await asyncio.wait_for(drained, 1)
    assert not flow.write_paused


class _Paused:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause_reading")

    def resume_reading(self) -> None:
        self.calls.append("resume_reading")


def test_the_request_queue_is_first_in_first_out_as_the_deque() -> None:
    queue, deque = RequestQueue(), collections.deque[int]()
    for kind in (queue, deque):
        kind.appendleft(1)
        kind.appendleft(2)
        assert len(kind) == 2 and kind
    assert [queue.pop(), queue.pop()] == [deque.pop(), deque.pop()] == [1, 2]
    assert not queue


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", PROTOCOLS)
async def test_requests_share_their_header_names_not_their_values(cls: type[ConnectionGuards]) -> None:
    held = [await _held(cls) for _ in range(2)]
    first, second = (p.cycle.scope["headers"] for p, _ in held)
    assert first == second and all(a[0] is b[0] for a, b in zip(first, second, strict=True))
    assert not set(protocol._NAMES.values()) & {value for _, value in first}
    for _, done in held:
        done.set()
    await _turns()


def test_the_shared_names_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "_NAMES", {})
    monkeypatch.setattr(protocol, "_NAMES_MAX", 2)
    long = "x" * (protocol._NAME_MAX_BYTES + 1)
    protocol._share_names([(n.encode(), b"v") for n in (long, "accept", "user-agent", "x-more")])
    assert list(protocol._NAMES) == [b"accept", b"user-agent"]
    headers = [(n.encode(), b"v") for n in ("user-agent", "x-more")]
    protocol._share_names(headers)
    assert headers == [(b"user-agent", b"v"), (b"x-more", b"v")]
    assert headers[0][0] is protocol._NAMES[b"user-agent"]


@pytest.mark.asyncio
async def test_the_httptools_protocol_keeps_no_parser_between_keep_alive_requests() -> None:
    from chunkline.server.protocol_httptools import GuardedHttpToolsProtocol

    protocol, done = await _held(GuardedHttpToolsProtocol)
    assert protocol.parser is None  # the whole request is in: nothing of it is left to parse
    done.set()
    await _turns()
    protocol.data_received(b"POST /next HTTP/1.1\r\nhost: test\r\ncontent-")  # made again
    assert protocol.parser is not None
    protocol.data_received(b"length: 2\r\n\r\nhi")
    await _turns()
    assert protocol.cycle.scope["path"] == "/next" and protocol.parser is None


@pytest.mark.asyncio
async def test_the_httptools_protocol_keeps_the_parser_of_a_request_that_ends_its_connection() -> None:
    from chunkline.server.protocol_httptools import GuardedHttpToolsProtocol

    protocol, _ = _connect(GuardedHttpToolsProtocol)
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
    assert protocol.parser is not None
    await _turns()


@pytest.mark.asyncio
async def test_the_scope_keeps_its_headers_for_the_whole_response() -> None:
    """Middleware around the app may read them after the response began (a log line at the end),
    and the error handler redacts the client's key with them: they are not let go of early."""
    from chunkline.server.accesslog import RequestObserver

    seen: list[Any] = []
    headers = [(b"authorization", b"Bearer k")]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(scope["headers"])
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    await RequestObserver(app, routes=[], log=False, finished=None)(scope, None, send)  # type: ignore[arg-type]
    assert seen == [headers]
