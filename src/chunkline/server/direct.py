"""The streaming POST routes served straight from the ASGI call, without Starlette's router and middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .observe import record_of

__all__ = ["DirectRoutes", "Handler"]

Handler = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class DirectRoutes:
    """ASGI middleware that answers ``POST`` on ``routes``' paths itself and hands everything
    else to ``app`` (the Starlette app). Starlette's error middleware, exception middleware,
    router, route and request-response wrappers each hold a coroutine frame for as long as a
    stream runs, and each body message passed through three send wrappers: 5.5 KB of the
    server's memory per held stream, and a share of every event's cost (`make bench-server`).
    What they did for these routes is done here the same way: an exception before the response
    starts goes to the first of ``exception_handlers`` (looked up along its class's MRO, as
    Starlette does) and its answer is sent; one that is no `HTTPException`-like handled type
    (the ``Exception`` handler's) is raised again afterwards, as Starlette's error middleware
    does, so that the server logs it; one after the response started is raised as it is."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, Handler],
        exception_handlers: Mapping[type[BaseException], ExceptionHandler],
    ) -> None:
        self.app = app
        self._routes = dict(routes)
        self._handlers = dict(exception_handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            handler = self._routes.get(scope["path"])
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
            del request  # the exchange holds what it needs of it for as long as it streams
            await response(scope, receive, send)
        except Exception as exc:
            record = record_of(scope)
            if record is not None and record.status:  # the response has started: nothing to send
                raise
            answer = self._handler_for(exc)
            if answer is None:
                raise
            await (await answer(Request(scope, receive, send), exc))(scope, receive, send)
            if answer is self._handlers.get(Exception):
                raise

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        for kind in type(exc).__mro__:
            if kind in self._handlers:
                return self._handlers[kind]
        return None
