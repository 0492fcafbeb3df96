"""How a guarded protocol ends an app's request: uvicorn's run_asgi rules, with or without its frame."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from serverkit import PROTOCOLS
from test_server_protocol_guards import _connect, _post, _turns

from chunkline.server.protocol import ConnectionGuards
from chunkline.server.protocol_httptools import GuardedHttpToolsProtocol

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("cls", PROTOCOLS)
START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}


async def _run(cls: type[ConnectionGuards], app: Any) -> tuple[Any, Any]:
    """``app`` served one request as it is (not wrapped in uvicorn's middleware)."""
    protocol, wire = _connect(cls, app)
    protocol.app = app
    protocol.data_received(_post("/app", b"a body"))
    await _turns(10)
    return protocol, wire


async def _fails_at_once(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("broken before any answer")


async def _fails_midway(scope: Any, receive: Any, send: Any) -> None:
    await send(START)
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    raise RuntimeError("broken midway")


async def _says_nothing(scope: Any, receive: Any, send: Any) -> None:
    return None


async def _stops_midway(scope: Any, receive: Any, send: Any) -> None:
    await send(START)
    await send({"type": "http.response.body", "body": b"part", "more_body": True})


async def _returns_a_value(scope: Any, receive: Any, send: Any) -> Any:
    await send(START)
    await send({"type": "http.response.body", "body": b"whole"})
    return "not None"


@BOTH
@pytest.mark.parametrize(
    ("app", "logged"),
    [(_fails_at_once, "Exception in ASGI application"), (_says_nothing, "without starting response")],
)
async def test_no_answer_begun_is_a_500(
    cls: type[ConnectionGuards], app: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        protocol, wire = await _run(cls, app)
    assert wire.output.startswith(b"HTTP/1.1 500 "), wire.output
    # The 500's end reached the protocol, as under run_asgi: one request answered.
    assert protocol.server_state.total_requests == 1
    assert b"\r\n\r\n" in wire.output and b"Internal Server Error" in wire.output.partition(b"\r\n\r\n")[2]
    assert logged in caplog.text


@BOTH
@pytest.mark.parametrize(
    ("app", "logged"),
    [
        (_fails_midway, "Exception in ASGI application"),
        (_stops_midway, "without completing response"),
        (_returns_a_value, "should return None"),
    ],
)
async def test_an_answer_begun_and_not_ended_well_closes_the_connection(
    cls: type[ConnectionGuards], app: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        _, wire = await _run(cls, app)
    assert wire.output.startswith(b"HTTP/1.1 200 ") and wire.closed
    assert b"500" not in wire.output
    assert logged in caplog.text


@BOTH
async def test_a_cancelled_app_is_logged_and_answered_as_uvicorn_does(
    cls: type[ConnectionGuards], caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn cancels the apps still running when its shutdown timeout ends."""
    waiting = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await waiting.wait()

    protocol, wire = await _run(cls, app)
    (task,) = protocol.tasks
    with caplog.at_level(logging.ERROR):
        task.cancel()
        await _turns(10)
    assert wire.output.startswith(b"HTTP/1.1 500 ")
    assert "Exception in ASGI application" in caplog.text
    assert not protocol.tasks


@BOTH
async def test_a_whole_answer_logs_nothing_and_lets_go_of_the_protocol(
    cls: type[ConnectionGuards], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"whole"})

    with caplog.at_level(logging.ERROR):
        protocol, wire = await _run(cls, app)
    assert wire.output.startswith(b"HTTP/1.1 200 ") and b"whole" in wire.output
    assert not wire.closed and not caplog.text
    assert not protocol.tasks
    # The cycle no longer holds the protocol's bound method (run_asgi's `finally` does the same).
    assert getattr(protocol.cycle.on_response, "__self__", None) is not protocol


async def test_the_httptools_protocols_task_runs_the_apps_own_coroutine() -> None:
    """No wrapper coroutine (uvicorn's run_asgi) held for as long as a stream runs."""
    waiting = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(START)
        await waiting.wait()
        await send({"type": "http.response.body", "body": b""})

    protocol, _ = await _run(GuardedHttpToolsProtocol, app)
    (task,) = protocol.tasks
    assert task.get_coro().cr_code is app.__code__
    waiting.set()
    await _turns(10)
    assert not protocol.tasks


async def test_an_app_that_is_not_a_coroutine_function_is_served() -> None:
    """An app whose call hands back an awaitable (as chunkline's own app does) or fails at once."""

    def handing_back(scope: Any, receive: Any, send: Any) -> Any:
        async def answer() -> None:
            await send(START)
            await send({"type": "http.response.body", "body": b"handed back"})

        return asyncio.ensure_future(answer())

    _, wire = await _run(GuardedHttpToolsProtocol, handing_back)
    assert wire.output.startswith(b"HTTP/1.1 200 ") and b"handed back" in wire.output

    def failing(scope: Any, receive: Any, send: Any) -> Any:
        raise RuntimeError("no coroutine at all")

    _, wire = await _run(GuardedHttpToolsProtocol, failing)
    assert wire.output.startswith(b"HTTP/1.1 500 ")
