"""A fake Anthropic Messages API: a real HTTP/1.1 server on 127.0.0.1 that replays the recordings.

It runs its own asyncio loop in a background thread, speaks HTTP/1.1 through h11 (keep-alive,
chunked bodies), records every request it receives, and notices a client that goes away. What it
answers is chosen by the request's ``model``, which chunkline passes through unchanged:

=========================  ==================================================================
``<recording>``            a file of tests/fixtures/anthropic (stem), as the API sent it
``<recording>@N``          the same in N-byte writes
``<recording>~MS``         the same with MS milliseconds between events (a model's pace)
``echo``                   a text answer made of the last user message's words, with usage
``echo-slow``              the same with 2 ms between events (streams interleave)
``status:CODE[:FORM]``     that status with Anthropic's error JSON; FORM ``html``: an HTML page
                           instead, ``quote-key``: the message quotes the x-api-key
``error-mid:<rec>:K``      K events of the recording, then an ``overloaded_error`` event
                           (``error-mid:<rec>:K:quote-key``: its message quotes the x-api-key)
``drop:<rec>:B``           B bytes of the recording, then the connection is dropped
``cut:<rec>:B``            B bytes of the recording, then the body ends cleanly (truncated)
``stall:K``                K events of an echo answer, then silence until the client leaves
``stall-headers``          no response at all until the client leaves
``pings``                  ``message_start`` then a ping every 20 ms, forever
``linger:<rec>``           the whole recording, then the body stays open until the client leaves
``json-200``               200 with a JSON message, as an upstream that ignores ``stream`` would
                           (``json-200:quote-key``: the JSON quotes the x-api-key across its 300th
                           character, where an error message quoting the body cuts it)
``replay-b64[:N]``         the last user message, base64-decoded, as the body (in N-byte writes)
``script:NAME``            whatever the coroutine ``fake.scripts[NAME](request, out)`` does
                           (a test's own misbehaving upstream)
``agent:NAME:COMMAND``     a scripted agent: signed thinking and a call of tool NAME with
                           ``{"cmd": COMMAND}``; once a tool result is back, text quoting it
=========================  ==================================================================

A request whose ``x-api-key`` is ``bad-key`` gets a 401, as Anthropic answers an unknown key.
``GET /v1/models`` returns a fixed model list.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
from fake_bodies import (
    ERROR_TYPES,
    MODELS,
    agent_events,
    echo_events,
    last_user_text,
    recording_events,
    sse_event,
)


@dataclass
class Received:
    """One request as the fake upstream saw it, and how its response ended."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    #: Which connection it came on (numbered from 1 in the order they were accepted).
    connection: int = 0
    #: "open" while answering; then "complete" (the whole body sent) or "cancelled" (the client
    #: closed the connection first).
    outcome: str = "open"
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    ended: threading.Event = field(default_factory=threading.Event)

    def end(self, outcome: str) -> None:
        if self.outcome == "open":
            self.outcome = outcome
            self.ended_at = time.monotonic()
            self.ended.set()

    def wait_ended(self, timeout: float) -> bool:
        return self.ended.wait(timeout)


class _Gone(Exception):
    """The client closed the connection."""


class _Exchange:
    """Writing one response on a connection, noticing when the client has gone."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter, gone: asyncio.Event) -> None:
        self.conn = conn
        self.writer = writer
        self.gone = gone

    async def write(self, event: Any) -> None:
        if self.gone.is_set():
            raise _Gone
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            try:
                await self.writer.drain()
            except (ConnectionError, RuntimeError):
                raise _Gone from None

    async def start(
        self, status: int, content_type: str, extra: dict[str, str | bytes] | None = None
    ) -> None:
        extra = extra or {}
        request_id = [] if "request-id" in extra else [("request-id", "req_fake_1")]
        headers = [("content-type", content_type), *request_id, *extra.items()]
        await self.write(h11.Response(status_code=status, headers=headers))

    async def data(self, data: bytes) -> None:
        await self.write(h11.Data(data=data))

    async def end(self) -> None:
        await self.write(h11.EndOfMessage())

    async def wait_gone(self) -> None:
        await self.gone.wait()
        raise _Gone


class FakeAnthropic:
    """The fake upstream. ``start()`` it, send requests to :attr:`url`, ``stop()`` it."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        #: Scenarios tests add for ``script:NAME`` models: ``async (request, out) -> None``.
        self.scripts: dict[str, Callable[[Received, _Exchange], Any]] = {}
        self.connections = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAnthropic:
        self._thread = threading.Thread(target=self._run, name="fake-anthropic", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=4096)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def find(self, marker: str) -> Received:
        """The one request whose JSON body contains ``marker``."""
        found = [r for r in list(self.requests) if marker in json.dumps(r.body)]
        assert len(found) == 1, f"{len(found)} requests contain {marker!r}"
        return found[0]

    # -- one connection ---------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        self.connections += 1
        number = self.connections
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    return
                request.connection = number
                gone = asyncio.Event()
                watcher = asyncio.create_task(self._watch(conn, reader, gone))
                try:
                    await self._answer(request, _Exchange(conn, writer, gone))
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
                if gone.is_set() or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        except asyncio.CancelledError:
            return  # the fake is shutting down
        finally:
            writer.transport.abort()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Received | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                headers = {k.decode().lower(): v.decode() for k, v in request.headers}
                parsed = json.loads(body) if body else None
                received = Received(request.method.decode(), request.target.decode(), headers, parsed)
                self.requests.append(received)
                return received

    async def _watch(self, conn: h11.Connection, reader: asyncio.StreamReader, gone: asyncio.Event) -> None:
        # While answering, the client sends nothing (HTTP/1.1 without pipelining) unless it is the
        # next request after the whole answer; an end of stream means it closed the connection.
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                gone.set()
                return
            conn.receive_data(data)

    # -- answers ----------------------------------------------------------------------------------

    async def _answer(self, request: Received, out: _Exchange) -> None:
        try:
            await self._respond(request, out)
            request.end("complete")
        except _Gone:
            request.end("cancelled")

    async def _respond(self, request: Received, out: _Exchange) -> None:
        if request.method == "GET" and request.path.startswith("/v1/models"):
            await self._json(out, 200, {"data": MODELS, "has_more": False})
            return
        if request.method != "POST" or request.path != "/v1/messages":
            await self._error(out, 404, f"no route {request.method} {request.path}")
            return
        if request.headers.get("x-api-key") == "bad-key":
            await self._error(out, 401, "invalid x-api-key")
            return
        model = str(request.body.get("model", ""))
        name, _, arg = model.partition(":")
        scenarios: dict[str, Callable[[Received, _Exchange, str], Any]] = {
            "echo": self._echo,
            "echo-slow": self._echo,
            "status": self._status,
            "error-mid": self._error_mid,
            "drop": self._drop,
            "cut": self._cut,
            "stall": self._stall,
            "stall-headers": self._stall_headers,
            "pings": self._pings,
            "linger": self._linger,
            "replay-b64": self._replay_b64,
            "json-200": self._json_200,
            "script": lambda request, out, arg: self.scripts[arg](request, out),
            "agent": self._agent,
        }
        scenario = scenarios.get(name)
        if scenario is not None:
            await scenario(request, out, arg)
            return
        model, _, pause = model.partition("~")
        stem, _, size = model.partition("@")
        events = recording_events(stem)
        await self._stream(out, events, piece=int(size) if size else None, pause=float(pause or 0) / 1000)

    async def _json(self, out: _Exchange, status: int, body: Any) -> None:
        await out.start(status, "application/json")
        await out.data(json.dumps(body).encode())
        await out.end()

    async def _error(
        self, out: _Exchange, status: int, message: str, extra: dict[str, str] | None = None
    ) -> None:
        kind = ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake_1"}
        await out.start(status, "application/json", extra)
        await out.data(json.dumps(body).encode())
        await out.end()

    async def _stream(
        self, out: _Exchange, events: Sequence[bytes], *, piece: int | None = None, pause: float = 0
    ) -> None:
        await out.start(200, "text/event-stream")
        for event in events:
            if piece is None:
                await out.data(event)
            else:
                for at in range(0, len(event), piece):
                    await out.data(event[at : at + piece])
            if pause:
                await asyncio.sleep(pause)
        await out.end()

    async def _agent(self, request: Received, out: _Exchange, arg: str) -> None:
        await self._stream(out, agent_events(request.body, arg))

    async def _echo(self, request: Received, out: _Exchange, arg: str) -> None:
        slow = request.body["model"] == "echo-slow"
        await self._stream(out, echo_events(last_user_text(request.body)), pause=0.002 if slow else 0)

    async def _status(self, request: Received, out: _Exchange, arg: str) -> None:
        code, _, form = arg.partition(":")
        status = int(code)
        if form == "html":
            await out.start(status, "text/html")
            await out.data(b"<html><body><h1>502 Bad Gateway</h1></body></html>")
            await out.end()
            return
        retry = {"retry-after": "7"} if status in (429, 529) else None
        message = f"fake upstream says {status}"
        if form == "quote-key":  # an upstream careless enough to quote the key it was sent
            message += f" for key {request.headers.get('x-api-key')}"
        await self._error(out, status, message, retry)

    async def _error_mid(self, request: Received, out: _Exchange, arg: str) -> None:
        stem, _, rest = arg.partition(":")
        count, _, form = rest.partition(":")
        message = "Overloaded"
        if form == "quote-key":
            message += f" (key {request.headers.get('x-api-key')})"
        error = {"type": "error", "error": {"type": "overloaded_error", "message": message}}
        await self._stream(out, [*recording_events(stem)[: int(count)], sse_event(error)])

    async def _drop(self, request: Received, out: _Exchange, arg: str) -> None:
        stem, _, size = arg.partition(":")
        await out.start(200, "text/event-stream")
        await out.data(b"".join(recording_events(stem))[: int(size)])
        await asyncio.sleep(0.01)
        out.writer.transport.abort()  # no end of the chunked body: the connection just goes
        request.end("dropped")
        raise _Gone

    async def _cut(self, request: Received, out: _Exchange, arg: str) -> None:
        stem, _, size = arg.partition(":")
        await self._stream(out, [b"".join(recording_events(stem))[: int(size)]])

    async def _stall(self, request: Received, out: _Exchange, arg: str) -> None:
        events = echo_events(last_user_text(request.body))
        await out.start(200, "text/event-stream")
        for event in events[: int(arg or 3)]:
            await out.data(event)
        await out.wait_gone()

    async def _stall_headers(self, request: Received, out: _Exchange, arg: str) -> None:
        await out.wait_gone()

    async def _replay_b64(self, request: Received, out: _Exchange, arg: str) -> None:
        body = base64.b64decode(last_user_text(request.body))
        piece = int(arg) if arg else None
        await self._stream(out, [body], piece=piece)

    async def _linger(self, request: Received, out: _Exchange, arg: str) -> None:
        await out.start(200, "text/event-stream")
        for event in recording_events(arg):
            await out.data(event)
        await out.wait_gone()  # the answer is complete, but the body never ends

    async def _json_200(self, request: Received, out: _Exchange, arg: str) -> None:
        message: dict[str, Any] = {"id": "msg_json", "type": "message", "role": "assistant", "content": []}
        if arg == "quote-key":
            key = str(request.headers.get("x-api-key"))
            start = len(json.dumps({**message, "note": ""})) - 2  # where the note's text begins
            message["note"] = "x" * (300 - len(key) // 2 - start) + key
        await self._json(out, 200, message)

    async def _pings(self, request: Received, out: _Exchange, arg: str) -> None:
        await out.start(200, "text/event-stream")
        await out.data(echo_events("x")[0])
        while True:
            await out.data(sse_event({"type": "ping"}))
            await asyncio.sleep(0.02)


def main(kind: type[FakeAnthropic] = FakeAnthropic) -> None:
    """Run a fake upstream (``kind``) on its own, as the server benchmark does: prints its port,
    then serves until interrupted or terminated."""
    fake = kind().start()
    print(fake.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
