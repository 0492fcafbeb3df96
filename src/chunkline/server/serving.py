"""What each front of the server shares: lifespan, error handlers, root and metrics routes, observer."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._version import __version__
from .accesslog import RequestObserver
from .auth import client_key
from .direct import DirectRoutes, Handler
from .errors import APIError, http_error_message, redact
from .observe import record_of

if TYPE_CHECKING:
    from .app import ServerState

__all__ = ["served_app"]

logger = logging.getLogger("chunkline.server")


def served_app(
    state: ServerState,
    routes: Sequence[BaseRoute],
    *,
    direct: Mapping[str, Handler],
    respond: Callable[[APIError], Response],
    serving: str,
) -> Starlette:
    """The app of one front: ``routes`` (and ``GET /metrics`` when metrics are on) under the
    request observer (the access line, the metrics, ``x-request-id``), the ``direct`` POST routes
    served without Starlette's stack, every error answered by ``respond`` in the front's own
    shape, and a lifespan that logs what it is ``serving``, opens the upstream pool and watches
    for the shutdown signal."""

    async def metrics(request: Request) -> Response:
        assert state.metrics is not None
        from .metrics import CONTENT_TYPE

        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info(
            "chunkline %s serving %s; upstream %s; auth: %s",
            __version__,
            serving,
            state.settings.upstream,
            "the server's keys" if state.settings.auth_mode == "keys" else "clients' keys passed through",
        )
        state.upstream()  # now rather than on the first request: building the pools takes a while
        state.shutdown.install()
        try:
            yield
        finally:
            await state.aclose()

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        _note_fault(request, exc.type)
        return respond(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = http_error_message(request.method, request.url.path, exc.status_code, exc.detail)
        error = APIError(exc.status_code, message, headers=exc.headers)
        _note_fault(request, error.type)
        return respond(error)

    async def server_error(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log (uvicorn's handler logs it); the client gets no internals.
        secrets = [client_key(request.headers) or "", *state.settings_secrets]
        record = record_of(request.scope)
        logger.error(
            "unexpected error on %s %s [request %s]: %s",
            request.method,
            request.url.path,
            record.id if record else "-",
            redact(f"{type(exc).__name__}: {exc}", secrets),
        )
        _note_fault(request, "server_error")
        return respond(APIError(500, "The server had an error processing your request.", type="server_error"))

    every = list(routes)
    if state.metrics is not None:
        every.append(Route("/metrics", metrics, methods=["GET"]))
    # What the server is, for a browser or a client's connection check (Claude Code sends
    # `HEAD /` to its base URL first): an answer, not a 404 noted as a fault.
    about = {
        "name": "chunkline",
        "version": __version__,
        "serving": serving,
        "routes": [
            f"{' '.join(sorted(set(r.methods or ()) - {'HEAD'}))} {r.path}"
            for r in every
            if isinstance(r, Route)
        ],
    }

    async def root(request: Request) -> Response:
        return Response(orjson.dumps(about), media_type="application/json")

    every.append(Route("/", root, methods=["GET"]))
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        APIError: api_error,
        HTTPException: http_error,
        Exception: server_error,
    }
    app = _ObservedApp(routes=every, lifespan=lifespan, exception_handlers=handlers)
    app.state.chunkline = state
    app.state.direct_routes = dict(direct)
    return app


class _ObservedApp(Starlette):
    """Starlette with the request observer outside even its error middleware, so that a 500
    also carries the x-request-id and is logged and counted, and the streaming routes served
    without Starlette's stack (`DirectRoutes`)."""

    def build_middleware_stack(self) -> ASGIApp:
        state: ServerState = self.state.chunkline
        metrics = state.metrics
        return RequestObserver(
            DirectRoutes(super().build_middleware_stack(), self.state.direct_routes, self.exception_handlers),
            routes=self.routes,
            log=state.settings.access_log,
            finished=metrics.observe if metrics is not None else None,
        )

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        # Starlette's own, but handing back the stack's awaitable rather than awaiting it in a
        # coroutine of its own: one frame fewer held for as long as a stream runs.
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        return self.middleware_stack(scope, receive, send)

    # Servers tell an ASGI 3 app by a coroutine function __call__ (uvicorn: else it is ASGI 2).
    if sys.version_info >= (3, 12):
        __call__ = inspect.markcoroutinefunction(__call__)
    else:
        setattr(__call__, "_is_coroutine", getattr(asyncio.coroutines, "_is_coroutine"))  # noqa: B009, B010


def _note_fault(request: Request, kind: str) -> None:
    record = record_of(request.scope)
    if record is not None:
        record.fault = kind
