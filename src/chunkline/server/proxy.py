"""One chat completion through the proxy: the upstream request, then the stream or the assembled answer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..errors import StreamError
from .completion import CompletionBuilder
from .errors import REDACTED, APIError, redact, stream_error_status
from .observe import RequestRecord, record_of
from .shutdown import SHUTDOWN_ERROR
from .translate import Translated
from .upstream import UPSTREAM_REQUEST_ID, Upstream, capped, passed_headers

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["ChatExchange", "error_response"]

logger = logging.getLogger("chunkline.server")

# How the serializer stage frames an in-band error event (R41): the one event worth a log line.
_IN_BAND_ERROR = b'data: {"error":'
#: The fault type an answer gets when its client left before it ended.
CLIENT_GONE = "client_disconnected"
_STREAM_HEADERS = {
    "cache-control": "no-cache",
    # nginx (and proxies that follow its convention) would otherwise buffer the stream.
    "x-accel-buffering": "no",
}


def error_response(error: APIError) -> Response:
    """An `APIError` as the response a client gets: its status, an OpenAI error body."""
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )


class ChatExchange(Response):
    """The ASGI response for one chat completion request, already authenticated and translated.

    Everything from the upstream request on runs while a second task waits for the client to
    disconnect; if it does, the work is cancelled and the upstream connection closed at once, so
    the upstream stops generating (and billing) for nobody.
    """

    def __init__(self, state: ServerState, request: Translated, api_key: str, beta: str | None) -> None:
        super().__init__(status_code=200)
        self._state = state
        self._request = request
        self._api_key = api_key
        self._beta = beta
        self._record: RequestRecord

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._record = record_of(scope) or RequestRecord(id="-", started=time.perf_counter())
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope, self._record)
            try:
                await self._exchange(scope, send)
            finally:
                group.cancel_scope.cancel()

    async def _exchange(self, scope: Scope, send: Send) -> None:
        """The upstream request, its body through the pipeline into the answer, and the upstream
        connection let go of: kept for the next request after a whole answer, else closed."""
        record = self._record
        record.stream = self._request.stream
        record.upstream_model = self._request.body.get("model")
        try:
            upstream = self._state.upstream()
            response = await upstream.open_stream(
                self._request.body, self._api_key, self._beta, request_id=record.id
            )
        except APIError as error:
            record.fault = error.type
            record.upstream_request_id = error.headers.get(UPSTREAM_REQUEST_ID)
            if error.status >= 500:
                logger.warning(
                    "upstream request failed: %s %s [request %s]", error.status, error.message, record.id
                )
            await _respond(error_response(error), scope, send)
            return
        record.upstream_request_id = response.headers.get("request-id")
        settings = self._state.settings
        if self._request.stream:
            pipeline, answer = self._state.stream_pipeline(self._request.include_usage), self._stream
        else:
            pipeline, answer = self._state.events_pipeline, self._complete
        raw = response.aiter_bytes()
        complete = False
        try:
            outputs = pipeline.transform(
                capped(raw, settings.stream_timeout), idle_timeout=settings.idle_timeout, observer=record
            )
            async with _closing(outputs):
                complete = await answer(response, outputs, scope, send)
        finally:
            await Upstream.finish(response, raw, drain=complete)

    async def _stream(
        self, response: httpx.Response, outputs: AsyncIterator[Any], scope: Scope, send: Send
    ) -> bool:
        """Sends the converted stream; True once the client has all of it."""
        headers = [
            (k.encode(), v.encode()) for k, v in {**_STREAM_HEADERS, **passed_headers(response)}.items()
        ]
        headers.append((b"content-type", b"text/event-stream; charset=utf-8"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        key = self._api_key.encode()
        record = self._record
        metrics = self._state.metrics
        in_flight = metrics.streams.labels(record.route) if metrics is not None else None
        if in_flight is not None:
            in_flight.inc()
        try:
            with self._state.shutdown.guard() as cut:
                # One body message per event: each is on the wire before the next is converted.
                async for data in outputs:
                    if data.startswith(_IN_BAND_ERROR):
                        data = self._in_band_fault(data, key)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            if cut.cancelled_caught:
                await self._cut_off(send)
        finally:
            if in_flight is not None:
                in_flight.dec()
        # The body ends right after [DONE] (R5): openai 1.x clients read on until it does.
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    def _in_band_fault(self, data: bytes, key: bytes) -> bytes:
        """An error event: the key redacted, its type noted, and a warning for the operator."""
        # An error event is the one place the upstream may quote the key it was sent (the
        # server's own, with CHUNKLINE_API_KEYS set): it never goes back to a client.
        data = data.replace(key, REDACTED.encode())
        self._record.fault = _fault_type(data)
        # The client reads the fault in-band; the operator reads it here.
        logger.warning(
            "stream ended by a fault [request %s]: %s",
            self._record.id,
            data[6:].decode(errors="replace").strip(),
        )
        return data

    async def _cut_off(self, send: Send) -> None:
        """The grace period of a shutdown ran out mid-answer: end it in-band, in the route's own
        error shape (a fresh conversion of the same pipeline, aborted at once)."""
        shutdown = self._state.shutdown
        self._record.fault = SHUTDOWN_ERROR
        logger.warning("stream cut off by the shutdown [request %s]", self._record.id)
        conversion = self._state.stream_pipeline(self._request.include_usage).open()
        for data in conversion.abort(SHUTDOWN_ERROR, shutdown.message):
            await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _complete(
        self, response: httpx.Response, outputs: AsyncIterator[Any], scope: Scope, send: Send
    ) -> bool:
        """Sends the ``chat.completion`` assembled from the typed events, or the fault as an HTTP
        error; True for the answer."""
        builder = CompletionBuilder(self._state.settings.thinking)
        try:
            with self._state.shutdown.guard() as cut:
                async for item in outputs:
                    builder.add(item)
            if cut.cancelled_caught:
                self._record.fault = SHUTDOWN_ERROR
                error = APIError(503, self._state.shutdown.message, type=SHUTDOWN_ERROR, code=SHUTDOWN_ERROR)
                await _respond(error_response(error), scope, send)
                return False
            body = orjson.dumps(builder.result())
        except StreamError as fault:
            # Nothing was sent yet, so the fault becomes an HTTP error, with the same type,
            # code and message a streaming client would have read in-band.
            status = stream_error_status(fault)
            message = redact(fault.message, [self._api_key])
            self._record.fault = fault.type
            logger.warning(
                "upstream stream fault (answered %s) [request %s]: %s: %s",
                status,
                self._record.id,
                fault.type,
                message,
            )
            error = APIError(status, message, type=fault.type, code=fault.code or fault.type)
            await _respond(error_response(error), scope, send)
            return False
        answer = Response(body, headers=passed_headers(response), media_type="application/json")
        await _respond(answer, scope, send)
        return True


def _fault_type(data: bytes) -> str:
    """The ``type`` of an in-band error event (``data: {"error": {...}}``)."""
    try:
        error = orjson.loads(data[5:]).get("error")
        kind = error.get("type") if isinstance(error, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        kind = None
    return kind if isinstance(kind, str) and kind else "error"


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope, record: RequestRecord) -> None:
    # The request body has been read, so the next message the server has for us is the disconnect.
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if record.fault is None and record.finish is None:
                record.fault = CLIENT_GONE
            scope.cancel()
            return


@asynccontextmanager
async def _closing(iterator: AsyncIterator[Any]) -> AsyncIterator[AsyncIterator[Any]]:
    """Closes an async generator on the way out, so its own clean-up (closing the source) runs
    now, also when the consumer is cancelled while the generator waits at a yield."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _respond(response: Response, scope: Scope, send: Send) -> None:
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    # A plain response never reads the request; the disconnect watcher owns receive().
    raise RuntimeError("receive() is not available to this response")
