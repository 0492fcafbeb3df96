"""The Starlette app: routes, the pipelines built once per process, and the app factories."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._version import __version__
from ..errors import describe
from ..pipeline import Pipeline
from .accesslog import RequestObserver
from .auth import Authenticator, beta_header, client_key
from .bodies import read_json
from .direct import DirectRoutes
from .errors import APIError, http_error_message, redact
from .observe import record_of
from .pipelines import ServerPipelines
from .proxy import ChatExchange, error_response
from .responses import ResponsesExchange, ResponsesPipelines, translate_responses_request
from .settings import Settings
from .shutdown import Shutdown
from .translate import translate_request
from .upstream import Upstream

if TYPE_CHECKING:
    from .metrics import Metrics

__all__ = ["ServerState", "app_from_env", "create_app"]

logger = logging.getLogger("chunkline.server")


class ServerState:
    """What every request of one app shares: settings, the auth check, the pipelines (built once;
    each response opens its own conversion) and the upstream client (made on first use, so it
    belongs to the event loop that serves the requests)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._upstream: Upstream | None = None
        self.auth = Authenticator(settings)
        self.pipelines = ServerPipelines(settings)
        self.events_pipeline = self.pipelines.events
        self.responses_pipelines = ResponsesPipelines(settings.thinking)
        self.shutdown = Shutdown(settings.shutdown_timeout)
        self.metrics: Metrics | None = None
        if settings.metrics:
            from .metrics import Metrics

            self.metrics = Metrics(self.pool_use, settings.upstream_max_connections)
        #: The server's own keys, for scrubbing what it logs.
        self.settings_secrets = [
            key.reveal() for key in (*settings.api_keys, settings.anthropic_api_key) if key is not None
        ]

    def stream_pipeline(self, include_usage: bool) -> Pipeline:
        return self.pipelines.stream(include_usage)

    def pool_use(self) -> tuple[int, int]:
        """Upstream connections (carrying a request, idle) now."""
        return self._upstream.pool_use() if self._upstream is not None else (0, 0)

    def upstream(self) -> Upstream:
        if self._upstream is None:
            self._upstream = Upstream(self.settings)
        return self._upstream

    async def aclose(self) -> None:
        if self._upstream is not None:
            await self._upstream.aclose()
            self._upstream = None

    async def model_list(self, api_key: str) -> list[dict[str, Any]]:
        """The models clients may name: ``CHUNKLINE_MODELS`` if set, else the upstream's list;
        then the aliases."""
        models: list[dict[str, Any]]
        if self.settings.models:
            models = [_model(name, 0, "anthropic") for name in self.settings.models]
        else:
            listing = await self.upstream().get_json("/v1/models?limit=1000", api_key)
            data = listing.get("data") if isinstance(listing, dict) else None
            models = [
                _model(entry["id"], _epoch(entry.get("created_at")), "anthropic")
                for entry in data or ()
                if isinstance(entry, dict) and isinstance(entry.get("id"), str)
            ]
        models += [_model(alias, 0, "chunkline") for alias in self.settings.model_aliases]
        return models


def _model(model_id: str, created: int, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


def _epoch(value: Any) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def create_app(settings: Settings | None = None) -> Starlette:
    """The server as an ASGI app (settings from the environment when not given)."""
    settings = settings if settings is not None else Settings.from_env()
    if settings.upstream_format == "openai-chat":
        from .messages_front import create_messages_app  # Anthropic clients, a chat upstream

        return create_messages_app(settings)
    state = ServerState(settings)

    async def chat_completions(request: Request) -> Response:
        # The key first: a client without one never gets its body read.
        api_key = state.auth.upstream_key(request.headers)
        beta = beta_header(request.headers)
        body = await read_json(request, state.settings)
        record = record_of(request.scope)
        if record is not None and isinstance(body, dict):
            model, stream = body.get("model"), body.get("stream")
            record.client_model = model if isinstance(model, str) else None
            record.stream = stream is True
        translated = translate_request(body, state.settings)
        return ChatExchange(state, translated, api_key, beta)

    async def responses(request: Request) -> Response:
        api_key = state.auth.upstream_key(request.headers)
        beta = beta_header(request.headers)
        body = await read_json(request, state.settings)
        translated = translate_responses_request(body, state.settings)
        return ResponsesExchange(state, translated, api_key, beta)

    async def list_models(request: Request) -> Response:
        api_key = state.auth.upstream_key(request.headers)
        return _json({"object": "list", "data": await state.model_list(api_key)})

    async def get_model(request: Request) -> Response:
        api_key = state.auth.upstream_key(request.headers)
        wanted = request.path_params["model_id"]
        for model in await state.model_list(api_key):
            if model["id"] == wanted:
                return _json(model)
        raise APIError(
            404, f"The model {describe(wanted)} does not exist", param="model", code="model_not_found"
        )

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "version": __version__, **state.pipelines.describe()})

    async def metrics(request: Request) -> Response:
        assert state.metrics is not None
        from .metrics import CONTENT_TYPE

        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info(
            "chunkline %s serving; upstream %s; auth: %s",
            __version__,
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
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = http_error_message(request.method, request.url.path, exc.status_code, exc.detail)
        error = APIError(exc.status_code, message, headers=exc.headers)
        _note_fault(request, error.type)
        return error_response(error)

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
        return error_response(
            APIError(500, "The server had an error processing your request.", type="server_error")
        )

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if state.metrics is not None:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    app = _App(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={APIError: api_error, HTTPException: http_error, Exception: server_error},
    )
    app.state.chunkline = state
    app.state.direct_routes = {"/v1/chat/completions": chat_completions, "/v1/responses": responses}
    return app


class _App(Starlette):
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


def app_from_env() -> Starlette:
    """The app factory for uvicorn (``--factory``), gunicorn and worker processes: settings from
    the environment (and the file ``CHUNKLINE_CONFIG`` names), read in the process that serves."""
    from .config import settings_from

    return create_app(settings_from())
