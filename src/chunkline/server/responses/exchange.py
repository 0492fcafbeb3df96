"""One ``POST /v1/responses`` through the proxy: the upstream request, then the events or the response."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response
from starlette.types import Scope, Send

from ...conversion import Conversion
from ...pipeline import Pipeline
from .. import http1
from ..pipelines import route_stages
from ..proxy import ChatExchange, _closing, _respond
from ..scrub import SECRETS_OPTION, passed_headers
from .request import ResponsesRequest

if TYPE_CHECKING:
    from ..app import ServerState

__all__ = ["TARGET", "ResponsesExchange", "ResponsesPipelines", "final_response"]

logger = logging.getLogger("chunkline.server")

SOURCE, TARGET = "anthropic-messages", "openai-responses"
_FAILED = b"event: response.failed\n"


def _thinking(mode: str) -> str:
    # The server's thinking setting names the chat route's shapes; the Responses route keeps
    # what means the same there (tags, drop) and otherwise gives reasoning items.
    return mode if mode in ("tags", "drop") else "native"


class ResponsesPipelines:
    """The two pipelines of the Responses route, built once per process: one streams (faults
    in-band, as ``response.failed``), one assembles a whole answer (faults raised, so they become
    HTTP errors)."""

    def __init__(self, thinking: str) -> None:
        mode = _thinking(thinking)
        stages = route_stages(SOURCE, TARGET)
        self.stream = Pipeline(stages, target=TARGET, thinking=mode)
        self.whole = Pipeline(stages, target=TARGET, thinking=mode, on_error="raise")


def final_response(frames: list[bytes]) -> dict[str, Any]:
    """The ``response`` object of a stream's terminal event (``response.completed`` or
    ``response.incomplete``): the whole answer, output and usage included."""
    last = b"".join(frames).rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    data = last.split(b"\ndata: ", 1)[1]
    response: dict[str, Any] = orjson.loads(data)["response"]
    return response


class ResponsesExchange(ChatExchange):
    """The ASGI response for one Responses request, already authenticated and translated (the
    disconnect handling is the chat route's)."""

    def __init__(self, state: ServerState, request: ResponsesRequest, api_key: str, beta: str | None) -> None:
        super().__init__(state, None, api_key, beta)  # type: ignore[arg-type]
        self._responses = request

    def _warnings(self) -> dict[str, str]:
        dropped = self._responses.dropped
        if not dropped:
            return {}
        text = f"hosted tools Claude cannot run were left out: {', '.join(dict.fromkeys(dropped))}"
        return {"x-chunkline-warning": text}

    def _take_body(self) -> dict[str, Any]:
        body = self._responses.body
        self._responses = replace(self._responses, body={})
        return body

    async def _exchange(self, scope: Scope, send: Send) -> None:
        if self._responses.dropped:
            logger.warning("responses request: %s", self._warnings()["x-chunkline-warning"])
        self._record.stream = self._responses.stream
        response = await self._open_upstream(self._take_body(), self._beta, scope, send)
        if response is None:
            return
        request = self._responses
        pipelines = self._state.responses_pipelines
        pipeline = pipelines.stream if request.stream else pipelines.whole
        overrides: dict[str, Any] = {
            "reasoning_encrypted_content": request.encrypted,
            "observer": self._record,
            SECRETS_OPTION: (self._api_key,),
        }
        if request.namespaces:
            overrides["tool_namespaces"] = request.namespaces
        raw = response.reads()
        complete = False
        try:
            if request.stream:
                await self._stream_events(response, pipeline.open(**overrides), raw, send)
                complete = True
            else:
                outputs = self._whole_outputs(pipeline, raw, overrides)
                async with _closing(outputs):
                    complete = await self._complete(response, outputs, scope, send)
        finally:
            await self._finish(response, raw, drain=complete)

    def _stream_events(
        self, response: http1.Response, conversion: Conversion, raw: AsyncIterator[bytes], send: Send
    ) -> Awaitable[None]:
        """The events as the chat route sends its chunks (`relay`: what one upstream read brings
        goes in one write), ended in-band by the end of a shutdown's grace period too."""
        passed = passed_headers(response.take_headers(), [self._api_key])
        headers = {**passed, **self._warnings()}
        return self._relayed(
            conversion, raw, send, headers, on_fault=self._in_band_fault, fault_marker=_FAILED
        )

    async def _complete(
        self, response: http1.Response, outputs: AsyncIterator[Any], scope: Scope, send: Send
    ) -> bool:
        frames: list[bytes] = []
        body = await self._whole(outputs, frames.append, partial(final_response, frames), scope, send)
        if body is None:
            return False
        headers = {**passed_headers(response.headers, [self._api_key]), **self._warnings()}
        await _respond(Response(body, headers=headers, media_type="application/json"), scope, send)
        return True
