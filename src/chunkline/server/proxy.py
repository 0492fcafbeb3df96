"""One chat completion through the proxy: the upstream request, then the stream or the assembled answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ..errors import StreamError
from . import http1
from .cancel import TaskScope
from .completion import CompletionBuilder
from .errors import APIError, stream_error_status
from .observe import RequestRecord, record_of
from .protocol import DISCONNECT_KEY, Disconnect
from .relay import CHAT_FAULT, Pings, relay
from .scrub import SECRETS_OPTION, UPSTREAM_REQUEST_ID, passed_headers, redact_value
from .shutdown import SHUTDOWN_ERROR
from .translate import Translated
from .upstream import StreamTimeLimit, Upstream, capped, counted, too_long

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from ..conversion import Conversion
    from ..pipeline import Pipeline
    from .app import ServerState

__all__ = ["ChatExchange", "error_response"]

logger = logging.getLogger("chunkline.server")

#: The fault type an answer gets when its client left before it ended.
CLIENT_GONE = "client_disconnected"
# A stream still running this long after CHUNKLINE_STREAM_TIMEOUT is cut off whatever it waits for
# (a client that reads nothing, an upstream that is quiet but within the idle timeout). Until then
# the limit is met at the upstream's next chunk, with an in-band error the client can read.
_HARD_LIMIT_GRACE = 1.0
_STREAM_HEADERS = (
    (b"cache-control", b"no-cache"),
    # nginx (and proxies that follow its convention) would otherwise buffer the stream.
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
)


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
        self._started = False
        #: The upstream response headers the client gets too (see scrub.passed_headers).
        self._passed: dict[str, str] = {}
        self._cancel: TaskScope
        #: The in-flight gauge of a stream being sent (`_relayed`), let go of by `_finish`.
        self._in_flight: Gauge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._record = record = record_of(scope) or RequestRecord(id="-", started=time.perf_counter())
        hook = scope.get(DISCONNECT_KEY)
        # One cancel scope for the whole exchange, held for as long as it streams: the client
        # leaving cancels it, and so does the hard time limit (its deadline, which `_exchange`
        # sets once the upstream has answered).
        with TaskScope() as cancel:
            self._cancel = cancel
            if isinstance(hook, Disconnect):
                # The server's protocol tells of the disconnect itself (see protocol.py).
                hook.callback = self._client_gone
                if hook.gone:
                    hook.fire()
                try:
                    await self._exchange(scope, send)
                finally:
                    hook.callback = None
            else:
                async with anyio.create_task_group() as group:
                    group.start_soon(_cancel_on_disconnect, receive, cancel, record)
                    try:
                        await self._exchange(scope, send)
                    finally:
                        group.cancel_scope.cancel()
        if cancel.cancelled_caught and asyncio.get_running_loop().time() >= cancel.deadline:
            await self._cut_off(scope, send)

    async def _exchange(self, scope: Scope, send: Send) -> None:
        """The upstream request, its body through the pipeline into the answer, and the upstream
        connection let go of: kept for the next request after a whole answer, else closed."""
        record = self._record
        record.stream = self._request.stream
        response = await self._open_upstream(self._take_body(), self._beta, scope, send)
        if response is None:
            return
        self._passed = passed_headers(response.take_headers(), [self._api_key])
        record.upstream_request_id = self._passed.get(UPSTREAM_REQUEST_ID)
        settings = self._state.settings
        raw = response.reads()
        complete = False
        self._cancel.at(asyncio.get_running_loop().time() + settings.stream_timeout + _HARD_LIMIT_GRACE)
        try:
            if self._request.stream:
                await self._stream(response, raw, send)
                complete = True
            else:
                outputs = self._whole_outputs(
                    self._state.events_pipeline, raw, {"observer": record, SECRETS_OPTION: (self._api_key,)}
                )
                async with _closing(outputs):
                    complete = await self._complete(response, outputs, scope, send)
        finally:
            # Closing the upstream response (unless the answer was whole) cancels the upstream
            # request and frees its pool connection, also when the time limit cut the answer off.
            await self._finish(response, raw, drain=complete)

    async def _open_upstream(
        self,
        body: dict[str, Any],
        beta: str | None,
        scope: Scope,
        send: Send,
        respond: Callable[[APIError], Response] = error_response,
    ) -> http1.Response | None:
        """POST ``body`` upstream under this request's id. A failure is noted in the record, logged
        from 500 on, and answered in the front's own error shape (``respond``): None then."""
        record = self._record
        record.upstream_model = body.get("model")
        upstream = self._state.upstream()
        try:
            content = upstream.encode(body)
            # As large as the client's conversation, and not needed while the upstream answers
            # (seconds, for a long one): only its bytes are kept, for the request's one retry.
            del body
            return await upstream.open_stream(content, self._api_key, beta, request_id=record.id)
        except APIError as error:
            record.fault = error.type
            record.upstream_request_id = error.headers.get(UPSTREAM_REQUEST_ID)
            if error.status >= 500:
                logger.warning(
                    "upstream request failed: %s %s [request %s]", error.status, error.message, record.id
                )
            await _respond(respond(error), scope, send)
            return None

    async def _finish(self, response: http1.Response, raw: AsyncIterator[bytes], *, drain: bool) -> None:
        """`Upstream.finish`, which no cancellation of the exchange may interrupt; a stream is no
        longer in flight."""
        if self._in_flight is not None:
            self._in_flight.dec()
            self._in_flight = None
        self._cancel.shield = True
        await Upstream.finish(response, raw, drain=drain)

    async def _cut_off(self, scope: Scope, send: Send) -> None:
        """The hard time limit passed. Before the response started, that is a 504; after it, the
        ASGI response ends unfinished, and the server closes the connection (its write timeout
        ends one whose client reads nothing)."""
        message = too_long(self._state.settings.stream_timeout)
        self._record.fault = StreamTimeLimit.type
        logger.warning("%s [request %s]", message, self._record.id)
        if not self._started:
            await _respond(error_response(APIError(504, message, type=StreamTimeLimit.type)), scope, send)

    def _stream(self, response: http1.Response, raw: AsyncIterator[bytes], send: Send) -> Awaitable[None]:
        """The converted stream, sent. Hands back `relay`'s coroutine rather than awaiting it in
        one of its own: one frame fewer held for as long as the stream runs."""
        conversion = self._state.stream_pipeline(self._request.include_usage).open(
            observer=self._record, **{SECRETS_OPTION: (self._api_key,)}
        )
        passed, self._passed = self._passed, {}  # they go with the head, not kept for the stream
        self._started = True
        return self._relayed(conversion, raw, send, passed, on_fault=self._in_band_fault)

    def _relayed(
        self,
        conversion: Conversion,
        raw: AsyncIterator[bytes],
        send: Send,
        headers: Mapping[str, str],
        *,
        on_fault: Callable[[bytes], None],
        fault_marker: bytes = CHAT_FAULT,
        pings: Pings | None = None,
    ) -> Awaitable[None]:
        """A 200 event stream with ``headers`` (the upstream's passed on, the route's own) beside
        the stream's own, ``raw`` through ``conversion`` by `relay` (what one upstream read brings
        goes in one write; the server's idle and stream time limits; the end of a shutdown's grace
        period cuts it off in-band, in the route's own error shape), counted as a stream in
        flight until `_finish`: the coroutine, for the caller to hand back."""
        state = self._state
        settings = state.settings
        head = [*_STREAM_HEADERS, *((k.encode(), v.encode()) for k, v in headers.items())]
        if state.metrics is not None:
            self._in_flight = state.metrics.streams.labels(self._record.route)
            self._in_flight.inc()
        return relay(
            conversion,
            raw,
            send,
            start={"type": "http.response.start", "status": 200, "headers": head},
            idle_timeout=settings.idle_timeout,
            stream_timeout=settings.stream_timeout,
            on_fault=on_fault,
            fault_marker=fault_marker,
            pings=pings,
            shutdown=state.shutdown,
            on_cut=self._cut_by_shutdown,
        )

    def _cut_by_shutdown(self) -> None:
        self._record.fault = SHUTDOWN_ERROR
        logger.warning("stream cut off by the shutdown [request %s]", self._record.id)

    def _whole_outputs(
        self, pipeline: Pipeline, raw: AsyncIterator[bytes], overrides: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """A non-streamed answer's outputs: the upstream body, cut off at the time limit per
        stream and past the bytes the server assembles an answer from
        (``CHUNKLINE_MAX_RESPONSE_BYTES``), through a conversion of ``pipeline``."""
        settings = self._state.settings
        source = counted(capped(raw, settings.stream_timeout), settings.max_response_bytes)
        return pipeline.transform(source, idle_timeout=settings.idle_timeout, **overrides)

    def _take_body(self) -> dict[str, Any]:
        """The upstream request's body, which the exchange no longer keeps (`_open_upstream`
        lets go of it once it is encoded)."""
        body = self._request.body
        self._request = replace(self._request, body={})
        return body

    def _client_gone(self) -> None:
        _client_gone(self._cancel, self._record)

    def _in_band_fault(self, data: bytes) -> None:
        """An error event: its type noted, and a warning for the operator with its error object
        (the client reads the fault in-band, its key already redacted by value in the events, see
        scrub.RedactStage). Only the error object is logged, never the rest of the event: a
        Responses failure repeats the whole answer so far. ``data`` is the event as framed: its
        data line holds the error."""
        error = _error_of(data.partition(b"data:")[2])
        kind = error.get("type") if error is not None else None
        self._record.fault = kind if isinstance(kind, str) and kind else "error"
        logger.warning(
            "stream ended by a fault [request %s]: %s",
            self._record.id,
            orjson.dumps({"error": error}).decode() if error is not None else "(an unreadable error event)",
        )

    async def _whole(
        self,
        outputs: AsyncIterator[Any],
        add: Callable[[Any], object],
        result: Callable[[], Any],
        scope: Scope,
        send: Send,
        respond: Callable[[APIError], Response] = error_response,
    ) -> bytes | None:
        """A whole answer: every output handed to ``add``, then ``result()`` as JSON. None when the
        client got a failure instead, as an HTTP error in the front's own shape (``respond``;
        nothing had been sent yet): a 503 when a shutdown's grace period ran out first, or a
        stream fault's status with the type, code and message a streaming client would have read
        in-band (the key redacted from them)."""
        shutdown = self._state.shutdown
        record = self._record
        try:
            with shutdown.guard() as cut:
                async for item in outputs:
                    add(item)
            if not cut.cancelled_caught:
                return orjson.dumps(result())
            record.fault = SHUTDOWN_ERROR
            error = APIError(503, shutdown.message, type=SHUTDOWN_ERROR, code=SHUTDOWN_ERROR)
        except StreamError as fault:
            status = stream_error_status(fault)
            # Every field, not only the message: the code is the upstream's own error type.
            # (The type is chunkline's own word for the fault.)
            code, message = redact_value((fault.code or fault.type, fault.message), [self._api_key])
            record.fault = fault.type
            logger.warning(
                "upstream stream fault (answered %s) [request %s]: %s: %s",
                status,
                record.id,
                fault.type,
                message,
            )
            error = APIError(status, message, type=fault.type, code=code)
        self._started = True
        await _respond(respond(error), scope, send)
        return None

    async def _complete(
        self, response: http1.Response, outputs: AsyncIterator[Any], scope: Scope, send: Send
    ) -> bool:
        """Sends the ``chat.completion`` assembled from the typed events, or the fault as an HTTP
        error; True for the answer."""
        builder = CompletionBuilder(self._state.settings.thinking, reasoning_details=True)
        body = await self._whole(outputs, builder.add, builder.result, scope, send)
        if body is None:
            return False
        passed = self._passed
        self._started = True
        await _respond(Response(body, headers=passed, media_type="application/json"), scope, send)
        return True


def _error_of(payload: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an in-band error event's data: a chat ``{"error": {...}}``, an
    Anthropic ``event: error``, or a Responses ``response.failed`` (in its ``response``)."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    error = event.get("error")
    if error is None and isinstance(event.get("response"), dict):
        error = event["response"].get("error")
    return error if isinstance(error, dict) else None


async def _cancel_on_disconnect(receive: Receive, scope: TaskScope, record: RequestRecord) -> None:
    # The request body has been read, so the next message the server has for us is the disconnect.
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            _client_gone(scope, record)
            return


def _client_gone(scope: TaskScope, record: RequestRecord) -> None:
    if record.fault is None and record.finish is None:
        record.fault = CLIENT_GONE
    scope.cancel()


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
