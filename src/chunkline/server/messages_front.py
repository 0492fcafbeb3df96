"""``chunkline serve --upstream-format openai-chat``: the Messages API for an OpenAI-compatible upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope, Send

from .._version import __version__
from ..conversion import Conversion
from ..events import Chunk
from ..pipeline import Pipeline
from . import http1
from .anthropic_message import MessageBuilder
from .anthropic_request import ChatRequest, translate_messages_request
from .app import ServerState
from .bodies import read_json
from .errors import APIError, json_or_400
from .pipelines import route_stages
from .proxy import ChatExchange, _closing, _respond
from .relay import Pings
from .scrub import SECRETS_OPTION, passed_headers
from .serving import served_app
from .settings import Settings
from .upstream import COMMON_HEADERS, Upstream

__all__ = ["ChatUpstream", "MessagesExchange", "anthropic_error_response", "create_messages_app"]

logger = logging.getLogger("chunkline.server")

SOURCE, TARGET = "openai-chat", "anthropic-messages"
_IN_BAND_ERROR = b"event: error\n"
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
# HTTP status -> the Anthropic error type its API sends with it.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
# Characters per token for the count_tokens estimate (English text and JSON average about 4).
_CHARS_PER_TOKEN = 4


class ChatUpstream(Upstream):
    """The upstream client for an OpenAI-compatible API: ``POST {base}/chat/completions`` with
    the key as a bearer token."""

    stream_path = "/chat/completions"

    def _fixed_headers(self) -> list[tuple[str, str]]:
        return list(COMMON_HEADERS)

    def _headers(
        self, api_key: str, beta: str | None, request_id: str | None = None
    ) -> list[tuple[str, str]]:
        headers = [("authorization", f"Bearer {api_key}")]
        if request_id:
            headers.append(("x-request-id", request_id))
        return headers


class MessagesState(ServerState):
    """The shared state of the Messages front: the route's pipelines and the chat upstream."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        stages = route_stages(SOURCE, TARGET)
        self.messages_pipeline = Pipeline(stages, source=SOURCE, target=TARGET)
        # A non-streaming answer: the same stages without the framing; faults raise.
        unframed = [name for name in stages if name != "serialize"]
        self.message_events_pipeline = Pipeline(unframed, source=SOURCE, target=TARGET, on_error="raise")

    def upstream(self) -> Upstream:
        if self._upstream is None:
            self._upstream = ChatUpstream(self.settings)
        return self._upstream


def anthropic_error_response(error: APIError) -> Response:
    """An `APIError` as an Anthropic client expects it: the status, and
    ``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ERROR_TYPES.get(error.status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": error.message}}
    return Response(
        orjson.dumps(body), status_code=error.status, headers=error.headers, media_type="application/json"
    )


class MessagesExchange(ChatExchange):
    """One Messages request through the chat upstream. The disconnect watch, the upstream
    connection's care and the key's redaction are `ChatExchange`'s; what differs is the
    pipeline (openai-chat in, anthropic-messages out) and the answer's shape."""

    def __init__(self, state: MessagesState, request: ChatRequest, api_key: str) -> None:
        super().__init__(state, None, api_key, None)  # type: ignore[arg-type]
        self._messages_state = state
        self._chat = request

    def _take_body(self) -> dict[str, Any]:
        body = self._chat.body
        self._chat = replace(self._chat, body={})
        return body

    async def _exchange(self, scope: Scope, send: Send) -> None:
        state = self._messages_state
        record = self._record
        record.client_model = self._chat.model
        record.stream = self._chat.stream
        response = await self._open_upstream(self._take_body(), None, scope, send, anthropic_error_response)
        if response is None:
            return
        raw = response.reads()
        complete = False
        # Clients see the model they asked for; the upstream's own name is in the logs.
        overrides: dict[str, Any] = {
            "model": self._chat.model,
            "observer": record,
            SECRETS_OPTION: (self._api_key,),
        }
        if self._chat.stop_sequences:
            overrides["stop_sequences"] = list(self._chat.stop_sequences)
        try:
            if self._chat.stream:
                conversion = state.messages_pipeline.open(**overrides)
                await self._stream_events(response, conversion, raw, send)
                complete = True
            else:
                outputs = self._whole_outputs(state.message_events_pipeline, raw, overrides)
                async with _closing(outputs):
                    complete = await self._complete(response, outputs, scope, send)
        finally:
            await self._finish(response, raw, drain=complete)

    def _stream_events(
        self, response: http1.Response, conversion: Conversion, raw: AsyncIterator[bytes], send: Send
    ) -> Awaitable[None]:
        """The events as the chat route sends its chunks (`relay`: what one upstream read brings
        goes in one write), with a keep-alive ping whenever the client has been sent nothing for
        ``CHUNKLINE_PING_INTERVAL`` seconds: a comment until the stream has begun, then
        Anthropic's own ping event (which Anthropic clients skip)."""
        passed = passed_headers(response.take_headers(), [self._api_key])
        interval = self._messages_state.settings.ping_interval
        return self._relayed(
            conversion,
            raw,
            send,
            passed,
            on_fault=self._in_band_fault,
            fault_marker=_IN_BAND_ERROR,
            pings=Pings(interval, b": ping\n\n", _PING) if interval > 0 else None,
        )

    async def _complete(
        self, response: http1.Response, outputs: AsyncIterator[Any], scope: Scope, send: Send
    ) -> bool:
        builder = MessageBuilder()

        def add(item: Any) -> None:
            if isinstance(item, Chunk):
                builder.add(orjson.loads(item.payload))

        body = await self._whole(outputs, add, builder.result, scope, send, anthropic_error_response)
        if body is None:
            return False
        passed = passed_headers(response.headers, [self._api_key])
        answer = Response(body, headers=passed, media_type="application/json")
        await _respond(answer, scope, send)
        return True


def estimate_tokens(request: Any) -> int:
    """A rough input token count for ``count_tokens``: the JSON of the system prompt, messages and
    tools, at about four characters a token. An estimate: the upstream's tokenizer decides."""
    if not isinstance(request, dict):
        return 0
    parts = [request.get(name) for name in ("system", "messages", "tools")]
    text = json_or_400(
        [p for p in parts if p is not None],
        "the request nests JSON more than 254 levels deep, deeper than this server counts",
        None,
    )
    return max(1, len(text.decode("utf-8", "replace")) // _CHARS_PER_TOKEN)


def create_messages_app(settings: Settings) -> Starlette:
    """The server for ``upstream_format="openai-chat"``: POST /v1/messages (streaming and not),
    POST /v1/messages/count_tokens and GET /healthz."""
    state = MessagesState(settings)

    async def messages(request: Request) -> Response:
        api_key = state.auth.upstream_key(request.headers)
        body = await read_json(request, settings)
        translated = translate_messages_request(
            body, settings.model_map, reasoning_effort=settings.reasoning_effort
        )
        return MessagesExchange(state, translated, api_key)

    async def count_tokens(request: Request) -> Response:
        state.auth.upstream_key(request.headers)
        body = await read_json(request, settings)
        return Response(orjson.dumps({"input_tokens": estimate_tokens(body)}), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(orjson.dumps({"status": "ok", "version": __version__}), media_type="application/json")

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return served_app(
        state,
        routes,
        direct={"/v1/messages": messages},
        respond=anthropic_error_response,
        serving="the Anthropic Messages API (an openai-chat upstream)",
    )
