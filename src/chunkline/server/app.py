"""The Starlette app: routes, the pipelines built once per process, and the app factories."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._version import __version__
from ..errors import describe
from ..pipeline import Pipeline
from .auth import Authenticator, beta_header
from .bodies import read_json
from .errors import APIError
from .observe import record_of
from .pipelines import ServerPipelines
from .proxy import ChatExchange, error_response
from .responses import ResponsesExchange, ResponsesPipelines, translate_responses_request
from .serving import served_app
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
        _note_request(request, body)
        translated = translate_request(body, state.settings)
        return ChatExchange(state, translated, api_key, beta)

    async def responses(request: Request) -> Response:
        api_key = state.auth.upstream_key(request.headers)
        beta = beta_header(request.headers)
        body = await read_json(request, state.settings)
        _note_request(request, body)
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

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    direct = {"/v1/chat/completions": chat_completions, "/v1/responses": responses}
    return served_app(state, routes, direct=direct, respond=error_response, serving="the OpenAI APIs")


def _note_request(request: Request, body: object) -> None:
    """The model a client named and whether it asked for a stream, for the access line and the
    metrics, noted before the translation can refuse the request."""
    record = record_of(request.scope)
    if record is not None and isinstance(body, dict):
        model, stream = body.get("model"), body.get("stream")
        record.client_model = model if isinstance(model, str) else None
        record.stream = stream is True


def app_from_env() -> Starlette:
    """The app factory for uvicorn (``--factory``), gunicorn and worker processes: settings from
    the environment (and the file ``CHUNKLINE_CONFIG`` names), read in the process that serves."""
    from .config import settings_from

    return create_app(settings_from())
